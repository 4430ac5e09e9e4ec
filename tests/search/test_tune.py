"""``nncli tune``: the ``search:`` section, studies in SQLite, continuing, workers, best.yaml,
spec errors, and a search that finds a learning rate whose optimum is known."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line

optuna = pytest.importorskip("optuna")

from nncli import spec as spec_module  # noqa: E402
from nncli.commands import cv as cv_command  # noqa: E402
from nncli.commands.train import TrainingRun, fit_arrays, train  # noqa: E402
from nncli.commands.tune import tune  # noqa: E402
from nncli.errors import Interrupted  # noqa: E402
from nncli.spec.resolve import resolve  # noqa: E402
from nncli.training.callbacks import Callback, kept_value  # noqa: E402
from nncli.training.guards import SignalStop  # noqa: E402

SEARCH = """\
search:
  optimizer.learning_rate: {low: 1.0e-3, high: 0.3, log: true}
  model.layers[0].units: [4, 16]
"""


def _study(out: Path, name: str = "spec") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


@pytest.fixture
def iris_folder(tmp_path):
    shutil.copy(IRIS, tmp_path / "iris.csv")
    (tmp_path / "spec.yaml").write_text(iris_spec("{epochs: 2, batch_size: 16}") + SEARCH)
    return tmp_path


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One small study on iris: 3 trials, then 2 more by a second run."""
    folder = tmp_path_factory.mktemp("tune")
    shutil.copy(IRIS, folder / "iris.csv")
    (folder / "spec.yaml").write_text(iris_spec("{epochs: 2, batch_size: 16}") + SEARCH)
    out = folder / "search"
    first = tune(folder / "spec.yaml", 3, output=out)
    second = tune(folder / "spec.yaml", 2, output=out)
    return folder, out, first, second


def test_trials_land_in_sqlite_and_a_second_run_continues_the_study(searched):
    folder, out, first, second = searched
    assert first.added == 3 and second.added == 2
    study = _study(out)
    assert len(study.trials) == 5  # the second run added to the first run's study
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert study.user_attrs["nncli_space"]["optimizer.learning_rate"].startswith("float in")
    lines = (out / "trials.csv").read_text().splitlines()
    assert lines[0] == (
        "number,state,value,optimizer.learning_rate,model.layers[0].units,epochs,seconds"
    )
    assert len(lines) == 6
    assert not list(out.glob(".trial-*"))  # only the best trial's checkpoint is kept
    assert (out / "best" / "model.h5").exists()
    assert (out / "best" / "trial.txt").read_text() == f"{second.best[0]}\n"


def test_best_yaml_trains_to_the_best_trials_validation_score(searched, tmp_path):
    folder, out, _, second = searched
    number, values, value = second.best
    assert value == _study(out).best_value
    text = (out / "best.yaml").read_text()
    assert text.startswith(f"# nncli tune: trial {number} of study 'spec'")
    assert "search" not in text
    best = spec_module.load(out / "best.yaml")
    assert best.optimizer["learning_rate"] == values["optimizer.learning_rate"]
    assert best.model.layers[0]["units"] == values["model.layers[0].units"]
    result = train(best, output=tmp_path / "model.h5")
    assert kept_value(result.history, "val_loss") == value  # same seed -> the same number


@pytest.mark.slow
def test_workers_add_their_trials_to_the_same_study(searched, capfd):
    folder, out, _, _ = searched
    before = len(_study(out).trials)
    result = tune(folder / "spec.yaml", 2, output=out, workers=2)  # two worker processes
    assert result.added == 2
    assert len(_study(out).trials) == before + 2
    printed = capfd.readouterr().out.splitlines()  # each worker: one line per trial it ran
    assert len([line for line in printed if line.startswith("trial ")]) == 2


def test_a_study_of_another_space_stops_with_exit_2(searched):
    folder, out, _, _ = searched
    text = (folder / "spec.yaml").read_text().replace("high: 0.3", "high: 0.5")
    (folder / "changed.yaml").write_text(text)
    result = invoke(
        "tune", folder / "changed.yaml", "--trials", 1, "--output", out, "--study", "spec"
    )
    one_error_line(result, 2, "searched another space", "optimizer.learning_rate", "0.3", "0.5")
    assert len(_study(out).trials) >= 5  # nothing added


