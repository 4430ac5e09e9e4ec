"""A classifier's curves from its scores, in numpy: ROC and precision-recall (one class against
the rest), their areas, and the reliability diagram with the expected calibration error.

``positive`` (N,) bool: the rows of the class; ``score`` (N,) float: the model's probability of
it. The curves step through every distinct score from the highest, as scikit-learn's do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 10  # the reliability diagram's equal-width bins over [0, 1]


@dataclass(frozen=True)
class Counts:
    """Cumulative true and false positives with the threshold at each distinct score (high to
    low)."""

    true_positives: np.ndarray
    false_positives: np.ndarray
    thresholds: np.ndarray


def counts(positive: np.ndarray, score: np.ndarray) -> Counts:
    """tp[k], fp[k]: the rows scored >= thresholds[k], thresholds the distinct scores falling."""
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    ranked = np.asarray(score, dtype=np.float64)[order]
    hits = np.asarray(positive, dtype=bool)[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # each distinct score's end
    tp = np.cumsum(hits)[last].astype(np.float64)
    return Counts(tp, (last + 1) - tp, ranked[last])


@dataclass(frozen=True)
class Curve:
    """One curve: ``x``, ``y`` and its area (None where it is undefined: one class only)."""

    x: np.ndarray
    y: np.ndarray
    area: float | None


def roc(positive: np.ndarray, score: np.ndarray) -> Curve:
    """False-positive rate (x) against true-positive rate (y) from (0, 0), and the area under
    it by the trapezoid rule (scikit-learn's ``roc_auc_score``)."""
    c = counts(positive, score)
    tp, fp = np.r_[0.0, c.true_positives], np.r_[0.0, c.false_positives]
    if tp[-1] == 0 or fp[-1] == 0:  # one class only: no rate has a denominator
        return Curve(np.array([0.0, 1.0]), np.array([0.0, 1.0]), None)
    fpr, tpr = fp / fp[-1], tp / tp[-1]
    return Curve(fpr, tpr, float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)))


def precision_recall(positive: np.ndarray, score: np.ndarray) -> Curve:
    """Recall (x) against precision (y), from recall 0 at precision 1, and the average precision
    sum((R_k - R_k-1) * P_k) (scikit-learn's ``average_precision_score``)."""
    c = counts(positive, score)
    tp, fp = c.true_positives, c.false_positives
    if tp[-1] == 0:
        return Curve(np.array([0.0, 1.0]), np.array([1.0, 0.0]), None)
    recall = np.r_[0.0, tp / tp[-1]]
    precision = np.r_[1.0, tp / (tp + fp)]
    return Curve(recall, precision, float(np.sum(np.diff(recall) * precision[1:])))


@dataclass(frozen=True)
class Reliability:
    """The reliability diagram's non-empty bins: the mean predicted probability (``predicted``),
    the fraction that was right (``observed``), the rows in each (``rows``), and the expected
    calibration error sum(rows/N * |observed - predicted|)."""

    predicted: np.ndarray
    observed: np.ndarray
    rows: np.ndarray
    ece: float


def reliability(right: np.ndarray, probability: np.ndarray, bins: int = BINS) -> Reliability:
    """Rows binned by ``probability`` into ``bins`` equal widths of [0, 1] (a value on an inner
    edge falls in the bin below it, as scikit-learn's ``calibration_curve`` bins)."""
    probability = np.asarray(probability, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], probability)
    rows = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=probability, minlength=bins)
    hits = np.bincount(which, weights=np.asarray(right, dtype=np.float64), minlength=bins)
    kept = rows > 0
    predicted, observed = sums[kept] / rows[kept], hits[kept] / rows[kept]
    ece = float(np.sum(rows[kept] / len(probability) * np.abs(observed - predicted)))
    return Reliability(predicted, observed, rows[kept], ece)


def one_vs_rest(classes: np.ndarray, probabilities: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(class, positive rows) for each curve a classifier gets: the second class alone for two
    classes (its probability is the score), every class against the rest for more."""
    count = probabilities.shape[1]
    chosen = [1] if count == 2 else range(count)
    return [(k, np.asarray(classes) == k) for k in chosen]
