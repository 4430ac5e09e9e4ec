"""Cross-validation: the folds (data/folds.py) and ``nncli cv`` (commands/cv.py)."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line

from nncli import spec as spec_module
from nncli.commands import cv as cv_command
from nncli.data import folds
from nncli.errors import DataError


@pytest.mark.parametrize("n_rows, k", [(10, 2), (150, 5), (23, 4), (7, 7)])
def test_kfold_folds_are_disjoint_and_cover_the_rows(n_rows, k):
    cut = folds.kfold(n_rows, k, seed=3)
    assert len(cut) == k
    validation = np.concatenate([val for _, val in cut])
    assert sorted(validation.tolist()) == list(range(n_rows))  # disjoint and covering
    for train, val in cut:
        assert not set(train) & set(val)
        assert len(train) + len(val) == n_rows
    sizes = [len(val) for _, val in cut]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_depends_on_the_seed_alone():
    same = folds.kfold(40, 4, seed=1), folds.kfold(40, 4, seed=1)
    other = folds.kfold(40, 4, seed=2)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(*same, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(same[0], other, strict=True))


@pytest.mark.parametrize("counts, k", [((50, 50, 50), 5), ((37, 9, 3), 4), ((20, 1), 3)])
def test_stratification_keeps_each_class_within_one_row_of_its_share(counts, k):
    strata = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(0).shuffle(strata)
    cut = folds.kfold(len(strata), k, seed=0, strata=strata)
    validation = np.concatenate([val for _, val in cut])
    assert sorted(validation.tolist()) == list(range(len(strata)))
    for _, val in cut:
        for code, n in enumerate(counts):
            assert abs(np.sum(strata[val] == code) - n / k) < 1


def test_forward_chaining_windows_expand_and_never_look_ahead():
    cut = folds.forward_chaining(23, 4)
    assert len(cut) == 4
    previous_train = -1
    for train, val in cut:
        assert train.tolist() == list(range(len(train)))  # always the start of the series
        assert len(train) > previous_train  # expanding
        assert val.tolist() == list(range(len(train), len(train) + len(val)))  # right after
        previous_train = len(train)
    assert cut[-1][1][-1] == 22  # the last block reaches the end


def test_too_few_rows_or_folds_are_data_errors():
    with pytest.raises(DataError, match="at least 2 folds"):
        folds.kfold(10, 1, seed=0)
    with pytest.raises(DataError, match="need at least 5 rows"):
        folds.forward_chaining(4, 4)


@pytest.fixture
def iris_folder(tmp_path):
    shutil.copy(IRIS, tmp_path / "iris.csv")
    (tmp_path / "spec.yaml").write_text(iris_spec("{epochs: 2, batch_size: 16}"))
    return tmp_path


def test_cv_writes_folds_then_mean_and_std(iris_folder):
    out = iris_folder / "cv"
    result = invoke("cv", iris_folder / "spec.yaml", "--folds", 3, "--output", out)
    assert result.exit_code == 0, result.stderr
    assert "3-fold cross-validation (stratified)" in result.stdout
    lines = (out / "cv.csv").read_text().splitlines()
    assert lines[0] == "fold,val_loss,val_accuracy,epochs"
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3", "mean", "std"]
    table = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:4]])
    mean = [float(v) for v in lines[4].split(",")[1:]]
    std = [float(v) for v in lines[5].split(",")[1:]]
    assert np.allclose(mean, table.mean(axis=0))
    assert np.allclose(std, table.std(axis=0, ddof=1))
    again = invoke("cv", iris_folder / "spec.yaml", "--folds", 3, "--output", out)
    one_error_line(again, 2, "cv.csv exists", "--force")


def test_each_fold_trains_from_the_seed_and_workers_agree(iris_folder):
    """Fold 2 alone gives fold 2's row; two worker processes give the same file."""
    spec = spec_module.load(iris_folder / "spec.yaml")
    whole = cv_command.cross_validate(spec, 3)
    alone = cv_command.train_fold(spec, 2, 3)
    assert alone.metrics == whole.folds[1].metrics
    assert whole.folds[1].val_rows == 50 and whole.folds[1].train_rows == 100
    out = iris_folder / "workers"  # this process plans, two worker processes train
    cv_command.cv(iris_folder / "spec.yaml", 3, output=out, workers=2)
    assert (out / "cv.csv").read_text() == cv_command.csv_text(whole)
    assert not list(out.glob(".fold-*"))


def test_time_series_folds_are_forward_chaining(tmp_path):
    values = np.sin(np.arange(120) / 5.0)
    lines = ["t,value", *(f"{i},{v:.6f}" for i, v in enumerate(values))]
    (tmp_path / "wave.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "spec.yaml").write_text(
        """\
data:
  kind: timeseries
  path: wave.csv
  columns: [value]
  target: value
  window: 8
  validation_split: 0.2
model:
  layers:
    - {type: flatten}
    - {type: dense, units: 1}
loss: mse
training: {epochs: 2, batch_size: 16}
"""
    )
    spec = spec_module.load(tmp_path / "spec.yaml")
    result = cv_command.cross_validate(spec, 3)
    assert result.scheme == "forward-chaining"
    trained = [f.train_rows for f in result.folds]
    assert trained == sorted(trained) and len(set(trained)) == 3


def test_cv_needs_no_optuna(iris_folder, monkeypatch):
    """README: `cv` needs no extra (only `tune` needs Optuna)."""
    for name in [m for m in sys.modules if m == "optuna" or m.startswith("optuna.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now fails
    result = invoke("cv", iris_folder / "spec.yaml", "--folds", 2, "--output", iris_folder / "o")
    assert result.exit_code == 0, result.stderr
    assert (iris_folder / "o" / "cv.csv").is_file()
    assert sys.modules["optuna"] is None  # nothing imported it meanwhile
