"""The command line through CliRunner: every command, every exit code, and bad input that
gives one line on stderr, the documented code, no traceback and no file written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import DATASETS, ROOT, invoke, one_error_line, sha

IRIS_SPEC = """\
version: 1
name: iris
seed: 0
data:
  kind: csv
  path: iris.csv
  target: species
  validation_split: 0.2
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training:
  epochs: 3
  batch_size: 16
output: out/model.h5
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(DATASETS / "iris.csv", tmp_path / "iris.csv")
    shutil.copy(DATASETS / "penguins.csv", tmp_path / "penguins.csv")
    (tmp_path / "iris.yaml").write_text(IRIS_SPEC)
    return tmp_path


@pytest.fixture
def trained(work: Path) -> Path:
    result = invoke("train", work / "iris.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return work / "out" / "model.h5"


# -- the happy paths ---------------------------------------------------------------------------
def test_version_and_help():
    assert invoke("--version").stdout.startswith("nncli ")
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "predict", "evaluate", "inspect", "validate"):
        assert command in result.stdout


def test_train_writes_checkpoint_history_and_resolved_spec(work: Path):
    result = invoke("train", work / "iris.yaml")
    assert result.exit_code == 0, result.stderr
    assert "epoch 3/3" in result.stdout and "val_accuracy" in result.stdout
    out = work / "out"
    assert (out / "model.h5").exists()
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 4
    resolved = (out / "spec.resolved.yaml").read_text()
    assert "beta1" in resolved and "early_stopping" in resolved  # defaults filled in


def test_quiet_prints_nothing(work: Path):
    result = invoke("train", work / "iris.yaml", "--quiet")
    assert result.exit_code == 0 and result.stdout == ""


def test_existing_output_needs_force(trained: Path, work: Path):
    before = sha(trained)
    one_error_line(invoke("train", work / "iris.yaml"), 2, "--force")
    assert sha(trained) == before
    assert invoke("train", work / "iris.yaml", "--force", "--quiet").exit_code == 0


def test_set_and_epochs_override(work: Path):
    result = invoke(
        "train",
        work / "iris.yaml",
        "--set",
        "model.layers[0].units=4",
        "--epochs",
        "2",
        "--output",
        work / "o2" / "m.h5",
    )
    assert result.exit_code == 0, result.stderr
    assert "epoch 2/2" in result.stdout
    with h5py.File(work / "o2" / "m.h5", "r") as f:
        assert f["model/0.dense/weight"].shape == (4, 4)


def test_predict_proba_keep_and_output_file(trained: Path, work: Path):
    result = invoke("predict", trained, work / "iris.csv", "--proba", "--keep", "species")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "species,prediction,proba_setosa,proba_versicolor,proba_virginica"
    assert len(lines) == 151
    out = work / "pred.csv"
    assert invoke("predict", trained, work / "iris.csv", "--output", out).exit_code == 0
    assert out.read_text().splitlines()[0] == "prediction"


