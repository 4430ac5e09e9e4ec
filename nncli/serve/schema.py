"""What a request to ``POST /predict`` may hold, built from the checkpoint's columns, and every
refusal as a ``Problem`` naming the field, what was expected and what came.

JSON bodies are ``{"rows": [{column: value}, ...]}``, validated by a pydantic model made with
``create_model`` from the model's row columns (``Encoder.row_columns``): a number column takes
JSON numbers (finite; null where training filled missing values), a category one of its
training categories (any text or number with ``--unknown ignore``), a text column (a model of
several inputs) a string or null (an empty text), an id or order column text or a number; a
target column may be sent and is ignored; any other column is refused. A model with an
image-path column is refused (``Columns.unserved``): no request may name a file path. The same
model is the request schema of the OpenAPI document. CSV bodies (``text/csv``) are parsed here
into a header and rows of text, checked against the same columns.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, create_model
from pydantic import ValidationError as ValidationError  # re-exported for the app
from pydantic_core import from_json

SHOWN = 20  # problems listed in one answer; the rest are counted
UNSERVED = "image paths cannot be served (no request may name a file path)"
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Scalar = StrictStr | StrictInt | StrictFloat


@dataclass(frozen=True)
class Problem:
    """One refused part of a request: ``field`` (``rows[2].island``), what was ``expected``
    there and what was ``found``."""

    field: str
    expected: str
    found: str

    @property
    def message(self) -> str:
        return f"{self.field}: expected {self.expected}, found {self.found}"


class Refused(Exception):  # noqa: N818  (a refusal, answered 422, not a failure)
    """A request refused before any work, with every ``Problem`` found (``status``: 422, or 413
    for a body over the limit)."""

    def __init__(self, problems: list[Problem], status: int = 422):
        super().__init__(problems[0].message)
        self.problems = problems
        self.status = status

    def content(self) -> dict[str, Any]:
        """The JSON answer: ``error`` (one line) and ``detail`` (each problem, at most SHOWN)."""
        more = len(self.problems) - 1
        error = self.problems[0].message + (f" (and {more} more)" if more else "")
        detail = [{**p.__dict__, "message": p.message} for p in self.problems[:SHOWN]]
        return {"error": error, "detail": detail}


def found_text(value: Any) -> str:
    """A value as a client sent it, for ``found``: its JSON (shortened), or a type's name."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def number_forms(categories: list[str]) -> list[str | int | float]:
    """A category list with each number also as a JSON number (``"2007"`` -> ``2007`` too),
    since a client may send either."""
    forms: list[str | int | float] = list(categories)
    for text in categories:
        try:
            value = float(text)
        except ValueError:
            continue
        if math.isfinite(value):
            forms.append(int(value) if value.is_integer() else value)
    return list(dict.fromkeys(forms))


@dataclass(frozen=True)
class Columns:
    """The model's row columns (``Encoder.row_columns``) and what each takes: ``expected``
    (column name -> the words of a Problem), the pydantic ``Row`` and ``Request`` models."""

    described: list[dict[str, Any]]
    unknown: str
    max_rows: int

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.described]

    @property
    def required(self) -> list[str]:
        return [c["name"] for c in self.described if c["role"] != "target"]

    @property
    def numbers(self) -> list[str] | None:
        """The columns a row must hold, when every one is a number column (else None)."""
        given = [c for c in self.described if c["role"] != "target"]
        return [c["name"] for c in given] if all(c["type"] == "number" for c in given) else None

    def kind_of(self, column: dict[str, Any]) -> tuple[Any, str]:
        """A column -> (its pydantic type, the words for what it expects)."""
        if column["role"] == "target":
            return Any, "anything (ignored)"
        if column["type"] == "text":  # null reads as an empty cell of a file: an empty text
            return StrictStr | None, "text (a string; null: an empty text)"
        nullable = column.get("missing") == "fill"
        if column["type"] == "number":
            kind, words = Number, "a finite number"
        elif column["type"] == "image":
            kind, words = StrictStr, f"nothing: {UNSERVED}"
        elif column["type"] == "category" and self.unknown == "error":
            shown = ", ".join(repr(c) for c in column["categories"][:SHOWN])
            more = ", ..." if len(column["categories"]) > SHOWN else ""
            kind, words = (
                Literal[tuple(number_forms(column["categories"]))],
                f"one of {shown}{more}",
            )
        else:
            kind, words = Scalar, "text or a number"
        if nullable:
            return kind | None, words + " or null (filled)"
        return kind, words

    def unserved(self) -> None:
        """Refused naming each image-path column: a model that reads image files a table
        names cannot be served, since no request may name a file path."""
        images = [c["name"] for c in self.described if c["type"] == "image"]
        if images:
            raise Refused([Problem(name, UNSERVED, "a model of image paths") for name in images])

    def expected(self, name: str) -> str:
        for column in self.described:
            if column["name"] == name:
                return self.kind_of(column)[1]
        return "one of the model's columns"

    def row_model(self) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for i, column in enumerate(self.described):
            kind, words = self.kind_of(column)
            target = column["role"] == "target"
            default = None if target else ...
            fields[f"c{i}"] = (
                kind,
                Field(default, alias=column["name"], description=words, exclude=target),
            )
        config = ConfigDict(extra="forbid", populate_by_name=False)
        return create_model("Row", __config__=config, **fields)

    def request_model(self) -> type[BaseModel]:
        rows = Field(min_length=1, max_length=self.max_rows, description="One object a row.")
        config = ConfigDict(extra="forbid")
        return create_model(
            "PredictRequest", __config__=config, rows=(list[self.row_model()], rows)
        )

    def unknown_column(self, name: str) -> str:
        """What an unknown column should have been: the columns, and the closest name."""
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"one of the model's columns {', '.join(map(repr, self.names))}{hint}"


