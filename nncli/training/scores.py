"""The spec's ``metrics``: scores over a whole set (validation, test, ``evaluate``) from the
host's targets and outputs, as scikit-learn computes them.

- ``accuracy``: the share of rows whose predicted class is the label's
- ``f1``: macro F1, the mean over the classes present in the labels or the predictions
- ``auc``: ROC AUC from ranks (ties share their mean rank); one-vs-rest macro for 3+ classes
- ``mae``, ``rmse``: in the file's units (``target_scale``), over every output
- ``r2``: 1 - SS_res / SS_tot per output, averaged over the outputs
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nncli.training.metrics import classification_report, predicted_classes


@dataclass(frozen=True)
class Score:
    task: str  # the task it means something for: classification or regression
    compute: Callable[[np.ndarray, np.ndarray], float]  # (y (n, k), p (n, k)) -> score


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(predicted_classes(y) == predicted_classes(p)))


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    """Macro F1 over the classes that occur in the labels or the predictions."""
    truth, guess = predicted_classes(y), predicted_classes(p)
    classes = max(y.shape[-1], 2)
    report = classification_report(truth, guess, classes)
    present = np.zeros(classes, dtype=bool)
    present[truth] = present[guess] = True
    return float(report["f1"][present].mean())


def ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks of ``s``, ties sharing their mean rank (scipy's ``rankdata``)."""
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse]


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half; NaN without both."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = ranks(score)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    if y.shape[-1] == 1:  # one sigmoid output
        return binary_auc(y[:, 0] > 0.5, p[:, 0])
    if y.shape[-1] == 2:
        return binary_auc(y[:, 1] > 0.5, p[:, 1])
    truth = predicted_classes(y)
    per_class = [binary_auc(truth == k, p[:, k]) for k in range(y.shape[-1])]
    known = [a for a in per_class if not np.isnan(a)]
    return float(np.mean(known)) if known else float("nan")


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(p - y)))


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p - y) ** 2)))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    residual = ((y - p) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    per_output = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), 0.0)
    return float(per_output.mean())


SCORES: dict[str, Score] = {
    "accuracy": Score("classification", _accuracy),
    "f1": Score("classification", _f1),
    "auc": Score("classification", _auc),
    "mae": Score("regression", _mae),
    "rmse": Score("regression", _rmse),
    "r2": Score("regression", _r2),
}


def scores(
    names: list[str] | tuple[str, ...],
    y: np.ndarray,
    p: np.ndarray,
    mask: np.ndarray | None = None,
    target_scale: np.ndarray | None = None,
) -> dict[str, float]:
    """``{name: score}`` over every real row (time steps of a sequence count as rows)."""
    y, p = y.astype(np.float64), p.astype(np.float64)
    if mask is not None and y.ndim == mask.ndim + 1:
        y, p = y[mask.astype(bool)], p[mask.astype(bool)]
    y, p = y.reshape(-1, y.shape[-1]), p.reshape(-1, p.shape[-1])
    if target_scale is not None:
        y, p = y * target_scale, p * target_scale
    return {name: SCORES[name].compute(y, p) for name in names}
