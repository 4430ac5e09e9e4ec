"""``data.inputs`` of a table: several named inputs, each with its own encoder.

An input is ``columns`` (numbers and one-hot categories, as a table without inputs), a text
column (``tokens``: token ids and a padding mask) or an image-path column (``image_size``,
``color``); ``type`` says which, or is read from the keys (``columns`` -> columns,
``image_size``/``color`` -> image, else text). The names are what a layer's ``inputs`` takes.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from nncli.engine.graph import NAME
from nncli.engine.registry import did_you_mean
from nncli.spec.fields import (
    Bool,
    Invalid,
    PositiveInt,
    Problem,
    SomeNames,
    Text,
    checked,
    ints,
    one_of,
    short,
)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ColumnsInput(_Input):
    """Numbers and categories, one-hot, scaled as ``data.normalize`` says: (N, F)."""

    type: Literal["columns"] = "columns"
    columns: SomeNames


class TextInput(_Input):
    """One text column -> token ids (N, max_length), 0 padding (masked), 1 an unknown token."""

    type: Literal["text"] = "text"
    column: Text
    tokens: Annotated[str, one_of("words", "chars")] = "words"
    lowercase: Bool = True
    max_length: PositiveInt = 100
    vocabulary: PositiveInt = 10000


class ImageInput(_Input):
    """One column of image paths (relative to the table's folder) -> (N, C, H, W) in [0, 1]."""

    type: Literal["image"] = "image"
    column: Text
    image_size: Annotated[
        list[int], checked(partial(ints, what="[height, width], two positive integers", length=2))
    ]
    color: Annotated[str, one_of("grayscale", "rgb")] = "grayscale"


INPUT_TYPES: dict[str, type[_Input]] = {
    "columns": ColumnsInput,
    "text": TextInput,
    "image": ImageInput,
}


def _type_of(entry: dict[str, Any]) -> str:
    if "type" in entry:
        return entry["type"] if entry["type"] in INPUT_TYPES else ""
    if "columns" in entry:
        return "columns"
    return "image" if "image_size" in entry or "color" in entry else "text"


def checked_inputs(value: Any) -> dict[str, dict[str, Any]] | None:
    """``data.inputs`` -> {name: its settings with ``type``}, or ``Invalid`` naming every
    problem (a bad name, an unknown key with a did-you-mean, a bad value)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise Invalid.one(f"expected a mapping of input names to inputs, got {short(value)}")
    inputs, problems = {}, []
    for name, entry in value.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            problems.append(
                ((name,), f"expected a name of letters, digits and _, got {name!r}", True)
            )
            continue
        if not isinstance(entry, dict):
            message = f"expected a mapping (columns, or a text or image column), got {short(entry)}"
            problems.append(((name,), message, False))
            continue
        kind = _type_of(entry)
        if not kind:
            types = ", ".join(INPUT_TYPES)
            problems.append(
                ((name, "type"), f"expected one of {types}, got {short(entry['type'])}", False)
            )
            continue
        try:
            inputs[name] = INPUT_TYPES[kind].model_validate(entry).model_dump()
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            unknown = [str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden"]
            problems += [
                _problem(name, kind, err)
                for err in errors  # a missing key misspelt among the unknown ones: said once
                if not (err["type"] == "missing" and _misspelt(str(err["loc"][-1]), unknown))
            ]
    if problems:
        raise Invalid([p for found in problems for p in _flat(found)])
    return inputs


def _problem(name: str, kind: str, err: dict[str, Any]) -> Problem | list[Problem]:
    loc = (name, *err["loc"])
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, Invalid):
        return [((*loc, *sub), message, key) for sub, message, key in cause.problems]
    if err["type"] == "missing":
        return ((name,), f"missing required key {err['loc'][-1]!r} (a {kind} input)", False)
    if err["type"] == "extra_forbidden":
        key = err["loc"][-1]
        allowed = list(INPUT_TYPES[kind].model_fields)
        hint = did_you_mean(str(key), allowed) or f" (a {kind} input takes {', '.join(allowed)})"
        return (loc, f"unknown key {key!r}{hint}", True)
    return (loc, f"invalid value {short(err.get('input'))}: {err['msg']}", False)


def _misspelt(key: str, unknown: list[str]) -> bool:
    return any(did_you_mean(other, [key]) for other in unknown)


def _flat(found: Problem | list[Problem]) -> list[Problem]:
    return found if isinstance(found, list) else [found]


def input_columns(inputs: dict[str, dict[str, Any]]) -> list[tuple[str, str, tuple]]:
    """(column, input name, sub-path of the key naming it) for every column the inputs read."""
    named = []
    for name, entry in inputs.items():
        if entry["type"] == "columns":
            named += [(c, name, (name, "columns", i)) for i, c in enumerate(entry["columns"])]
        else:
            named.append((entry["column"], name, (name, "column")))
    return named


def check_columns(inputs: dict[str, dict] | None, target: Any, features: Any) -> None:
    """``Invalid`` for ``features`` beside inputs, a column two inputs (or one input twice)
    read, or the target in one."""
    if inputs is None:
        return
    if features is not None:
        message = "data.inputs names each input's columns; leave features out"
        raise Invalid.one(message, ("features",))
    targets = [target] if isinstance(target, str) else list(target)
    seen: dict[str, str] = {}
    for column, name, sub in input_columns(inputs):
        if column in targets:
            raise Invalid.one(
                f"column {column!r} is the target; expected it in no input", ("inputs", *sub)
            )
        if column in seen:
            raise Invalid.one(
                f"column {column!r} is read by input {seen[column]!r} already; a column belongs "
                "to one input",
                ("inputs", *sub),
            )
        seen[column] = name


def data_input_names(document: Any) -> tuple[str, ...]:
    """The names of ``data.inputs`` as written (a mapping of names), else ``("input",)``: the
    names a layer's ``inputs`` may give the data (the data section checks the names)."""
    data = document.get("data") if isinstance(document, dict) else None
    given = data.get("inputs") if isinstance(data, dict) else None
    if isinstance(given, dict) and given and all(isinstance(k, str) for k in given):
        return tuple(given)
    return ("input",)
