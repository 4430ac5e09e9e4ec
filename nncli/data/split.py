"""Random, seeded, stratified row splits: rows -> (training rows, validation rows, test rows).

The generator is ``rng_for(seed, STREAM_SPLIT)`` (``default_rng([seed, 1, 0])``): the split
depends on the spec's seed only, never on global numpy state or the other streams (shuffle, ...).
The test part is taken first, then the validation part from what is left; both fractions are of
the whole set. For classification each class gives rows in proportion to its size, and a class
with two or more rows always keeps at least one in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nncli.data.streams import STREAM_SPLIT, rng_for
from nncli.errors import DataError, SpecError

PARTS = ("validation", "test")
MARKS = ("train", "validation", "test")  # a split column's values (any case)


def part_size(fraction: float, n_rows: int) -> int:
    """round(fraction * n_rows), at least 1 when fraction > 0; 0 when fraction is 0."""
    if fraction <= 0:
        return 0
    return max(1, int(np.floor(fraction * n_rows + 0.5)))


def split_rows(
    n_rows: int,
    seed: int,
    validation_split: float = 0.0,
    test_split: float = 0.0,
    strata: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_rows,) -> sorted row indices (train, validation, test); strata: (n_rows,) class codes."""
    rng = rng_for(seed, STREAM_SPLIT)
    rows = np.arange(n_rows)
    rest, test = take_part(rows, part_size(test_split, n_rows), rng, strata)
    strata_rest = None if strata is None else strata[rest]
    train, validation = take_part(rest, part_size(validation_split, n_rows), rng, strata_rest)
    return train, validation, test


def split_parts(
    cfg: Any, n_rows: int, seed: int, strata: np.ndarray | None, what: str
) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A ``data:`` section's parts -> (the ``validation:``/``test:`` files, or None each; the
    (train, validation, test) rows of the ``n_rows`` ``what``: rows, images, sequences).

    A part read from its own file takes no rows; the others take ``<part>_split`` of them.
    """
    files = {part: getattr(cfg, part, None) for part in PARTS}
    fractions = {
        part: 0.0 if files[part] else float(getattr(cfg, f"{part}_split", 0.0) or 0.0)
        for part in PARTS
    }
    if fractions["validation"] + fractions["test"] >= 1:
        raise SpecError(
            f"validation_split + test_split must leave {what} for training, got "
            f"{fractions['validation']} + {fractions['test']}",
            field="data.validation_split",
        )
    rows = split_rows(n_rows, seed, fractions["validation"], fractions["test"], strata)
    for part, chosen in zip(PARTS, rows[1:], strict=True):
        if fractions[part] > 0 and len(chosen) == 0:
            raise DataError(
                f"{fractions[part]} of {n_rows} {what} leaves no {part} {what}",
                field=f"data.{part}_split",
            )
    return files, rows


def marked_parts(
    marks: np.ndarray, seed: int, validation_split: float = 0.0, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A split column's values (N,), each one of MARKS -> sorted (train, validation, test) rows.

    With ``validation_split`` and no row marked validation, that fraction of the rows marked
    train becomes the validation part, drawn as ``split_rows`` draws (seeded, stratified).
    """
    train, validation, test = (np.flatnonzero(marks == mark) for mark in MARKS)
    if validation_split > 0 and len(validation):
        raise DataError(
            f"the split column marks {len(validation)} rows validation; leave validation_split "
            "out, or mark none",
            field="data.validation_split",
        )
    if len(train) and validation_split > 0:
        sub = None if strata is None else strata[train]
        kept, taken, _ = split_rows(len(train), seed, validation_split, 0.0, sub)
        train, validation = train[kept], train[taken]
    if not len(train):
        raise DataError("the split column marks no train rows", field="data.split_column")
    return train, validation, test


def take_part(
    rows: np.ndarray, count: int, rng: np.random.Generator, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` of ``rows`` at random (per class when ``strata`` is given) -> (kept, taken).

    Fewer than ``count`` come back when training would otherwise lose its last row (of a class).
    """
    if count == 0 or len(rows) == 0:
        return rows, rows[:0]
    if strata is None:
        taken = rng.permutation(rows)[: min(count, len(rows) - 1)]
    else:
        classes, inverse = np.unique(strata, return_inverse=True)
        sizes = np.bincount(inverse, minlength=len(classes))
        per_class = _allocate(count, sizes)
        # Loop over classes (not rows): each class shuffles its own rows and gives its quota.
        taken = np.concatenate(
            [rng.permutation(rows[inverse == c])[:k] for c, k in enumerate(per_class)]
        )
    taken = np.sort(taken)
    return np.setdiff1d(rows, taken, assume_unique=True), taken


def _allocate(count: int, sizes: np.ndarray) -> np.ndarray:
    """Largest-remainder share of ``count`` over classes of ``sizes``; class c gives <= size-1."""
    caps = np.maximum(sizes - 1, 0)
    quota = count * sizes / sizes.sum()
    take = np.minimum(np.floor(quota).astype(int), caps)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    short = count - int(take.sum())
    while short > 0 and (take < caps).any():
        for c in order:
            if short > 0 and take[c] < caps[c]:
                take[c] += 1
                short -= 1
    return take
