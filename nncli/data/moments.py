"""A table's statistics gathered chunk by chunk: ``data.streaming`` fits its encoder from these.

``Moments``: each number column's count, mean, sum of squared deviations, minimum and maximum,
merged chunk by chunk with Chan, Golub and LeVeque's pairwise update (mean_ab = mean_a + d n_b/n,
m2_ab = m2_a + m2_b + d^2 n_a n_b / n, d = mean_b - mean_a), so the mean and standard deviation
equal the in-memory ones within float64 rounding. ``Counts``: each text column's distinct values
and how often each appears, from which a ``CategoricalColumn`` is built as ``fit`` would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nncli.data.columns import CategoricalColumn, NumericColumn
from nncli.data.csv_reader import all_numbers, canonical_numbers
from nncli.data.labels import label_order
from nncli.errors import DataError


class Moments:
    """Per-column running statistics of float64 values (N, C), NaN where a value is missing."""

    def __init__(self, names: list[str]):
        self.names = list(names)
        width = len(self.names)
        self.count = np.zeros(width)
        self.mean, self.m2 = np.zeros(width), np.zeros(width)
        self.low, self.high = np.full(width, np.inf), np.full(width, -np.inf)

    def add(self, values: np.ndarray) -> None:
        """Merge one chunk's values (N, C) into the running statistics."""
        present = ~np.isnan(values)
        count = present.sum(axis=0).astype(np.float64)
        if not count.any():
            return
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            mean = np.where(count > 0, np.nansum(values, axis=0) / count, 0.0)
            m2 = np.nansum(np.where(present, (values - mean) ** 2, 0.0), axis=0)
            total = self.count + count
            delta = mean - self.mean
            share = np.where(total > 0, count / np.maximum(total, 1), 0.0)
            self.mean = self.mean + delta * share
            self.m2 = self.m2 + m2 + delta**2 * self.count * share
        self.count = total
        self.low = np.fmin(self.low, np.nanmin(np.where(present, values, np.inf), axis=0))
        self.high = np.fmax(self.high, np.nanmax(np.where(present, values, -np.inf), axis=0))

    def std(self) -> np.ndarray:
        """The population standard deviation (numpy's ``std``), per column."""
        return np.sqrt(self.m2 / np.maximum(self.count, 1))

    def columns(self, normalize: str) -> list[NumericColumn]:
        """One ``NumericColumn`` a column, as ``NumericColumn.fit`` makes it from all values."""
        std = self.std()
        made = []
        for j, name in enumerate(self.names):
            if self.count[j] == 0:
                raise DataError(f"column {name!r} has no values in the training part")
            low, high, mean = self.low[j], self.high[j], self.mean[j]
            offset, scale = {
                "standard": (mean, std[j]),
                "minmax": (low, high - low),
                "none": (0.0, 1.0),
            }[normalize]
            stats = np.array([offset, scale, mean])
            if not np.isfinite(stats).all():
                raise DataError(f"column {name!r} holds values too large to scale ({normalize})")
            constant = high == low
            scale = 1.0 if constant else float(scale)
            made.append(NumericColumn(name, float(offset), scale, float(mean)))
        return made


class Counts:
    """Each text column's distinct present values and their counts, chunk by chunk."""

    def __init__(self, names: list[str]):
        self.seen: dict[str, dict[str, int]] = {name: {} for name in names}
        self.totals: dict[str, np.ndarray] = {}  # by ``column``: counts in category order

    def add(self, name: str, text: np.ndarray) -> None:
        """The present values (n,) of column ``name`` in one chunk."""
        values, counts = np.unique(np.asarray(text, dtype=str), return_counts=True)
        seen = self.seen[name]
        # a loop over distinct values, not rows
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            seen[value] = seen.get(value, 0) + count

    def column(self, name: str) -> CategoricalColumn:
        """The column ``CategoricalColumn.fit`` would make from every value counted: categories
        in label order (numbers by value, one spelling each), the most frequent as its fill."""
        seen = self.seen[name]
        if not seen:
            raise DataError(f"column {name!r} has no values in the training part")
        text = np.array(list(seen), dtype=object)
        numeric = all_numbers(text)
        values = canonical_numbers(text) if numeric else text
        categories = label_order(values)
        column = CategoricalColumn(name, categories, numeric, "")
        counts = np.bincount(column.codes(text), weights=list(seen.values()))
        self.totals[name] = counts
        column.fill = categories[int(np.argmax(counts))]  # ties: the first in label order
        return column


def merged(count: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> tuple[Any, Any, Any]:
    """Many groups' statistics at once, (G, C) each -> the whole's (C,) count, mean and sum of
    squared deviations: Chan's update over every group (m2 = sum m2_g + sum n_g (mean_g -
    mean)^2)."""
    total = count.sum(axis=0)
    whole = (count * mean).sum(axis=0) / np.maximum(total, 1)
    return total, whole, m2.sum(axis=0) + (count * (mean - whole) ** 2).sum(axis=0)