@pytest.mark.parametrize(
    "search, needles",
    [
        (
            "  optimizer.learnin_rate: {low: 0.001, high: 0.1}\n",
            ["spec.yaml:13:3:", "not a key of the spec", "did you mean 'learning_rate'"],
        ),
        ("  optimizer.learning_rate: {low: 0.1, high: 0.01}\n", ["spec.yaml:13:34:", "low < high"]),
        ("  model.layers[0].units: []\n", ["spec.yaml:13:26:", "at least one choice"]),
        ("  model.layers[0].units: [8, -3]\n", ["spec.yaml:13:30:", "choice -3", "positive"]),
        ("  training.batch_size: [16, 500]\n", ["spec.yaml:13:29:", "choice 500", "at most 120"]),
        ("  optimizer.learning_rate: {low: 0.1, hi: 1}\n", ["spec.yaml:13:39:", "mean 'high'"]),
    ],
)
def test_search_errors_are_spec_errors_at_their_line_and_column(iris_folder, search, needles):
    (iris_folder / "spec.yaml").write_text(
        iris_spec("{epochs: 2, batch_size: 16}") + "search:\n" + search
    )
    result = invoke("tune", iris_folder / "spec.yaml", "--trials", 1, "--output", iris_folder)
    one_error_line(result, 2, *needles)
    assert not (iris_folder / "study.db").exists()  # stopped before the first trial


def test_train_and_validate_ignore_search_with_a_note(iris_folder):
    for args in (["validate"], ["train", "--smoke"]):
        result = invoke(*args, iris_folder / "spec.yaml")
        assert result.exit_code == 0, result.stderr
        assert "search: section is for nncli tune; " in result.stderr


def test_cv_objective_is_the_mean_over_the_folds(iris_folder):
    out = iris_folder / "cv-search"
    result = tune(iris_folder / "spec.yaml", 1, output=out, cv=3)
    number, values, value = result.best
    spec = spec_module.load(out / "best.yaml")
    assert value == pytest.approx(cv_command.cross_validate(spec, 3).objective(), abs=1e-12)
    assert (out / "best" / "model.h5").exists()  # the best values trained once on the split


def _line_problem(folder: Path) -> Path:
    """y = 2x + 1 fitted by one linear unit with full-batch SGD for 3 epochs. The inputs are
    standardised on the training rows, so the mean squared error's curvature is 2 in every
    direction: each step scales the error by |1 - 2 lr|, and lr = 0.5 solves it in one step."""
    x = np.linspace(-3, 5, 40)
    rows = "".join(f"{a:.6f},{2 * a + 1:.6f}\n" for a in x)
    (folder / "line.csv").write_text("x,y\n" + rows)
    (folder / "line.yaml").write_text(
        """\
seed: 0
data: {kind: csv, path: line.csv, target: y, validation_split: 0.25}
model:
  layers:
    - {type: dense, units: 1}
loss: mse
optimizer: {type: sgd, learning_rate: 0.01}
training: {epochs: 3, batch_size: full, shuffle: false}
search:
  optimizer.learning_rate: {low: 1.0e-3, high: 10.0, log: true}
"""
    )
    return folder / "line.yaml"


def _validation_loss(path: Path, rate: float) -> float:
    spec = spec_module.load(path, [f"optimizer.learning_rate={rate!r}"])
    ready = resolve(spec)
    x, y, config = fit_arrays(spec, ready.ds, smoke=False)
    run = TrainingRun(spec, ready, path.parent / "unused.h5")
    run.fit(x, y, config, [], periodic=False, overrides=(), device=None)
    return kept_value(run.history, "val_loss")


def test_the_search_finds_a_known_best_learning_rate_in_20_trials(tmp_path):
    path = _line_problem(tmp_path)
    grid = [float(r) for r in np.geomspace(1e-3, 1.5, 41)]  # past 1.5 it only blows up
    losses = [_validation_loss(path, r) for r in grid]
    best_of_grid = grid[int(np.argmin(losses))]
    assert 0.4 < best_of_grid < 0.6  # the optimum the problem was built with: 0.5
    result = tune(path, 20, output=tmp_path / "search")
    assert len(result.rows) == 20
    found = result.best[1]["optimizer.learning_rate"]
    assert best_of_grid / 3 <= found <= best_of_grid * 3, (found, best_of_grid)


