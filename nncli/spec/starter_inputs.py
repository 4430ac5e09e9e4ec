"""``nncli init`` for a table that holds free text or image paths: ``data.inputs`` with the
numbers and categories as one ``columns`` input and each text or image column as an input of
its own, and a model with one branch per input joined by a ``concat``."""

from __future__ import annotations

import re

from nncli.data.profile import Column, Profile
from nncli.spec.yaml_text import names, pair, scalar

BRANCH_UNITS = 32
RELU = "activation: relu"
TEXT_STEPS, TEXT_WORDS = 100, 10000
IMAGE_SIZE = (32, 32)


def input_name(column: Column, taken: set[str]) -> str:
    """A column's name as an input name (letters, digits, ``_``), unlike any ``taken``."""
    name = re.sub(r"\W", "_", column.name).strip("_") or "column"
    name = f"c_{name}" if name[0].isdigit() or name == "input" else name
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _named(found: Profile) -> list[tuple[str, Column]]:
    taken = {"fields"}
    return [(input_name(c, taken), c) for c in found.free_columns]


def input_lines(found: Profile) -> list[str]:
    """``inputs:``: the feature columns as ``fields``, each text and image column its own."""
    lines = [pair("", "inputs:", "one input per kind of column, each with its own encoder", 1)]
    if found.features:
        why = "numbers and categories, scaled and one-hot as a table's columns"
        lines.append(pair("fields", f"{{columns: {names(found.features)}}}", why, 2))
    for name, column in _named(found):
        if column.role == "text":
            value = (
                f"{{column: {scalar(column.name)}, tokens: words, max_length: {TEXT_STEPS}, "
                f"vocabulary: {TEXT_WORDS}}}"
            )
            why = "free text: word ids (the most frequent words) with a padding mask"
        else:
            size = f"[{IMAGE_SIZE[0]}, {IMAGE_SIZE[1]}]"
            value = f"{{column: {scalar(column.name)}, image_size: {size}, color: rgb}}"
            why = "image paths, relative to the table's folder; every image resized"
        lines.append(pair(name, value, why, 2))
    return lines


def _entry(text: str, why: str = "") -> str:
    return pair("", f"- {{{text}}}", why, 2)


def inputs_model(found: Profile, output: str) -> list[str]:
    """One branch per input, a ``concat`` of their codes, a hidden layer and ``output``."""
    layers, codes = [], []
    for name, column in _named(found):
        code = f"{name}_code"
        if column.role == "text":
            layers += [
                _entry(f"type: embedding, inputs: {name}, input_dim: auto, output_dim: 16",
                       "a vector per word; auto: the vocabulary's size"),
                _entry(f"type: global_avgpool, name: {code}", "the text's mean word vector"),
            ]  # fmt: skip
        else:
            layers += [
                _entry(f"type: flatten, inputs: {name}", "the pixels in a row"),
                _entry(f"type: dense, units: {BRANCH_UNITS}, {RELU}, name: {code}"),
            ]
        codes.append(code)
    if found.features:
        fields = f"type: dense, units: {BRANCH_UNITS}, {RELU}, inputs: fields, name: fields_code"
        layers.append(_entry(fields, "the numbers and categories"))
        codes.append("fields_code")
    if len(codes) > 1:
        layers.append(_entry(f"type: concat, inputs: [{', '.join(codes)}]", "the inputs joined"))
    layers += [_entry(f"type: dense, units: {BRANCH_UNITS * 2}, {RELU}"), output]
    return ["model:", pair("", "layers:", "a branch per input, then one hidden layer", 1), *layers]
