"""Permutation importance: how much a model's score drops when one input column's values are
shuffled among the rows, the others left as they are (Breiman's, as scikit-learn's
``permutation_importance``). A column encoded as several (a category's one-hot) is one group,
its encoded columns moved together, so the rows keep whole categories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

REPEATS = 5  # shuffles a column, each of all the rows


@dataclass(frozen=True)
class Importance:
    """One input column: the mean drop in the score over the shuffles and its spread."""

    name: str
    drop: float
    spread: float


def permutation_importance(
    score: Callable[[np.ndarray], float],
    x: np.ndarray,
    groups: list[tuple[str, list[int]]],
    rng: np.random.Generator,
    repeats: int = REPEATS,
) -> list[Importance]:
    """``score(x) - score(x with group g's columns shuffled)`` for each (name, encoded columns)
    group, averaged over ``repeats`` shuffles; largest drop first (ties keep ``groups``' order).
    x: (N, F) encoded rows."""
    base = score(x)
    found = []
    for name, columns in groups:
        drops = []
        for _ in range(repeats):
            shuffled = x.copy()
            shuffled[:, columns] = x[np.ix_(rng.permutation(len(x)), columns)]
            drops.append(base - score(shuffled))
        found.append(Importance(name, float(np.mean(drops)), float(np.std(drops))))
    return sorted(found, key=lambda item: -item.drop)