def _running(out: Path) -> bool:
    """Whether the study in ``out`` has a trial under way (read only: opening it with Optuna
    would create the tables the process under test is creating)."""
    db = out / "study.db"
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] > 0
    except sqlite3.Error:  # the tables are not there yet
        return False


@pytest.mark.slow
def test_ctrl_c_marks_the_trial_failed_and_says_how_to_continue(iris_folder):
    (iris_folder / "spec.yaml").write_text(
        iris_spec("{epochs: 400, batch_size: 4}") + SEARCH.replace("[4, 16]", "[64, 128]")
    )
    out = iris_folder / "search"
    command = [sys.executable, "-m", "nncli", "tune", str(iris_folder / "spec.yaml")]
    process = subprocess.Popen(
        [*command, "--trials", "5", "--output", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        while not _running(out):
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "continue with: nncli tune" in stderr and "--output" in stderr
    states = [t.state for t in _study(out).trials]
    assert states == [optuna.trial.TrialState.FAIL]
    assert not list(out.glob(".trial-*"))


def test_grid_points_and_the_difference_a_study_reports():
    from nncli.spec.search import Param, described, difference

    rate = Param("optimizer.learning_rate", "float", 1e-3, 1e-1, log=True)
    assert rate.grid(3) == pytest.approx([1e-3, 1e-2, 1e-1])
    assert Param("training.batch_size", "int", 16, 20).grid(5) == [16, 17, 18, 19, 20]
    units = Param("model.layers[0].units", "choice", choices=(8, 16))
    assert units.assignment(16) == "model.layers[0].units=16"
    stored = described([rate, units])
    assert difference(stored, [rate, units]) is None
    wider = Param("optimizer.learning_rate", "float", 1e-3, 1.0, log=True)
    assert difference(stored, [wider, units]) == (
        "optimizer.learning_rate: the study searched float in [0.001, 0.1] (log), "
        "the spec now float in [0.001, 1.0] (log)"
    )
    assert "not searched" in difference(stored, [rate])


def test_the_sampler_is_seeded_from_the_spec(iris_folder):
    """Two new studies of one spec try the same values; another seed tries others."""
    path = iris_folder / "spec.yaml"
    first = tune(path, 1, output=iris_folder / "a")
    again = tune(path, 1, output=iris_folder / "b")
    values = [[row["optimizer.learning_rate"] for row in r.rows] for r in (first, again)]
    assert values[0] == values[1]
    other = tune(path, 1, output=iris_folder / "c", overrides=["seed=1"])
    assert [row["optimizer.learning_rate"] for row in other.rows] != values[0]


class _CtrlCAtBatch2(Callback):
    """Sends this process a SIGINT after batch 2 of epoch 1; counts the batches trained."""

    def __init__(self):
        self.batches: list[tuple[int, int]] = []

    def on_batch_end(self, epoch, batch, batches, loss, seen):
        self.batches.append((epoch, batch))
        if (epoch, batch) == (1, 2):
            os.kill(os.getpid(), signal.SIGINT)


def test_a_trials_ctrl_c_waits_for_the_end_of_its_epoch(iris_folder):
    """The search's guard stops a trial once its epoch has ended (every batch of epoch 1 runs,
    none of epoch 2); the train command's own guard stops at the next batch."""
    spec = spec_module.load(iris_folder / "spec.yaml")  # 120 training rows, batches of 16: 8
    for guard, expected in ((SignalStop(at="epoch"), 8), (None, 2)):
        counter = _CtrlCAtBatch2()
        callbacks = [counter] + ([guard] if guard else [])
        with pytest.raises(Interrupted) as stopped:
            train(spec, output=iris_folder / "out" / "m.h5", force=True, callbacks=callbacks)
        assert stopped.value.exit_code == 130
        assert counter.batches == [(1, b) for b in range(1, expected + 1)]
