"""The reports room's numbers against scikit-learn (a test-only oracle): ROC AUC
(``roc_auc_score``), average precision (``average_precision_score``), the reliability diagram
(``calibration_curve``), the expected calibration error by its definition, and permutation
importance on a score function whose columns' weights are known."""

from __future__ import annotations

import numpy as np
import pytest

from nncli.reports import curves
from nncli.reports.importance import permutation_importance

metrics = pytest.importorskip("sklearn.metrics")
calibration = pytest.importorskip("sklearn.calibration")

EPS = np.finfo(np.float64).eps


def scores(seed: int, rows: int = 300, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores that lean toward them; ``ties``: scores rounded to 1 decimal, so many
    rows share a threshold (and some sit exactly on a bin's edge)."""
    rng = np.random.default_rng(seed)
    positive = rng.random(rows) < 0.4
    score = np.clip(0.5 + 0.25 * (2 * positive - 1) + 0.3 * rng.standard_normal(rows), 0, 1)
    return positive, np.round(score, 1) if ties else score


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_and_average_precision_equal_scikit_learns(seed, ties):
    positive, score = scores(seed, ties=ties)
    roc = curves.roc(positive, score)
    assert roc.area == pytest.approx(metrics.roc_auc_score(positive, score), rel=64 * EPS)
    fpr, tpr, _ = metrics.roc_curve(positive, score, drop_intermediate=False)
    np.testing.assert_allclose(roc.x, fpr, rtol=0, atol=4 * EPS)
    np.testing.assert_allclose(roc.y, tpr, rtol=0, atol=4 * EPS)
    pr = curves.precision_recall(positive, score)
    expected = metrics.average_precision_score(positive, score)
    assert pr.area == pytest.approx(expected, rel=64 * EPS)


def test_one_class_only_has_no_area():
    assert curves.roc(np.ones(5, bool), np.linspace(0, 1, 5)).area is None
    assert curves.precision_recall(np.zeros(5, bool), np.linspace(0, 1, 5)).area is None


@pytest.mark.parametrize("ties", [False, True])
def test_the_reliability_diagram_equals_calibration_curve_and_the_ece_its_definition(ties):
    right, probability = scores(3, rows=500, ties=ties)
    found = curves.reliability(right, probability, bins=10)
    observed, predicted = calibration.calibration_curve(right, probability, n_bins=10)
    np.testing.assert_allclose(found.observed, observed, rtol=16 * EPS)
    np.testing.assert_allclose(found.predicted, predicted, rtol=16 * EPS)
    assert found.rows.sum() == len(probability)
    by_hand = sum(
        n / len(probability) * abs(o - p)
        for n, o, p in zip(found.rows, observed, predicted, strict=True)
    )
    assert found.ece == pytest.approx(by_hand, rel=64 * EPS)
    if ties:  # 0.1, 0.2, ... sit on inner edges: scikit-learn puts them in the bin below
        assert len(found.rows) == len(observed)


def test_one_vs_rest_takes_the_second_class_of_two_and_every_class_of_more():
    classes = np.array([0, 1, 1, 2])
    assert [k for k, _ in curves.one_vs_rest(classes[:3], np.zeros((3, 2)))] == [1]
    chosen = curves.one_vs_rest(classes, np.zeros((4, 3)))
    assert [k for k, _ in chosen] == [0, 1, 2]
    np.testing.assert_array_equal(chosen[1][1], [False, True, True, False])


def test_permutation_importance_follows_known_weights_and_moves_a_group_together():
    """score(x) = -mean((x @ w - target)^2): a column's drop is about 2 w^2 var(x); the one-hot
    group (columns 2, 3) moves whole rows, so each row keeps exactly one 1."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 5))
    x[:, 2:4] = np.eye(2)[rng.integers(0, 2, 400)]
    w = np.array([3.0, 1.0, 2.0, -2.0, 0.0])
    target = x @ w
    seen = []

    def score(rows):
        seen.append(rows[:, 2:4].sum(axis=1))
        return -float(np.mean((rows @ w - target) ** 2))

    groups = [("a", [0]), ("b", [1]), ("colour", [2, 3]), ("noise", [4])]
    found = permutation_importance(score, x, groups, np.random.default_rng(1), repeats=3)
    assert [item.name for item in found] == ["a", "colour", "b", "noise"]
    assert found[-1].drop == 0.0  # its weight is 0: shuffling it changes nothing
    assert all(np.all(s == 1.0) for s in seen)
    again = permutation_importance(score, x, groups, np.random.default_rng(1), repeats=3)
    assert again == found  # seeded
