"""Faults injected into training: divergence, bad numbers in the data, Ctrl-C and SIGTERM in a real
process, errors and SIGKILL in the middle of a save. Each checks the exit code, the one line on
stderr, and that the files left behind are intact (their hashes before and after)."""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line, sha

from nncli.checkpoint import model as model_io
from nncli.engine.network import Sequential
from nncli.training.callbacks import Callback

BATCHES = 8  # iris: 120 training rows in batches of 16

IRIS_SPEC = iris_spec("{epochs: 4, batch_size: 16, checkpoint_every: 1}")


def arrays(path: Path, roots=("model", "optimizer")) -> dict[str, np.ndarray]:
    """Every dataset under ``roots``, by its path in the file."""
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        for root in roots:
            f[root].visititems(
                lambda name, obj, root=root: (
                    found.__setitem__(f"{root}/{name}", obj[()])
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
    return found


def assert_same_arrays(a: Path, b: Path) -> None:
    x, y = arrays(a), arrays(b)
    assert x.keys() == y.keys() and x
    for key in x:
        np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def leftovers(folder: Path) -> list[str]:
    """Temporary files or locks a run must not leave behind."""
    return sorted(p.name for p in folder.glob(".*"))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(IRIS, tmp_path / "iris.csv")
    (tmp_path / "iris.yaml").write_text(IRIS_SPEC)
    return tmp_path


# -- divergence ------------------------------------------------------------------------------------
def test_clip_norm_puts_the_norm_before_clipping_in_history_csv(work: Path):
    spec = work / "iris.yaml"
    clip = "optimizer={type: adam, learning_rate: 0.01, clip_norm: 0.001}"
    assert invoke("train", spec, "--set", clip, "--quiet").exit_code == 0
    lines = (work / "out" / "history.csv").read_text().splitlines()
    column = lines[0].split(",").index("grad_norm")
    norms = [float(line.split(",")[column]) for line in lines[1:]]
    assert len(norms) == 4
    assert all(np.isfinite(norms)) and min(norms) > 0.001  # before clipping: above clip_norm


def inject_inf_gradient(monkeypatch, at_call: int, before=lambda: None) -> None:
    """Backward pass number ``at_call`` gives an infinite gradient (after calling ``before``)."""
    original, calls = Sequential.backward, [0]

    def backward(self, dy):
        out = original(self, dy)
        calls[0] += 1
        if calls[0] == at_call:
            before()
            next(iter(self.named_gradients().values()))[...] = np.inf
        return out

    monkeypatch.setattr(Sequential, "backward", backward)


@pytest.mark.parametrize(
    ("clip", "batch", "needle"),
    [
        ("clip_norm: 1.0", 2, "the gradient norm became inf"),
        # no clipping: the last step of epoch 3 leaves NaN weights with every loss finite
        ("weight_decay: 0", BATCHES, "the weights 0.dense.weight became non-finite"),
    ],
    ids=["non-finite-norm", "non-finite-weights"],
)
def test_divergence_exits_5_and_never_saves_over_the_last_good_checkpoint(
    work: Path, monkeypatch, clip: str, batch: int, needle: str
):
    out = work / "out"
    latest = out / "model.latest.h5"
    seen = {}

    def record():  # epoch 3 is running: the latest file holds epoch 2
        seen["sha"] = sha(latest)
        seen["epoch"] = model_io.load(latest).training["epoch"]

    inject_inf_gradient(monkeypatch, 2 * BATCHES + batch, record)
    optimizer = f"optimizer={{type: adam, learning_rate: 0.01, {clip}}}"
    result = invoke("train", work / "iris.yaml", "--set", optimizer)
    line = one_error_line(result, 5, f"epoch 3, batch {batch}", needle, "learning rate")
    assert f"last good checkpoint: {latest}" in line
    assert seen["epoch"] == 2 and sha(latest) == seen["sha"]
    weights = model_io.load(latest).net.get_weights()
    assert all(np.isfinite(w).all() for w in weights.values())
    assert not (out / "model.h5").exists() and not (out / "model.best.h5").exists()
    assert leftovers(out) == []  # no lock, no temporary file


def test_a_loss_that_grows_a_thousandfold_warns_once_even_under_quiet(work: Path):
    """lr 1e6: every loss finite (about 1e12 at epoch 1, from 1.1 before training), exit 0;
    one warning line on stderr naming the growth and the learning rate's spec line."""
    rate = "optimizer.learning_rate=1e6"
    result = invoke("train", work / "iris.yaml", "--set", rate, "--epochs", "6", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nncli: warning: the training loss grew from ")
    for needle in ("before training", "at epoch 1", "1000 times", "diverging", "--set"):
        assert needle in lines[0], (needle, lines[0])


def test_a_resumed_run_measures_growth_from_its_first_epoch(work: Path):
    from nncli.engine.history import History
    from nncli.training.guards import LossGrowth

    said: list[str] = []
    history = History(epochs=[{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
    growth = LossGrowth(said.append, lambda: pytest.fail("a resumed run measured again"), history)
    growth.on_train_begin({"initial_epoch": 2})
    for epoch, loss in [(3, 400.0), (4, 600.0), (5, 700.0), (6, 1e6)]:
        history.epochs.append({"epoch": epoch, "loss": loss})
        growth.on_epoch_end(epoch, history.epochs[-1])
    assert len(said) == 1 and "from 0.5 at epoch 1 to 600 at epoch 4" in said[0]


@pytest.mark.parametrize("loss", [float("inf"), float("nan")])
def test_non_finite_losses_and_a_zero_first_loss_do_not_warn(loss: float):
    from nncli.engine.history import History
    from nncli.training.guards import LossGrowth

    said: list[str] = []
    for first in (1.0, 0.0):
        growth = LossGrowth(said.append, lambda first=first: first, History())
        growth.on_train_begin({"initial_epoch": 0})
        growth.on_epoch_end(1, {"epoch": 1, "loss": loss})
        growth.on_epoch_end(2, {"epoch": 2, "loss": 5.0})
    assert said == []


# -- NaN and infinity in the data ------------------------------------------------------------------
def with_cell(src: Path, dst: Path, line: int, column: int, value: str) -> Path:
    rows = src.read_text().splitlines()
    fields = rows[line - 1].split(",")
    fields[column] = value
    rows[line - 1] = ",".join(fields)
    dst.write_text("\n".join(rows) + "\n")
    return dst


@pytest.mark.parametrize(
    ("value", "sets", "needle"),
    [
        ("inf", [], "'inf' on line 6"),
        ("nan", [], "'nan' on line 6"),
        ("-Infinity", [], "'-Infinity' on line 6"),
        ("1e39", ["data.normalize=none"], "'1e39' on line 6"),  # finite in float64 only
        ("1e308", [], "'1e308' on line 6"),  # its square overflows while scaling
    ],
)
def test_nan_or_infinity_in_training_data_exits_3_with_line_and_column(
    work: Path, value: str, sets: list[str], needle: str
):
    with_cell(IRIS, work / "iris.csv", 6, 1, value)
    args = [w for s in sets for w in ("--set", s)]
    one_error_line(
        invoke("train", work / "iris.yaml", *args), 3, "iris.csv", "sepal_width_cm", needle
    )
    assert not (work / "out").exists()


def test_infinite_regression_target_exits_3(work: Path):
    rows = ["x,y"] + [f"{i},{2 * i}" for i in range(20)]
    rows[3] = "2,1e39"  # float32 cannot hold it
    (work / "reg.csv").write_text("\n".join(rows) + "\n")
    spec = IRIS_SPEC.replace("iris.csv", "reg.csv").replace("species", "y")
    spec = spec.replace("cross_entropy", "mse").replace("softmax", "linear")
    (work / "reg.yaml").write_text(spec)
    one_error_line(invoke("train", work / "reg.yaml"), 3, "reg.csv", "'y'", "line 4")


@pytest.mark.parametrize("value", ["inf", "nan", "1e39", "-1e308"])
def test_nan_or_infinity_at_predict_and_evaluate_exits_3(work: Path, value: str):
    assert invoke("train", work / "iris.yaml", "--quiet").exit_code == 0
    model = work / "out" / "model.h5"
    bad = with_cell(IRIS, work / "new.csv", 9, 2, value)
    for command in ("predict", "evaluate"):
        one_error_line(invoke(command, model, bad), 3, "new.csv", "petal_length_cm", "line 9")


# -- Ctrl-C and SIGTERM in a real process ----------------------------------------------------------
LONG_SPEC = """\
version: 1
seed: 3
data: {kind: csv, path: blobs.csv, target: label, validation_split: 0.2}
model:
  layers:
    - {type: dense, units: 32, activation: relu}
    - {type: dropout, rate: 0.1}
    - {type: dense, units: 32, activation: tanh}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.001}
training: {epochs: 40, batch_size: 8, checkpoint_every: 1}
output: out/model.h5
"""


def write_blobs(folder: Path) -> Path:
    """1200 rows, 6 features, 3 classes: about 50 ms an epoch, 2 s a run."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 6))
    label = np.array(["a", "b", "c"])[(x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)]
    rows = [",".join(f"f{i}" for i in range(6)) + ",label"]
    rows += [",".join(f"{v:.5f}" for v in r) + f",{c}" for r, c in zip(x, label, strict=True)]
    (folder / "blobs.csv").write_text("\n".join(rows) + "\n")
    (folder / "long.yaml").write_text(LONG_SPEC)
    return folder / "long.yaml"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    from nncli import spec as spec_module
    from nncli.commands import train as train_command

    spec = write_blobs(tmp_path_factory.mktemp("straight"))
    return train_command.train(spec_module.load(spec)).output


def wait_for(condition, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"training ended before the signal: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no checkpoint appeared in time")
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_leaves_a_checkpoint_and_resuming_matches_an_uninterrupted_run(
    tmp_path: Path, uninterrupted: Path, sig: int, code: int
):
    spec = write_blobs(tmp_path)
    out = tmp_path / "out"
    latest, lock = out / "model.latest.h5", out / ".nncli.lock"
    run = subprocess.Popen(
        [sys.executable, "-m", "nncli", "train", spec.name, "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(latest.exists, run)
        if sig == signal.SIGINT:  # meanwhile a second run into the same checkpoint is refused
            assert lock.read_text().split()[0] == str(run.pid)
            second = invoke("train", spec, "--output", out / "model.h5")
            one_error_line(second, 2, f"process {run.pid}", ".nncli.lock")
            other = invoke("train", spec, "--output", out / "other.h5", "--epochs", "1")
            assert other.exit_code == 0, other.stderr  # another checkpoint: its own lock
            assert (out / "other.history.csv").exists() and not (out / "history.csv").exists()
        run.send_signal(sig)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("nncli: error: training interrupted after epoch ")
    assert f"last good checkpoint: {latest}" in lines[0]
    assert not lock.exists() and not (out / "model.h5").exists()
    assert leftovers(out) == []
    done = model_io.load(latest).training["epoch"]
    assert 1 <= done < 40

    command = shlex.split(lines[0].split("; resume with: ")[1])
    assert command == [
        "nncli", "train", str(spec), "--resume", str(latest), "--output", str(out / "model.h5")
    ]  # fmt: skip
    resumed = subprocess.run(
        [sys.executable, "-m", "nncli", *command[1:], "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert model_io.load(out / "model.h5").training["epoch"] == 40
    assert_same_arrays(out / "model.h5", uninterrupted)  # no batch repeated or skipped


@pytest.mark.slow
def test_sigterm_without_checkpoint_every_keeps_the_last_epoch_and_its_command_finishes_the_run(
    tmp_path: Path, uninterrupted: Path
):
    spec = write_blobs(tmp_path)
    spec.write_text(LONG_SPEC.replace(", checkpoint_every: 1", ""))
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "nncli", "train", spec.name],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        for line in run.stdout:  # one line an epoch: stop in the fourth
            if line.startswith("epoch  3/"):
                run.send_signal(signal.SIGTERM)
                break
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 143, stderr
    line = stderr.strip().splitlines()[-1]
    latest = out / "model.latest.h5"
    assert f"last good checkpoint: {latest}; resume with: " in line
    done = model_io.load(latest).training["epoch"]
    assert 3 <= done < 40 and f"after epoch {done};" in line
    assert sorted(p.name for p in out.iterdir()) == ["model.latest.h5"]
    command = shlex.split(line.split("; resume with: ")[1])
    resumed = subprocess.run(
        [sys.executable, "-m", "nncli", *command[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_same_arrays(out / "model.h5", uninterrupted)


# -- a fault in the middle of a save while resuming ------------------------------------------------
def fail_mid_save(monkeypatch, exc: BaseException | Callable, after: int = 3) -> None:
    """The ``after``-th dataset written from now on raises ``exc``, or calls it (a function that
    raises): a part-written file."""
    original, calls = h5py.Group.create_dataset, [0]

    def create_dataset(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == after:
            if callable(exc):
                exc()
            raise exc
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)


def ctrl_c_twice() -> None:
    """Two real SIGINTs: the guard's handler notes the first and raises at the second, at once
    (a first one alone lets the save finish)."""
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the handler runs (and raises) within this sleep
    raise AssertionError("the second SIGINT did not stop the save")


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (ctrl_c_twice, 130, "training interrupted after epoch 3"),  # while saving it
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 4, "No space left on device"),
    ],
    ids=["ctrl-c", "disk-full"],
)
def test_a_fault_mid_save_leaves_the_resumed_from_checkpoint_byte_identical(
    work: Path, monkeypatch, exc: BaseException, code: int, needle: str
):
    spec, out = work / "iris.yaml", work / "out"
    latest = out / "model.latest.h5"
    assert invoke("train", spec, "--epochs", "2", "--quiet").exit_code == 0
    before = sha(latest)
    fail_mid_save(monkeypatch, exc)  # the resumed run's first save writes to the same path
    result = invoke("train", spec, "--epochs", "4", "--resume", latest, "--quiet")
    line = one_error_line(result, code, needle)
    assert sha(latest) == before and leftovers(out) == []
    assert model_io.load(latest).training["epoch"] == 2
    monkeypatch.undo()
    if code == 130:  # it names the file it resumed from, and its command finishes the run
        assert f"last good checkpoint: {latest}" in line
        command = shlex.split(line.split("; resume with: ")[1])
        assert invoke(*command[1:], "--quiet").exit_code == 0
        assert invoke("train", spec, "--output", work / "b" / "m.h5", "--quiet").exit_code == 0
        assert_same_arrays(out / "model.h5", work / "b" / "m.h5")


def test_resume_from_latest_keeps_the_best_weights_from_before_the_interruption(tmp_path):
    """restore_best after a resumed run must restore an epoch trained before the interruption:
    monitoring the validation loss with mode max makes an early epoch the best one."""
    from nncli import spec as spec_module
    from nncli.commands import train as train_command
    from nncli.errors import Interrupted
    from nncli.training.callbacks import Callback

    shutil.copy(IRIS, tmp_path / "iris.csv")
    es = "{monitor: val_loss, mode: max, patience: 20, restore_best: true}"
    sets = ["training.checkpoint_every=1", f"training.early_stopping={es}"]

    def spec_for(name: str):
        text = iris_spec("{epochs: 6, batch_size: 16}")
        text = text.replace("output: out/model.h5", f"output: {name}/model.h5")
        (tmp_path / f"{name}.yaml").write_text(text)
        return spec_module.load(tmp_path / f"{name}.yaml", sets)

    train_command.train(spec_for("straight"))

    class StopAfter3(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 3:
                raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train_command.train(spec_for("cut"), callbacks=[StopAfter3()])
    latest = tmp_path / "cut" / "model.latest.h5"
    train_command.train(spec_for("cut"), resume=latest)
    a = model_io.load(tmp_path / "straight" / "model.h5").net.get_weights()
    b = model_io.load(tmp_path / "cut" / "model.h5").net.get_weights()
    assert model_io.load(tmp_path / "cut" / "model.h5").training["best_epoch"] < 3
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


# -- Ctrl-C keeps the last completed epoch, checkpoint_every or not ------------------------------
KEPT_SPEC = """\
version: 1
seed: 4
dtype: {dtype}
data: {{kind: csv, path: iris.csv, target: species, validation_split: 0.2}}
model:
  layers:
    - {{type: dense, units: 8, activation: relu}}
    - {{type: dropout, rate: 0.2}}
    - {{type: dense, units: auto, activation: softmax}}
loss: cross_entropy
optimizer:
  type: adam
  learning_rate: 0.02
  schedule: {{type: plateau, monitor: val_accuracy, patience: 0, factor: 0.5}}
training:
  epochs: 8
  batch_size: 16
  # mode max on a falling val_loss: an early epoch stays the best, so resuming needs its weights
  early_stopping: {{monitor: val_loss, mode: max, patience: 20, restore_best: true}}
output: {output}
"""


class CtrlC(Callback):
    """Raises KeyboardInterrupt (as the signal guard does) after ``batch`` of ``epoch``, or at
    the end of ``epoch`` when ``batch`` is None."""

    def __init__(self, epoch: int, batch: int | None = None, before=lambda: None):
        self.epoch, self.batch, self.before = epoch, batch, before

    def on_batch_end(self, epoch, batch, batches, loss, seen):
        if (epoch, batch) == (self.epoch, self.batch):
            self.before()
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs):
        if self.batch is None and epoch == self.epoch:
            self.before()
            raise KeyboardInterrupt


def kept_spec(folder: Path, name: str, dtype: str = "float32", sets=()):
    from nncli import spec as spec_module

    shutil.copy(IRIS, folder / "iris.csv")
    text = KEPT_SPEC.format(dtype=dtype, output=f"{name}/model.h5")
    (folder / f"{name}.yaml").write_text(text)
    return spec_module.load(folder / f"{name}.yaml", list(sets))


def history_without_time(path: Path) -> dict[str, np.ndarray]:
    columns = model_io.load(path).training["history"]
    return {k: np.asarray(v) for k, v in columns.items() if k != "time"}


@pytest.mark.parametrize(
    ("dtype", "batch", "device"),
    [
        ("float32", 3, "cpu"),
        ("float64", 3, "cpu"),
        ("float32", None, "cpu"),
        ("float64", None, "cpu"),
        ("float32", 3, "gpu"),  # the strict CuPy stand-in: the state comes back from the device
    ],
    ids=["mid-epoch-f32", "mid-epoch-f64", "at-epoch-end-f32", "at-epoch-end-f64", "gpu-stand-in"],
)
def test_ctrl_c_without_checkpoint_every_saves_the_last_epoch_and_its_command_resumes_exactly(
    tmp_path: Path, monkeypatch, dtype: str, batch: int | None, device: str
):
    from nncli.commands import train as train_command
    from nncli.errors import Interrupted

    if device == "gpu":
        monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    sets = [f"device={device}"]
    train_command.train(kept_spec(tmp_path, "straight", dtype, sets))
    straight = tmp_path / "straight" / "model.h5"
    cut = tmp_path / "cut"
    stop_epoch = 5 if batch is not None else 4  # either way epoch 4 is the last completed one
    with pytest.raises(Interrupted) as err:
        spec = kept_spec(tmp_path, "cut", dtype, sets)
        train_command.train(spec, callbacks=[CtrlC(stop_epoch, batch)], overrides=sets)
    latest = cut / "model.latest.h5"
    message = str(err.value)
    assert err.value.exit_code == 130
    assert f"after epoch 4; last good checkpoint: {latest}; resume with: " in message
    assert sorted(p.name for p in cut.iterdir()) == ["model.latest.h5"]  # nothing else, no litter
    saved = model_io.load(latest).training
    assert saved["epoch"] == 4 and saved["best_epoch"] < 4  # mode max: an early epoch is best
    assert len(saved["history"]["epoch"]) == 4
    assert len(set(saved["history"]["lr"])) > 1  # the plateau schedule has reduced the rate

    command = shlex.split(message.split("; resume with: ")[1])
    assert command[3:5] == ["--set", f"device={device}"]
    resumed = invoke(*command[1:])  # the printed command, word for word
    assert resumed.exit_code == 0, resumed.stderr
    assert_same_arrays(cut / "model.h5", straight)  # weights and optimizer slots, bit for bit
    a, b = model_io.load(cut / "model.h5").training, model_io.load(straight).training
    for key in ("epoch", "best_epoch", "best_value"):
        assert a[key] == b[key], key
    for name, weights in b["resume_weights"].items():  # the last epoch's, beside the best
        np.testing.assert_array_equal(a["resume_weights"][name], weights, err_msg=name)
    x, y = history_without_time(cut / "model.h5"), history_without_time(straight)
    assert x.keys() == y.keys()
    for key in x:
        np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_ctrl_c_in_the_first_epoch_saves_nothing_and_says_so(tmp_path: Path):
    from nncli.commands import train as train_command
    from nncli.errors import Interrupted

    with pytest.raises(Interrupted) as err:
        train_command.train(kept_spec(tmp_path, "cut"), callbacks=[CtrlC(1, 2)])
    assert "after epoch 0; last good checkpoint: none; no epoch had completed" in str(err.value)
    assert not (tmp_path / "cut").exists()


@pytest.mark.parametrize(
    ("every", "stop", "saved"), [(1, 3, 2), (2, 4, 3)], ids=["saved-already", "one-epoch-newer"]
)
def test_ctrl_c_with_checkpoint_every_writes_latest_only_when_it_lags(
    tmp_path: Path, every: int, stop: int, saved: int
):
    """Epoch ``saved`` is the last completed; the periodic latest file holds it already (then it
    is left byte-identical) or an older epoch (then it is replaced by epoch ``saved``)."""
    from nncli.commands import train as train_command
    from nncli.errors import Interrupted

    latest, seen = tmp_path / "cut" / "model.latest.h5", {}
    spec = kept_spec(tmp_path, "cut", sets=[f"training.checkpoint_every={every}"])
    with pytest.raises(Interrupted) as err:
        hook = CtrlC(stop, 2, before=lambda: seen.setdefault("sha", sha(latest)))
        train_command.train(spec, callbacks=[hook])
    assert f"after epoch {saved}; last good checkpoint: {latest}" in str(err.value)
    assert model_io.load(latest).training["epoch"] == saved
    assert (sha(latest) == seen["sha"]) == (saved % every == 0)


# -- SIGKILL in the middle of a save ---------------------------------------------------------------
PAUSE_IN_SAVE = """
import os, sys, time
from pathlib import Path
import h5py
kind, at, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
calls = [0]

def pause_at_call():  # the test sends SIGKILL while this process waits here, mid-save
    calls[0] += 1
    if calls[0] == at:
        marker.write_text("paused")
        while True:
            time.sleep(60)

if kind == "dataset":  # partway through writing the temporary file
    create_dataset = h5py.Group.create_dataset
    def patched(self, *args, **kwargs):
        pause_at_call()
        return create_dataset(self, *args, **kwargs)
    h5py.Group.create_dataset = patched
else:  # the temporary file complete, not yet renamed over the checkpoint
    replace = os.replace
    def patched(src, dst, *args, **kwargs):
        if ".tmp-" in os.fspath(src) and os.fspath(dst).endswith(".h5"):
            pause_at_call()
        return replace(src, dst, *args, **kwargs)
    os.replace = patched
from nncli.cli import app
sys.argv = ["nncli", "train", *sys.argv[4:]]
app()
"""
DATASETS_PER_SAVE = 46  # h5py datasets in one save of the iris model below


def kill_mid_save(work: Path, kind: str, at: int) -> int:
    """Train in a subprocess, SIGKILL it at its ``at``-th dataset (or rename) -> its pid."""
    marker = work / "paused"
    marker.unlink(missing_ok=True)
    run = subprocess.Popen(
        [sys.executable, "-c", PAUSE_IN_SAVE, kind, str(at), str(marker), "iris.yaml", "--quiet"],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(marker.exists, run)
        run.send_signal(signal.SIGKILL)
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate(timeout=60)  # reaped: its pid no longer names a process
    assert run.returncode == -signal.SIGKILL
    return run.pid


@pytest.mark.slow
def test_sigkill_mid_save_leaves_whole_checkpoints_and_the_next_run_clears_the_litter(work):
    (work / "iris.yaml").write_text(iris_spec("{epochs: 4, batch_size: 16, checkpoint_every: 1}"))
    out, rng = work / "out", np.random.default_rng(11)
    # the first save (no checkpoint yet), the third (two whole ones), and between file and rename
    offsets = rng.integers(1, DATASETS_PER_SAVE + 1, size=2)
    moments = [("dataset", int(offsets[0])), ("dataset", 2 * DATASETS_PER_SAVE + int(offsets[1]))]
    moments.append(("rename", 2))
    for kind, at in moments:
        shutil.rmtree(out, ignore_errors=True)
        pid = kill_mid_save(work, kind, at)
        litter = sorted(p.name for p in out.glob(f".*.tmp-{pid}-*"))
        assert len(litter) == 1 and litter[0].startswith(".model.latest.h5.tmp-"), litter
        saved = sorted(out.glob("*.h5"))
        assert [p.name for p in saved] in ([], ["model.latest.h5"])
        for path in saved:  # whole: every digest checks, and the epochs are those completed
            epoch = model_io.load(path).training["epoch"]
            assert epoch == (at - 1 if kind == "rename" else (at - 1) // DATASETS_PER_SAVE)
        resume = ["--resume", saved[0]] if saved else []
        result = invoke("train", work / "iris.yaml", *resume, "--quiet")
        assert result.exit_code == 0, (kind, at, result.stderr)
        notes = [line for line in result.stderr.splitlines() if "nncli: note:" in line]
        assert len(notes) == 1, result.stderr
        assert f"removed 1 temporary file left by a stopped run ({litter[0]} in {out})" in notes[0]
        assert not list(out.glob(".*.tmp-*")) and not (out / ".nncli.lock").exists()
        assert model_io.load(out / "model.h5").training["epoch"] == 4


# -- resume refuses a changed optimizer or data encoding ----------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    shutil.copy(IRIS, folder / "iris.csv")
    (folder / "iris.yaml").write_text(iris_spec("{epochs: 2, batch_size: 16}"))
    assert invoke("train", folder / "iris.yaml", "--quiet").exit_code == 0
    return folder


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("optimizer.type=sgd", "optimizer.type"),
        ("optimizer.beta1=0.8", "optimizer.beta1"),
        ("optimizer.clip_norm=1.0", "optimizer.clip_norm"),
        ("data.normalize=minmax", "data.normalize"),
        ("data.features=[sepal_length_cm, petal_length_cm]", "data.features"),
        ("data.validation_split=0.3", "data.validation_split"),
    ],
)
def test_resume_is_refused_naming_the_changed_setting(trained: Path, change: str, field: str):
    ckpt = trained / "out" / "model.h5"
    before = sha(ckpt)
    result = invoke("train", trained / "iris.yaml", "--set", change, "--resume", ckpt, "--quiet")
    one_error_line(result, 2, f"disagrees with the checkpoint {ckpt} at {field};")
    assert sha(ckpt) == before


def test_resume_may_change_the_learning_rate_and_the_epochs(trained: Path, tmp_path: Path):
    ckpt = trained / "out" / "model.h5"
    out = tmp_path / "more.h5"
    result = invoke(
        "train", trained / "iris.yaml", "--set", "optimizer.learning_rate=0.001",
        "--epochs", "3", "--resume", ckpt, "--output", out, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert model_io.load(out).training["epoch"] == 3


# -- a checkpoint whose weights disagree with the layers it describes ---------------------------
@pytest.mark.parametrize(
    ("weight_shape", "needle"),
    [
        ((9, 4), "dense has a weight of shape (9, 4), but its config (activation: relu, units: 8)"),
        (
            (8, 5),
            "has a weight of shape (8, 5), but its config (activation: relu, units: 8) on "
            "input (4,) builds (8, 4)",
        ),
    ],
)
def test_weights_that_disagree_with_their_layer_are_refused(
    trained: Path, tmp_path: Path, weight_shape, needle
):
    """Written by the real checkpoint writer (valid checksums), so only the shape check stands
    between this file and a network built with the wrong weights."""
    from nncli import checkpoint

    stored = checkpoint.load(trained / "out" / "model.h5")
    layer = stored.layers[0]
    layer.params["weight"] = np.zeros(weight_shape, dtype=np.float32)
    bad = tmp_path / "bad.h5"
    checkpoint.save(bad, stored)
    for command in (["inspect", bad], ["evaluate", bad, IRIS], ["predict", bad, IRIS]):
        one_error_line(invoke(*command), 4, str(bad), "model cannot be rebuilt: /model/0", needle)
