"""Cross-validation folds: rows -> K (training rows, validation rows) pairs, seeded.

- ``kfold``: the rows shuffled from the seed and cut into K nearly equal validation folds that
  are disjoint and cover every row; with ``strata`` (class codes) each class is dealt round the
  folds in turn, so every fold holds each class's share give or take one row.
- ``forward_chaining``: for rows in time order, K+1 consecutive blocks; fold k validates on
  block k and trains on every block before it (an expanding window, never the future).
The generator is ``rng_for(seed, STREAM_FOLDS)``: the folds depend on the seed alone.
"""

from __future__ import annotations

import numpy as np

from nncli.data.streams import STREAM_FOLDS, rng_for
from nncli.errors import DataError

Fold = tuple[np.ndarray, np.ndarray]  # (training rows, validation rows), each sorted


def _check(n_rows: int, folds: int, needed: int, what: str) -> None:
    if folds < 2:
        raise DataError(f"expected at least 2 folds, got {folds}", field="--folds")
    if n_rows < needed:
        raise DataError(
            f"{folds} folds need at least {needed} {what}, got {n_rows}", field="--folds"
        )


def kfold(n_rows: int, folds: int, seed: int, strata: np.ndarray | None = None) -> list[Fold]:
    """K folds of ``range(n_rows)``; ``strata``: (n_rows,) class codes to stratify by."""
    _check(n_rows, folds, folds, "rows")
    rng = rng_for(seed, STREAM_FOLDS)
    fold_of = np.empty(n_rows, dtype=np.int64)
    if strata is None:
        order = rng.permutation(n_rows)
        fold_of[order] = np.arange(n_rows) % folds
    else:
        start = 0
        # a loop over classes (not rows): each class's rows, shuffled, go round the folds in
        # turn from where the previous class stopped, so fold sizes stay within one row
        for code in np.unique(strata):
            rows = rng.permutation(np.flatnonzero(strata == code))
            fold_of[rows] = (start + np.arange(len(rows))) % folds
            start += len(rows)
    rows = np.arange(n_rows)
    return [(rows[fold_of != k], rows[fold_of == k]) for k in range(folds)]


def forward_chaining(n_rows: int, folds: int) -> list[Fold]:
    """K expanding-window folds of rows in time order: fold k trains on the blocks before
    block k and validates on block k (K+1 blocks of nearly equal size)."""
    _check(n_rows, folds, folds + 1, "rows (windows) in time order")
    blocks = np.array_split(np.arange(n_rows), folds + 1)
    return [(np.concatenate(blocks[:k]), blocks[k]) for k in range(1, folds + 1)]


def class_codes(y: np.ndarray) -> np.ndarray:
    """(n, k) one-hot targets -> (n,) class codes; (n, 1) binary targets -> 0/1."""
    y = y.reshape(len(y), -1)
    return (y[:, 0] > 0.5).astype(np.int64) if y.shape[1] == 1 else np.argmax(y, axis=1)