NUMBER_TYPES = {float, int}  # JSON numbers as parsed (not bool: a strict number refuses it)


def number_rows(body: bytes, names: list[str], max_rows: int) -> np.ndarray | None:
    """A JSON body ``{"rows": [{name: number, ...}, ...]}`` whose every row holds exactly the
    columns ``names``, each a JSON number (int or float) -> (N, F) float64, the values
    ``PredictRequest`` gives (the same JSON parser, jiter's; an int as its float), or None
    for any other body (a null, a target column, a string, too many rows, not JSON...), which
    the request schema then reads and, if it must, refuses by name. The rows and values are
    gathered by C-level ``map``s, not a Python loop over them."""
    try:
        parsed = from_json(body, allow_inf_nan=False)  # NaN, Infinity: the schema names them
    except ValueError:
        return None
    rows = parsed.get("rows") if type(parsed) is dict and len(parsed) == 1 else None
    if type(rows) is not list or not 0 < len(rows) <= max_rows or set(map(type, rows)) != {dict}:
        return None
    if set(map(len, rows)) != {len(names)}:
        return None  # another column (a target, an unknown one) or one missing
    try:
        values = list(map(itemgetter(*names), rows))
    except KeyError:
        return None
    if len(names) == 1:
        values = [[value] for value in values]
    if not set(map(type, chain.from_iterable(values))) <= NUMBER_TYPES:
        return None
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:  # an int beyond float64: the schema names it
        return None


def place(loc: tuple[Any, ...]) -> tuple[str, str | None]:
    """pydantic's ``loc`` (``('rows', 2, 'island', 'str')``) -> (``rows[2].island``, the
    column, or None above the columns)."""
    text, column = "", None
    for depth, part in enumerate(loc[:3]):
        if isinstance(part, int):
            text += f"[{part}]"
        elif depth == 2:
            text, column = f"{text}.{part}", str(part)
        else:
            text += ("." if text else "") + str(part)
    return text or "body", column


def problems(error: ValidationError, columns: Columns) -> list[Problem]:
    """pydantic's errors for a JSON body -> one Problem a field, in its words."""
    found: dict[str, Problem] = {}
    for item in error.errors(include_url=False):
        field, column = place(tuple(item["loc"]))
        if field in found:
            continue  # a union's members each fail: one problem a field
        kind, given, ctx = item["type"], item.get("input"), item.get("ctx") or {}
        if kind == "extra_forbidden" and column is not None:
            found[field] = Problem(field, columns.unknown_column(column), "an unknown column")
        elif kind == "extra_forbidden":
            found[field] = Problem(field, 'only "rows"', found_text(given))
        elif kind == "missing":
            expected = columns.expected(column) if column else "a field"
            found[field] = Problem(field, expected, "nothing (a missing column)")
        elif kind == "too_short":
            found[field] = Problem(field, "at least 1 row", "none")
        elif kind == "too_long":
            rows = ctx.get("actual_length") or len(given or ())
            found[field] = Problem(field, f"at most {columns.max_rows} rows", f"{rows} rows")
        elif column is not None:
            found[field] = Problem(field, columns.expected(column), found_text(given))
        elif kind == "json_invalid":
            found[field] = Problem(field, "JSON", f"invalid JSON ({ctx.get('error', '')})")
        else:
            expected = 'an object {"rows": [{column: value}, ...]}' if field == "body" else None
            found[field] = Problem(field, expected or item["msg"], found_text(given))
    return list(found.values())


