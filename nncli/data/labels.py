"""Class labels: the one order rule and the one class-count check every data kind uses.

Labels are put in output order by ``label_order``: as numbers when every label is a finite
number (``"2" < "10"``), else as text. A table's target column and an image folder's class
folders follow the same rule, so the same names give the same output order in both.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nncli.data.csv_reader import parse_numbers
from nncli.errors import DataError


def label_order(names: Iterable[str]) -> list[str]:
    """Distinct labels in output order: by value when all are numbers (two spellings of one
    number, as class folders may have, by text), else by text."""
    text = np.array(sorted({str(name) for name in names}), dtype=object)
    values, bad = parse_numbers(text, np.zeros(len(text), dtype=bool))
    if len(text) and not bad.any():
        text = text[np.argsort(values, kind="stable")]
    return [str(name) for name in text]


def check_class_count(count: int, loss: str, found: str, **place: str) -> None:
    """DataError unless ``count`` classes suit ``loss``: exactly 2 for binary_cross_entropy, at
    least 2 otherwise. ``found`` ends the message (what was found, where); ``place`` gives the
    error's ``where``/``field``."""
    binary = loss == "binary_cross_entropy"
    if count < 2 or (binary and count != 2):
        wanted = "exactly 2" if binary else "at least 2"
        raise DataError(f"{loss} needs {wanted} classes; {found}", **place)
