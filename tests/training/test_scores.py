"""The spec's ``metrics``: each score against its definition, the spec's checks, and the
scores in the history, the test results and ``nncli evaluate``."""

from __future__ import annotations

import csv
import shutil
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line

from nncli.training.scores import binary_auc, ranks, scores


def pairwise_auc(positive: np.ndarray, score: np.ndarray) -> float:
    pos, neg = score[positive], score[~positive]
    wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in product(pos, neg)]
    return float(np.mean(wins))


def test_ranks_share_ties():
    np.testing.assert_array_equal(ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1, 3.5, 2])


def test_auc_is_the_pairwise_win_rate_ties_half():
    rng = np.random.default_rng(0)
    score = np.round(rng.random(40), 1)  # ties
    positive = rng.random(40) < 0.4
    assert binary_auc(positive, score) == pytest.approx(pairwise_auc(positive, score))


def test_multiclass_auc_is_the_mean_one_vs_rest():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3), size=30)
    y = np.eye(3)[rng.integers(0, 3, 30)]
    want = np.mean([pairwise_auc(y[:, k] > 0, p[:, k]) for k in range(3)])
    assert scores(["auc"], y, p)["auc"] == pytest.approx(want)


def test_macro_f1_and_accuracy():
    y = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    p = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    got = scores(["f1", "accuracy"], y, p)
    # class 0: P 1/2 R 1/2; class 1: P 2/3 R 1; class 2: P 1 R 1/2
    f1 = [0.5, 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5]
    assert got["f1"] == pytest.approx(np.mean(f1))
    assert got["accuracy"] == pytest.approx(4 / 6)


def test_regression_scores_in_the_files_units_and_masked():
    y = np.array([[[1.0], [2.0]], [[3.0], [9.0]]])
    p = np.array([[[1.5], [2.0]], [[2.0], [0.0]]])
    mask = np.array([[True, True], [True, False]])  # the 9 is padding
    got = scores(["mae", "rmse", "r2"], y, p, mask, target_scale=np.array([2.0]))
    err = np.array([1.0, 0.0, -2.0])  # (p - y) * 2 over the real steps
    assert got["mae"] == pytest.approx(1.0)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    truth = np.array([2.0, 4.0, 6.0])
    assert got["r2"] == pytest.approx(1 - (err**2).sum() / ((truth - 4.0) ** 2).sum())


# -- the spec and the commands ------------------------------------------------------------------
@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(IRIS, tmp_path / "iris.csv")
    return tmp_path


def spec_with(work: Path, metrics: str) -> Path:
    text = iris_spec("{epochs: 2, batch_size: 16}").replace(
        "validation_split: 0.2}", "validation_split: 0.2, test_split: 0.2}"
    )
    path = work / "iris.yaml"
    path.write_text(text + f"metrics: {metrics}\n")
    return path


@pytest.mark.parametrize(
    ("metrics", "needles"),
    [
        ("[acuracy]", ("metrics[0]", "did you mean 'accuracy'")),
        ("[f1, r2]", ("metrics[1]", "a regression metric")),
    ],
)
def test_bad_metrics_are_spec_errors(work: Path, metrics: str, needles):
    one_error_line(invoke("validate", spec_with(work, metrics)), 2, *needles)


@pytest.mark.slow
def test_metrics_in_history_test_results_and_evaluate(work: Path):
    spec, out = spec_with(work, "[f1, auc]"), work / "out" / "model.h5"
    result = invoke("train", spec, "--output", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    with open(out.with_name("history.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(0 <= float(r["val_f1"]) <= 1 and 0 <= float(r["val_auc"]) <= 1 for r in rows)
    evaluated = invoke("evaluate", out, work / "iris.csv")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert "f1" in evaluated.stdout and "auc" in evaluated.stdout