def csv_table(text: str, columns: Columns) -> tuple[list[str], list[list[str]]]:
    """A ``text/csv`` body -> (header, rows of text), blank lines left out; Refused for a body
    without rows, more than ``max_rows``, a row of another width than the header, or a header
    that names an unknown column, repeats one or lacks one."""
    try:
        records = [r for r in csv.reader(io.StringIO(text), strict=True) if r]
    except csv.Error as err:
        raise Refused([Problem("body", "CSV text", f"unreadable CSV ({err})")]) from None
    if len(records) < 2:
        raise Refused([Problem("rows", "a header line and at least 1 row", "none")])
    header, rows = [h.strip() for h in records[0]], records[1:]
    if len(rows) > columns.max_rows:
        raise Refused([Problem("rows", f"at most {columns.max_rows} rows", f"{len(rows)} rows")])
    bad = [
        Problem(f"header.{name}", columns.unknown_column(name), "an unknown column")
        for name in header
        if name not in columns.names
    ]
    bad += [
        Problem(f"header.{name}", "each column once", f"it {times} times")
        for name, times in Counter(header).items()
        if times > 1
    ]
    bad += [
        Problem(f"header.{name}", columns.expected(name), "nothing (a missing column)")
        for name in columns.required
        if name not in header
    ]
    width = len(header)
    bad += [
        Problem(f"rows[{i}]", f"{width} fields (the header's)", f"{len(row)}")
        for i, row in enumerate(rows)
        if len(row) != width
    ]
    if bad:
        raise Refused(bad)
    return header, rows


def generate_request(max_length: int) -> type[BaseModel]:
    """``POST /generate``'s body: a prompt, and ``nncli generate``'s length, temperature and
    seed (its defaults), each checked; no other key."""
    words = generate_words(max_length)
    fields: dict[str, Any] = {
        "prompt": (StrictStr, Field(..., description=words["prompt"])),
        "length": (StrictInt, Field(200, ge=0, le=max_length, description=words["length"])),
        "temperature": (Number, Field(1.0, ge=0, description=words["temperature"])),
        "seed": (StrictInt, Field(0, ge=0, lt=2**63, description=words["seed"])),
    }
    return create_model("GenerateRequest", __config__=ConfigDict(extra="forbid"), **fields)


def generate_words(max_length: int) -> dict[str, str]:
    """What each key of a `/generate` body takes, in a Problem's words."""
    return {
        "prompt": "text in the model's vocabulary, at least one symbol",
        "length": f"a whole number of symbols from 0 to {max_length} (--max-length)",
        "temperature": "a finite number of 0 or more",
        "seed": "a whole number from 0 to 2**63 - 1",
    }


def generate_problems(error: ValidationError, max_length: int) -> list[Problem]:
    """pydantic's errors for a ``/generate`` body -> one Problem a field, in its words."""
    words = generate_words(max_length)
    found: dict[str, Problem] = {}
    for item in error.errors(include_url=False):
        field = place(tuple(item["loc"]))[0]
        kind, given = item["type"], item.get("input")
        if field in found:
            continue
        if kind == "json_invalid":
            found[field] = Problem(field, "JSON", f"invalid JSON ({item['msg']})")
        elif kind == "extra_forbidden":
            close = difflib.get_close_matches(field, list(words), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found[field] = Problem(field, f"one of {', '.join(words)}{hint}", "an unknown key")
        elif kind == "missing":
            found[field] = Problem(field, words.get(field, "a field"), "nothing")
        else:
            expected = words.get(field, '{"prompt": "...", "length": ...}')
            found[field] = Problem(field, expected, found_text(given))
    return list(found.values())