def test_predict_without_the_target_column(trained: Path, work: Path):
    no_target = work / "new.csv"
    no_target.write_text(
        "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n5.1,3.5,1.4,0.2\n"
    )
    result = invoke("predict", trained, no_target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["prediction", "setosa"]


def test_predict_into_a_closed_pipe_exits_141_quietly(trained: Path, work: Path):
    """``nncli predict ... | head``: a reader that stops early is no error. The exit status is the
    shell's for a writer a SIGPIPE ended (128 + 13), and nothing is written to stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: every write fails
    try:
        process = subprocess.run(
            [sys.executable, "-m", "nncli", "predict", str(trained), str(work / "iris.csv")],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert process.returncode == 141, process.stderr
    assert process.stderr == b""


def test_evaluate_reports_per_class_and_confusion(trained: Path, work: Path):
    result = invoke("evaluate", trained, work / "iris.csv")
    assert result.exit_code == 0, result.stderr
    for word in ("accuracy", "precision", "recall", "confusion", "virginica"):
        assert word in result.stdout


def test_inspect_spec_checkpoint_and_json(trained: Path, work: Path):
    result = invoke("inspect", work / "iris.yaml")
    assert result.exit_code == 0, result.stderr
    assert "(N, 8)" in result.stdout and "total parameters: 67" in result.stdout
    result = invoke("inspect", trained)
    assert "epochs trained: 3" in result.stdout
    import json

    summary = json.loads(invoke("inspect", trained, "--json").stdout)
    assert summary["total_params"] == 4 * 8 + 8 + 8 * 3 + 3
    assert [r["output_shape"] for r in summary["layers"]] == [["N", 8], ["N", 3]]


def test_validate_prints_ok(work: Path):
    result = invoke("validate", work / "iris.yaml")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("OK") and "forward and backward" in result.stdout


def test_smoke_writes_nothing_next_to_the_spec(work: Path):
    result = invoke("train", work / "iris.yaml", "--smoke")
    assert result.exit_code == 0, result.stderr
    assert "smoke run OK" in result.stdout
    assert not (work / "out").exists()


@pytest.mark.parametrize("spec", sorted((ROOT / "models").glob("*.yaml")), ids=lambda p: p.stem)
def test_smoke_every_example_spec(spec: Path):
    result = invoke("train", spec, "--smoke", "--quiet")
    assert result.exit_code == 0, result.stderr


# -- resume --------------------------------------------------------------------------------------
def weights(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {f"{g}/{p}": f["model"][g][p][()] for g in f["model"] for p in f["model"][g]}


def test_resume_gives_bitwise_identical_weights(work: Path):
    spec = work / "iris.yaml"
    straight = work / "a" / "m.h5"
    assert invoke("train", spec, "--epochs", "6", "--output", straight, "--quiet").exit_code == 0
    half = work / "b" / "m.h5"
    assert invoke("train", spec, "--epochs", "3", "--output", half, "--quiet").exit_code == 0
    resumed = work / "c" / "m.h5"
    result = invoke(
        "train", spec, "--epochs", "6", "--resume", half, "--output", resumed, "--quiet"
    )
    assert result.exit_code == 0, result.stderr
    a, c = weights(straight), weights(resumed)
    assert a.keys() == c.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], c[k])


def test_resume_with_a_different_model_is_refused(trained: Path, work: Path):
    result = invoke(
        "train",
        work / "iris.yaml",
        "--resume",
        trained,
        "--set",
        "model.layers[0].units=5",
        "--output",
        work / "x" / "m.h5",
    )
    one_error_line(result, 2, "model.layers[0].units")


# -- bad input: one line, the documented code, nothing written ------------------------------------
def spec_with(work: Path, old: str, new: str) -> Path:
    path = work / "bad.yaml"
    text = IRIS_SPEC.replace(old, new)
    assert text != IRIS_SPEC
    path.write_text(text)
    return path


SPEC_ERRORS = [
    ("learning_rate: 0.01", "learnin_rate: 0.01", "did you mean 'learning_rate'"),
    ("units: 8", "units: -3", "expected a positive integer, got -3"),
    ("activation: relu", "activation: rellu", "did you mean 'relu'"),
    ("  epochs: 3", "  epochs: [3", "bad.yaml:"),
    ("  batch_size: 16", "  batch_size: 16\n  epochs: 4", "duplicate"),
    ("name: iris", "name: !!python/object/apply:os.system ['touch HACKED']", "bad.yaml:"),
    ("batch_size: 16", "batch_size: 100000", "batch_size"),
    ("epochs: 3", "epochs: 1\n  early_stopping: {monitor: val_acc}", "did you mean 'val_accuracy'"),
]


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    SPEC_ERRORS,
    ids=[
        "misspelled-key",
        "negative-units",
        "unknown-activation",
        "yaml-syntax",
        "duplicate-key",
        "python-tag",
        "batch-too-large",
        "keras-monitor-name",
    ],
)
def test_spec_errors_exit_2(work: Path, old: str, new: str, needle: str, monkeypatch):
    monkeypatch.chdir(work)
    result = invoke("train", spec_with(work, old, new))
    one_error_line(result, 2, needle)
    assert not (work / "out").exists()
    assert not (work / "HACKED").exists()


USAGE_ERRORS = [
    (["train", "SPEC", "--epochs", "-3"], "--epochs: expected a positive integer, got -3"),
    (["train", "SPEC", "--epochs", "0"], "--epochs: expected a positive integer, got 0"),
    (["train", "SPEC", "--epochs", "two"], "--epochs: expected a positive integer, got 'two'"),
    (["train", "SPEC", "--epoch", "3"], "unknown option --epoch (did you mean '--epochs'?)"),
    (["train"], "missing argument SPEC"),
    (["predict", "M.h5", "x.csv", "--steps", "0"], "--steps: expected a positive integer, got 0"),
    (["generate", "M.h5", "--prompt", "a", "--length", "-5"], "--length: expected a non-negative"),
    (["generate", "M.h5", "--prompt", "a", "--seed", "-1"], "--seed: expected a non-negative"),
    (["generate", "M.h5", "--prompt", "a", "--temperature", "nan"], "--temperature: expected"),
    (["generate", "M.h5"], "missing option --prompt"),
]


@pytest.mark.parametrize(("args", "expected"), USAGE_ERRORS)
def test_usage_errors_are_one_line_and_exit_2(work: Path, args: list[str], expected: str):
    result = invoke(*(work / "iris.yaml" if a == "SPEC" else a for a in args))
    assert one_error_line(result, 2).startswith(f"nncli: error: {expected}")
    assert "Usage" not in result.stdout + result.stderr and not (work / "out").exists()


DATA_ERRORS = [
    ("path: iris.csv", "path: nowhere.csv", "nowhere.csv"),
    ("target: species", "target: specis", "did you mean 'species'"),
]


@pytest.mark.parametrize(("old", "new", "needle"), DATA_ERRORS, ids=["missing-file", "no-target"])
def test_data_errors_exit_3(work: Path, old: str, new: str, needle: str):
    one_error_line(invoke("train", spec_with(work, old, new)), 3, needle)
    assert not (work / "out").exists()


def test_text_in_a_numeric_column_and_empty_csv_exit_3(work: Path):
    rows = (work / "iris.csv").read_text().splitlines()
    rows[5] = rows[5].replace(rows[5].split(",")[0], "abc", 1)
    (work / "iris.csv").write_text("\n".join(rows) + "\n")
    one_error_line(invoke("train", work / "iris.yaml"), 3, "abc")
    (work / "iris.csv").write_text("")
    one_error_line(invoke("train", work / "iris.yaml"), 3, "iris.csv")
    assert not (work / "out").exists()


def test_predict_missing_feature_and_unseen_category_exit_3(work: Path):
    spec = IRIS_SPEC.replace("iris.csv", "penguins.csv")
    spec = spec.replace("species\n", "species\n  missing: drop\n")
    (work / "p.yaml").write_text(spec)
    assert invoke("train", work / "p.yaml", "--quiet").exit_code == 0
    model = work / "out" / "model.h5"
    rows = (work / "penguins.csv").read_text().splitlines()
    header = rows[0].split(",")
    no_island = work / "no_island.csv"
    keep = [i for i, h in enumerate(header) if h != "island"]
    no_island.write_text("\n".join(",".join(r.split(",")[i] for i in keep) for r in rows[:5]))
    one_error_line(invoke("predict", model, no_island), 3, "island")
    unseen = work / "unseen.csv"
    unseen.write_text("\n".join([rows[0], rows[1].replace("Torgersen", "Atlantis")]) + "\n")
    one_error_line(invoke("predict", model, unseen), 3, "Atlantis")
    result = invoke("predict", model, unseen, "--unknown", "ignore")
    assert result.exit_code == 0, result.stderr


def test_broken_checkpoints_exit_4(trained: Path, work: Path):
    half = work / "half.h5"
    data = trained.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    one_error_line(invoke("predict", half, work / "iris.csv"), 4, "half.h5")
    text = work / "text.h5"
    text.write_text("not a checkpoint\n")
    one_error_line(invoke("inspect", text), 4, "text.h5")
    linked = work / "linked.h5"
    shutil.copy(trained, linked)
    with h5py.File(linked, "a") as f:
        f["model/0.dense/evil"] = h5py.ExternalLink("/etc/passwd", "/x")
    one_error_line(invoke("predict", linked, work / "iris.csv"), 4, "linked.h5")


def test_divergence_exits_5_naming_the_learning_rate(work: Path):
    spec = spec_with(work, "learning_rate: 0.01", "learning_rate: 1.0e+30")
    line = one_error_line(invoke("train", spec), 5, "diverged", "learning rate")
    assert "bad.yaml:" in line  # the spec line of the learning rate
    assert not (work / "out").exists()


# -- interruption ----------------------------------------------------------------------------------
def test_interrupt_keeps_the_last_checkpoint_and_prints_the_resume_command(work: Path):
    from nncli import spec as spec_module
    from nncli.commands import train as train_command
    from nncli.errors import Interrupted
    from nncli.training.callbacks import Callback

    class CtrlCAfterEpoch2(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                raise KeyboardInterrupt

    spec = spec_module.load(work / "iris.yaml", ["training.checkpoint_every=1"])
    with pytest.raises(Interrupted) as err:
        train_command.train(spec, callbacks=[CtrlCAfterEpoch2()])
    latest = work / "out" / "model.latest.h5"
    assert err.value.exit_code == 130
    assert "after epoch 2" in str(err.value) and f"--resume {latest}" in str(err.value)
    assert not (work / "out" / "model.h5").exists()
    result = invoke("train", work / "iris.yaml", "--resume", latest, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "epochs trained: 3" in invoke("inspect", work / "out" / "model.h5").stdout


def test_a_bug_exits_1_and_ctrl_c_exits_130_without_traceback(work: Path, monkeypatch):
    from nncli.commands import train as train_command

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(train_command, "train", broken)
    one_error_line(invoke("train", work / "iris.yaml"), 1, "internal error", "boom", "--debug")
    result = invoke("train", work / "iris.yaml", "--debug")
    assert result.exit_code == 1 and "Traceback" in result.stderr

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "train", interrupted)
    one_error_line(invoke("train", work / "iris.yaml"), 130, "interrupted")


def test_a_signal_outside_training_exits_with_its_own_code():
    import signal

    import typer

    from nncli import cli
    from nncli.training.guards import stopped

    codes = {}
    for signum in (signal.SIGINT, signal.SIGTERM):

        def action(signum: int = signum) -> None:
            raise stopped(signum)

        with pytest.raises(typer.Exit) as exited:
            cli.run(action, debug=False)
        codes[signum] = exited.value.exit_code
    assert codes == {signal.SIGINT: 130, signal.SIGTERM: 143}

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as exited:
        cli.run(ctrl_c, debug=False)
    assert exited.value.exit_code == 130  # a plain Ctrl-C


OVERFLOW = """\
data: {kind: csv, path: big.csv, target: y, normalize: none, validation_split: 0.0}
model: {layers: [{type: dense, units: 1}]}
loss: mse
training: {batch_size: 2}
"""


def test_numpy_warnings_never_come_before_the_error_line(tmp_path: Path):
    """Targets of 1e30 overflow the squared error: numpy's RuntimeWarning (two lines, with the
    source line) used to print before the exit line; the error line now stands alone. In a
    child process, so Python shows warnings as it does for users (pytest records them)."""
    rows = ["a,b,y", "1e30,1,1e30", "-1e30,2,1e30", "1e30,3,2", "2,4,3", "5,5,1", "1,2,1"]
    (tmp_path / "big.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "spec.yaml").write_text(OVERFLOW)
    command = [sys.executable, "-m", "nncli", "validate", "spec.yaml"]
    job = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert job.returncode == 5, job.stderr
    lines = job.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nncli: error: "), job.stderr
    assert lines[0].endswith("big.csv: one forward pass on 2 rows gave the loss inf"), lines
    debug = subprocess.run([*command, "--debug"], cwd=tmp_path, capture_output=True, text=True)
    assert "RuntimeWarning: overflow" in debug.stderr  # --debug shows everything


def test_a_warning_in_a_command_that_succeeds_is_one_warning_line(capsys):
    import warnings

    from nncli.cli.usage import run

    def action() -> int:
        for _ in range(2):  # the same warning twice is said once
            warnings.warn("overflow encountered in exp", RuntimeWarning, stacklevel=1)
        return 7

    assert run(action, debug=False) == 7
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("nncli: warning: overflow encountered in exp (RuntimeWarning, ")
    assert "test_command_line.py:" in lines[0]
