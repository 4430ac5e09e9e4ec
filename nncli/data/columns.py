"""One table column's encoding, fitted on the training part: numbers scaled, text one-hot.

NumericColumn: x -> (x - offset) / scale, (N,) -> (N, 1). CategoricalColumn: value -> one-hot
over the training categories, (N,) -> (N, K). Both are plain dataclasses an encoder stores in
its checkpoint state and rebuilds from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nncli.data.csv_reader import all_numbers, canonical_numbers
from nncli.data.dataset import state_texts
from nncli.data.labels import label_order
from nncli.data.onehot import one_hot
from nncli.errors import CheckpointError, DataError


@dataclass
class NumericColumn:
    """x -> (x - offset) / scale; standard: mean/std, minmax: min/range, none: 0/1 (0 -> 1)."""

    name: str
    offset: float
    scale: float
    fill: float  # the training mean, for missing: fill

    @classmethod
    def fit(cls, name: str, values: np.ndarray, normalize: str) -> NumericColumn:
        """values: the present training values, float64 (n,)."""
        if len(values) == 0:
            raise DataError(f"column {name!r} has no values in the training part")
        with np.errstate(over="ignore", invalid="ignore"):  # the caller checks for overflow
            constant = np.ptp(values) == 0
            offset, scale = {
                "standard": lambda: (values.mean(), values.std()),
                "minmax": lambda: (values.min(), np.ptp(values)),
                "none": lambda: (0.0, 1.0),
            }[normalize]()
            fill = values.mean()
        return cls(name, float(offset), 1.0 if constant else float(scale), float(fill))

    @property
    def names(self) -> list[str]:
        return [self.name]

    def described(self, role: str = "feature", fill: bool = False) -> dict[str, Any]:
        """The column as a server's schema and ``/info`` show it (``Encoder.row_columns``);
        ``fill``: a missing value takes ``self.fill`` (``data.missing: fill``)."""
        scaling = {"offset": self.offset, "scale": self.scale}  # x -> (x - offset) / scale
        kind = {"type": "number", "scaling": scaling}
        return {"name": self.name, "role": role, **kind, **missing_rule(self.fill, fill)}

    def encode(self, values: np.ndarray) -> np.ndarray:
        """(N,) float64 -> (N, 1); overflow gives inf, which the encoder reports with its line."""
        with np.errstate(over="ignore", invalid="ignore"):
            return ((values - self.offset) / self.scale)[:, None]


@dataclass
class CategoricalColumn:
    """value -> one-hot over ``categories`` (sorted; numbers as numbers); unseen -> all zeros."""

    name: str
    categories: list[str]
    numeric: bool  # numeric values get one spelling ("2007.0" == "2007") before lookup
    fill: str  # the most frequent training value, for missing: fill

    @classmethod
    def fit(cls, name: str, text: np.ndarray) -> CategoricalColumn:
        """text: the present training values (n,)."""
        if len(text) == 0:
            raise DataError(f"column {name!r} has no values in the training part")
        numeric = all_numbers(text)
        values = canonical_numbers(text) if numeric else text
        categories = label_order(values)  # numbers by value, as image classes
        column = cls(name, categories, numeric, "")
        counts = np.bincount(column.codes(text), minlength=len(categories))
        column.fill = categories[int(np.argmax(counts))]  # ties: the first in sorted order
        return column

    @property
    def names(self) -> list[str]:
        return [f"{self.name}={category}" for category in self.categories]

    def described(self, role: str = "feature", fill: bool = False) -> dict[str, Any]:
        """The column as a server's schema and ``/info`` show it (``Encoder.row_columns``)."""
        kind = {"type": "category", "categories": list(self.categories)}
        return {"name": self.name, "role": role, **kind, **missing_rule(self.fill, fill)}

    def codes(self, text: np.ndarray) -> np.ndarray:
        """(N,) text -> (N,) category index, -1 for a value not seen in training."""
        import pandas as pd

        values = canonical_numbers(text) if self.numeric else text
        return np.asarray(pd.Index(self.categories).get_indexer(values), dtype=np.int64)

    def encode(self, codes: np.ndarray) -> np.ndarray:
        """(N,) codes -> (N, K) one-hot; a code of -1 gives a row of zeros."""
        return one_hot(codes, len(self.categories))


def scaling_of(columns: list[NumericColumn]) -> np.ndarray:
    """(3, F): each number column's fill, offset and scale, as ``scaled_values`` takes them."""
    return np.array([[c.fill, c.offset, c.scale] for c in columns]).T


def scaled_values(
    scaling: np.ndarray, values: np.ndarray, absent: np.ndarray | None = None
) -> np.ndarray:
    """Number columns' values, float64 (N, F), the ``absent`` ones filled -> (x - offset) /
    scale a column (``scaling``: ``scaling_of`` the columns), in float64: an encoder's one
    scaling of a table's numbers, with or without a frame."""
    fill, offset, scale = scaling
    values = values if absent is None else np.where(absent, fill, values)
    with np.errstate(over="ignore", invalid="ignore"):  # inf: the caller names its line
        return (values - offset) / scale


def missing_rule(value: Any, fill: bool) -> dict[str, Any]:
    """How a column takes a missing value: filled with ``value``, or refused."""
    return {"missing": "fill", "fill": value} if fill else {"missing": "error"}


def numeric_state(columns: list[NumericColumn], fill: bool = True) -> dict:
    """Numeric columns -> their checkpoint state: names and float64 offset, scale (and fill)."""
    state = {
        "columns": [c.name for c in columns],
        "offset": np.array([c.offset for c in columns], dtype=np.float64),
        "scale": np.array([c.scale for c in columns], dtype=np.float64),
    }
    if fill:
        state["fill"] = np.array([c.fill for c in columns], dtype=np.float64)
    return state


def numeric_from_state(part: dict, where: str = "numeric") -> list[NumericColumn]:
    """``numeric_state()`` -> the columns (fill 0 when it was not stored); CheckpointError at
    ``where``/offset, /scale or /fill unless each holds one finite number a column, and at
    /scale for a scale that is not positive: it divides every value of its column."""
    names = state_texts(part["columns"])
    offset, scale = (per_column(part[key], names, f"{where}/{key}") for key in ("offset", "scale"))
    fill = part.get("fill")
    fill = np.zeros(len(names)) if fill is None else per_column(fill, names, f"{where}/fill")
    if not (scale > 0).all():
        k = int(np.argmin(scale > 0))
        found = f"found {scale[k]:g} for column {names[k]!r}"
        raise CheckpointError(
            f"expected positive scales (x / scale), {found}", field=f"{where}/scale"
        )
    return [
        NumericColumn(name, float(o), float(s), float(f))
        for name, o, s, f in zip(names, offset, scale, fill, strict=True)
    ]


def per_column(values: Any, names: list[str], field: str) -> np.ndarray:
    """A stored state's numbers -> float64 (len(names),); CheckpointError at ``field`` for
    another count or a number that is not finite."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        a = None
    if a is None or a.shape != (len(names),):
        found = f"found {'text' if a is None else f'shape {a.shape}'}"
        raise CheckpointError(
            f"expected {len(names)} numbers, one per column, {found}", field=field
        )
    if not np.isfinite(a).all():
        k = int(np.argmin(np.isfinite(a)))
        found = f"found {a[k]} for column {names[k]!r}"
        raise CheckpointError(f"expected finite numbers, {found}", field=field)
    return a
