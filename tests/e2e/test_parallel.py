"""Data parallelism over MPI (nncli/training/parallel.py): 2-rank runs through the ``mpiexec`` of
the ``mpi`` extra equal one process's weights, resume across world sizes, and end cleanly when a
rank raises, dies, disagrees, diverges or is interrupted.

The ranks run with one BLAS thread each. Subprocess timeouts are hang guards, not timing checks.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import DATASETS, IRIS, invoke, one_error_line
from PIL import Image

from nncli.checkpoint import model as model_io
from nncli.commands import launch as launch_command
from nncli.engine.layers.dropout import Dropout
from nncli.errors import SpecError
from nncli.training.parallel import World, launched_size

MPIEXEC = launch_command.mpiexec_path()
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
    reason='needs mpiexec and mpi4py (pip install -e ".[mpi]")',
)
HANG_GUARD = 120  # seconds: a job that hangs fails the test instead of blocking CI

DENSE = """\
version: 1
seed: 3
dtype: float64
data: {kind: csv, path: iris.csv, target: species, validation_split: 0.2, test_split: 0.1}
model:
  layers:
    - {type: dense, units: 12, activation: relu}
    - {type: dropout, rate: 0.3}
    - {type: batchnorm}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: sgd, learning_rate: 0.05, momentum: 0.9}
training: {epochs: 4, batch_size: 25}
metrics: [f1]
output: out/model.h5
"""
CONV = """\
version: 1
seed: 5
dtype: float64
data:
  kind: images
  path: digits
  normalize: standard
  validation_split: 0.2
  augment: {flip_horizontal: true, shift: 1, rotate: 10, noise: 0.05}
model:
  layers:
    - {type: conv2d, filters: 3, kernel_size: 3, padding: same, use_bias: false}
    - batchnorm
    - relu
    - {type: maxpool2d, pool_size: 2}
    - flatten
    - {type: dropout, rate: 0.2}
    - {type: dense, units: auto, activation: softmax}
loss: {type: cross_entropy, class_weight: [1, 2, 1, 1, 1, 1, 1, 3, 1, 1]}
optimizer: {type: sgd, learning_rate: 0.05, momentum: 0.9}
training: {epochs: 3, batch_size: 9}
output: out/model.h5
"""
RECURRENT = """\
version: 1
seed: 7
dtype: float64
data: {kind: sequences, path: walks.csv, id: walk, order: t, features: [value], target: drift,
       target_per: sequence, validation_split: 0.2}
model:
  layers:
    - {type: gru, units: 5, return_sequences: true}
    - {type: dropout, rate: 0.2}
    - {type: lstm, units: 4}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: sgd, learning_rate: 0.1, momentum: 0.9, clip_norm: 1.0}
training: {epochs: 3, batch_size: 7}
output: out/model.h5
"""
GRAPH = """\
version: 1
seed: 9
dtype: float64
data: {kind: csv, path: iris.csv, target: species, validation_split: 0.2}
model:
  layers:
    - {type: dense, units: 8, activation: relu, name: stem}
    - {type: residual, name: deep, layers: [{type: dense, units: 8, use_bias: false}, batchnorm,
                                             relu, {type: dropout, rate: 0.3}]}
    - {type: dense, units: 3, inputs: input, name: wide}
    - {type: concat, inputs: [deep, wide]}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: sgd, learning_rate: 0.05, momentum: 0.9}
training: {epochs: 3, batch_size: 25}
output: out/model.h5
"""
SPECS = {"dense": DENSE, "conv": CONV, "recurrent": RECURRENT, "graph": GRAPH}

RAISE_ON_THIS_RANK = """\
import nncli.commands.train as train
from nncli.cli import app
from nncli.errors import DataError

def fails(*args, **kwargs):
    raise DataError("injected failure", where="rank.csv")

train.fit = fails
app()
"""
KILL_IN_EPOCH_3 = """\
import os, signal
from nncli.training.parallel import World

steps, real_sum = [], World.sum_gradients

def sum_gradients(self, grads):  # SIGKILL in the 3rd epoch's 3rd step (5 steps an epoch)
    steps.append(1)
    if len(steps) == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    real_sum(self, grads)

World.sum_gradients = sum_gradients
"""
DIE_ON_THIS_RANK = KILL_IN_EPOCH_3 + "from nncli.cli import app\napp()\n"

CTRL_C_ON_RANK_0 = """\
import os, signal
from nncli.training.guards import SignalStop
from nncli.cli import app

real = SignalStop.on_batch_end

def on_batch_end(self, epoch, batch, *rest):  # Ctrl-C reaches rank 0 in epoch 3's 2nd batch
    if (epoch, batch) == (3, 2) and os.environ["PMI_RANK"] == "0":
        self.signum = signal.SIGINT
    real(self, epoch, batch, *rest)

SignalStop.on_batch_end = on_batch_end
app()
"""

SPY_ON_THIS_RANK = """\
import json, os
import nncli.data as data
from nncli.training import spread
from nncli.cli import app

seen = {"loads": 0, "held": []}
real_load, real_hold = data.load, spread.Spread.hold

def load(*args, **kwargs):
    seen["loads"] += 1
    return real_load(*args, **kwargs)

def hold(self, positions, keep=None):
    sent = keep not in self.kept  # kept rows are sent once
    got = real_hold(self, positions, keep)
    if sent:
        seen["held"].append([len(self), spread.held_bytes(got), keep is not None])
    return got

data.load, spread.Spread.hold = load, hold
try:
    app()
finally:
    with open(f"spy-{os.environ['PMI_RANK']}.json", "w") as f:
        json.dump(seen, f)
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Tiny copies of the data: iris, 80 digits as 8x8 PNGs in a folder per class (augmented;
    the last batch of 9 holds one row, so one of two ranks holds none) and 30 random walks;
    the three specs beside them."""
    root = tmp_path_factory.mktemp("parallel")
    shutil.copy(IRIS, root / "iris.csv")
    digits = np.loadtxt(DATASETS / "digits.csv", delimiter=",", skiprows=1, max_rows=80)
    for i, row in enumerate(digits):
        label = root / "digits" / str(int(row[-1]))
        label.mkdir(parents=True, exist_ok=True)
        pixels = (row[:-1].reshape(8, 8) * 15).astype(np.uint8)
        Image.fromarray(pixels).save(label / f"{i:03d}.png")
    with open(DATASETS / "walks.csv", newline="") as f:
        rows = list(csv.reader(f))
    with open(root / "walks.csv", "w", newline="") as f:
        csv.writer(f).writerows([rows[0], *(r for r in rows[1:] if int(r[0][1:]) < 30)])
    for name, text in SPECS.items():
        (root / f"{name}.yaml").write_text(text)
    (root / "raise.py").write_text(RAISE_ON_THIS_RANK)
    (root / "die.py").write_text(DIE_ON_THIS_RANK)
    (root / "spy.py").write_text(SPY_ON_THIS_RANK)
    (root / "ctrlc.py").write_text(CTRL_C_ON_RANK_0)
    return root


def ranks(folder: Path, *args: object, n: int = 2) -> subprocess.CompletedProcess:
    """``mpiexec -n N python -m nncli ARGS`` in ``folder`` (``:`` starts another program)."""
    command = [MPIEXEC, "-n", str(n), sys.executable, "-m", "nncli"]
    command += [str(a) for a in args]
    return run_job(command, folder)


def run_job(command: list[str], folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    try:
        return subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, timeout=HANG_GUARD
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang guard: {' '.join(command)} still running after {HANG_GUARD} s")


def one_process(folder: Path, spec: str, *args: object) -> Path:
    """Train in this process (no launcher: one rank) -> the checkpoint."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = invoke("train", spec, "--quiet", *args)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.stderr
    return folder / [a for a in args if str(a).endswith(".h5")][-1]


def reference(folder: Path, name: str) -> Path:
    """The single-process run of spec ``name`` (trained once for the module)."""
    path = folder / f"one-{name}" / "model.h5"
    return path if path.exists() else one_process(folder, f"{name}.yaml", "--output", path)


def weights(path: Path) -> dict[str, np.ndarray]:
    return model_io.load(path, "cpu", "float64").net.get_weights()


def assert_same_weights(a: Path, b: Path, tolerance: float = 1e-9) -> None:
    """Every array of b equals a's within ``tolerance`` of a's largest entry."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        scale = max(float(np.abs(wa[name]).max()), 1e-12)
        error = float(np.abs(wa[name] - wb[name]).max()) / scale
        assert error < tolerance, (name, error)


def history(path: Path) -> dict[str, np.ndarray]:
    with open(path.parent / "history.csv") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in rows[0] if k != "time"]
    return {k: np.array([float(r[k]) for r in rows]) for k in keys}


# -- without MPI: the pieces -------------------------------------------------------------------
def test_launchers_are_detected_from_the_environment():
    assert launched_size({}) == 1
    assert launched_size({"PMI_SIZE": "4", "PMI_RANK": "1"}) == 4
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3
    assert launched_size({"PMIX_RANK": "0"}) == 2  # a rank without a size: try MPI


def test_shares_cover_each_batch_once_in_order():
    for rows in (1, 2, 7, 25):
        for size in (1, 2, 3, 5):
            shares = [World.share(_FakeWorld(r, size), rows) for r in range(size)]
            taken = [i for s in shares for i in range(rows)[s]]
            assert taken == list(range(rows))
            assert (
                max(s.stop - s.start for s in shares) - min(s.stop - s.start for s in shares) <= 1
            )


class _FakeWorld:
    def __init__(self, rank: int, size: int):
        self.rank, self.size, self.parallel = rank, size, size > 1


def test_dropout_masks_belong_to_global_rows():
    x = np.ones((10, 4))
    whole = Dropout(0.5)
    whole.build((4,), _backend(), np.random.default_rng(0))
    whole.set_rng(np.random.default_rng(9))
    expected = whole.forward(x, training=True)
    parts = []
    for first, stop in ((0, 3), (3, 10)):
        part = Dropout(0.5)
        part.build((4,), _backend(), np.random.default_rng(0))
        part.set_rng(np.random.default_rng(9))
        part.batch_share = (first, 10)
        parts.append(part.forward(x[first:stop], training=True))
    np.testing.assert_array_equal(np.concatenate(parts), expected)


def _backend():
    from nncli.backend import get_backend

    return get_backend("cpu", "float64")


def test_workers_without_the_extra_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(launch_command, "mpiexec_path", lambda: None)
    (tmp_path / "spec.yaml").write_text(DENSE)
    result = invoke("train", tmp_path / "spec.yaml", "--workers", "2")
    assert result.exit_code == 2
    assert 'pip install -e ".[mpi]"' in result.stderr


def test_workers_under_a_launcher_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(SpecError, match="outside a launcher"):
        launch_command.launch(["spec.yaml"], 2)


def test_workers_is_taken_out_of_the_ranks_arguments():
    args = ["spec.yaml", "--workers", "2", "--epochs", "3", "--workers=4", "--quiet"]
    assert launch_command.without_workers(args) == ["spec.yaml", "--epochs", "3", "--quiet"]


FAKE_MPIEXEC = """\
#!{python}
# what MPICH's mpiexec does when rank 1 (process 4242) is killed: rank 0's lines pass first,
# then its report on stdout, exit 9; each rank wrote its process id for the launcher
import os, sys, pathlib
pids = pathlib.Path(os.environ["NNCLI_RANK_PIDS"])
(pids / "rank-0").write_text("4241")
(pids / "rank-1").write_text("4242")
{before}
print("epoch 1/4  loss 1.3")
print("")
print("=" * 83)
print("=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES")
print("=   PID 4242 RUNNING AT vm")
print("=   EXIT CODE: 9")
print("=" * 83)
print("YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)")
sys.exit({code})
"""


def fake_mpiexec(tmp_path: Path, monkeypatch, before: str = "", code: int = 9) -> None:
    """``--workers`` runs a script that plays mpiexec's part (no MPI needed)."""
    script = tmp_path / "mpiexec"
    script.write_text(FAKE_MPIEXEC.format(python=sys.executable, before=before, code=code))
    script.chmod(0o755)
    monkeypatch.setattr(launch_command, "mpiexec_path", lambda: str(script))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        launch_command.importlib.util, "find_spec", lambda n: n == "mpi4py" or real(n)
    )


def test_a_killed_rank_is_one_line_naming_it_and_the_resume_command(tmp_path, monkeypatch):
    """mpiexec kills rank 0 before it can speak, so the launcher speaks: its report becomes
    one line with the rank, the signal and the command that resumes from the newest checkpoint
    (written after the job started), and the job exits 128 + 9 as a shell would say."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(IRIS, "iris.csv")
    Path("dense.yaml").write_text(DENSE)
    latest = "pathlib.Path('out/model.latest.h5').parent.mkdir(); "
    latest += "pathlib.Path('out/model.latest.h5').write_bytes(b'x')"
    fake_mpiexec(tmp_path, monkeypatch, before=latest)
    result = invoke("train", "dense.yaml", "--workers", "2", "--set", "training.epochs=4")
    assert result.exit_code == 137, result.stderr
    assert result.stdout.splitlines() == ["epoch 1/4  loss 1.3"]  # the report is not shown
    line = one_error_line(result, 137, "rank 1 was killed by signal 9 (SIGKILL)")
    checkpoint = tmp_path / "out" / "model.latest.h5"
    assert f"; last good checkpoint: {checkpoint}; resume with: nncli train " in line
    assert line.endswith(
        f"dense.yaml --set training.epochs=4 --resume {checkpoint} --output "
        f"{tmp_path / 'out' / 'model.h5'}"
    )


def test_a_rank_killed_before_any_checkpoint_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(IRIS, "iris.csv")
    Path("dense.yaml").write_text(DENSE)
    fake_mpiexec(tmp_path, monkeypatch)
    result = invoke("train", "dense.yaml", "--workers", "2")
    one_error_line(result, 137, "rank 1 was killed", "no checkpoint was saved yet")


def test_a_rank_that_said_its_error_keeps_its_line_and_code(tmp_path, monkeypatch):
    """A rank's own error line is the job's one line: mpiexec's report after it is dropped."""
    monkeypatch.chdir(tmp_path)
    said = "print('nncli: error: rank 1: rank.csv: injected failure', file=sys.stderr)"
    fake_mpiexec(tmp_path, monkeypatch, before=said, code=3)
    result = invoke("train", "dense.yaml", "--workers", "2")
    one_error_line(result, 3, "rank 1: rank.csv: injected failure")
    assert "BAD TERMINATION" not in result.stdout


def test_the_killed_rank_is_read_from_mpich_and_open_mpi_reports():
    mpich = ["=   PID 31 RUNNING AT vm\n", "EXIT STRING: Segmentation fault (signal 11)\n"]
    assert launch_command.killed_rank(11, mpich, {30: 0, 31: 1}) == (1, 11)
    open_mpi = ["mpiexec noticed that process rank 2 with PID 9 on node x exited on signal 9"]
    assert launch_command.killed_rank(137, open_mpi, {}) == (2, 9)
    assert launch_command.killed_rank(137, [], {}) == (None, 9)
    assert launch_command.killed_rank(-15, [], {}) == (None, 15)
    for code in (0, 1, 3, 130, 143):  # nncli's own exit codes
        assert launch_command.killed_rank(code, [], {}) is None


# -- two ranks through mpiexec -----------------------------------------------------------------
def test_each_rank_of_a_machine_takes_its_own_gpu():
    world = _FakeWorld(rank=3, size=4)
    world.local_rank = 1  # the second rank on its machine
    assert World.device_for(world, "gpu") == "gpu:1"
    assert World.device_for(world, "gpu:0") == "gpu:0"  # a number named: every rank takes it
    assert World.device_for(world, "cpu") == "cpu"
    alone = _FakeWorld(rank=0, size=1)
    alone.local_rank = 0
    assert World.device_for(alone, "gpu") == "gpu"


@needs_mpi
def test_two_gpu_ranks_on_the_strict_stand_in_give_the_cpu_weights(folder):
    """device: gpu under MPI: the gradients, batchnorm's sums and the metrics cross between the
    device and the host only through the backend (the stand-in refuses any other way)."""
    one = reference(folder, "dense")
    os.environ["NNCLI_FAKE_GPU"] = "1"
    try:
        job = ranks(folder, "train", "dense.yaml", "--device", "gpu", "--output", "gpu2/model.h5")
    finally:
        del os.environ["NNCLI_FAKE_GPU"]
    assert job.returncode == 0, job.stderr
    assert job.stdout.startswith("device: gpu (strict stand-in, NNCLI_FAKE_GPU)"), job.stdout
    assert_same_weights(one, folder / "gpu2" / "model.h5", tolerance=1e-9)


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SPECS))
def test_two_ranks_give_the_single_process_weights(folder, name):
    one = reference(folder, name)
    job = ranks(folder, "train", f"{name}.yaml", "--quiet", "--output", f"two-{name}/model.h5")
    assert job.returncode == 0, job.stderr
    assert job.stderr == ""  # no rank warned or printed
    two = folder / f"two-{name}" / "model.h5"
    assert_same_weights(one, two)
    h1, h2 = history(one), history(two)  # training and validation metrics reduced over ranks
    assert h1.keys() == h2.keys()
    for key in h1:
        np.testing.assert_allclose(h2[key], h1[key], rtol=1e-9, err_msg=key)


@needs_mpi
def test_rank_0_alone_reads_the_data_and_each_rank_holds_its_share(folder):
    """Iris (4 float64 features): 105 training rows in batches of 25, 25, 25, 25, 5; rank 1
    takes the second half of each (13, 13, 13, 13, 3 rows) and half of the validation and test
    rows, sent once; it never opens the data file."""
    train = ["train", "dense.yaml", "--quiet", "--output", "spy/model.h5"]
    command = [MPIEXEC, "-n", "2", sys.executable, "spy.py", *train]
    job = run_job(command, folder)
    assert job.returncode == 0, job.stderr
    lead, other = (json.loads((folder / f"spy-{r}.json").read_text()) for r in (0, 1))
    assert (lead["loads"], other["loads"]) == (1, 0)
    row = 4 * 8
    epochs = [h for h in other["held"] if not h[2]]
    assert [h[:2] for h in epochs] == [[105, (13 * 4 + 3) * row]] * 4
    kept = sorted(h[:2] for h in other["held"] if h[2])
    assert kept == [[15, 8 * row], [30, 15 * row]]  # test, validation: the second half
    assert all(h[1] == h[0] * row for h in lead["held"])  # rank 0 holds every row
    assert_same_weights(reference(folder, "dense"), folder / "spy" / "model.h5")


@needs_mpi
@pytest.mark.slow
def test_resume_across_world_sizes_equals_the_uninterrupted_run(folder):
    full = reference(folder, "dense")
    ranks(folder, "train", "dense.yaml", "--quiet", "--epochs", "2", "--output", "r-2/a.h5")
    then_one = one_process(folder, "dense.yaml", "--resume", "r-2/a.h5", "--output", "r-2/b.h5")
    assert_same_weights(full, then_one)
    one_process(folder, "dense.yaml", "--epochs", "2", "--output", "r-1/a.h5")
    job = ranks(
        folder, "train", "dense.yaml", "--quiet", "--resume", "r-1/a.h5", "--output", "r-1/b.h5"
    )
    assert job.returncode == 0, job.stderr
    assert_same_weights(full, folder / "r-1" / "b.h5")


@needs_mpi
def test_ctrl_c_without_checkpoint_every_saves_epoch_2_on_rank_0_and_resuming_it_is_exact(folder):
    out = folder / "cut2"
    train = ["train", "dense.yaml", "--quiet", "--output", "cut2/model.h5"]
    job = run_job([MPIEXEC, "-n", "2", sys.executable, "ctrlc.py", *train], folder)
    assert job.returncode == 130, job.stderr
    line = [s for s in job.stderr.splitlines() if s.startswith("nncli: error:")][-1]
    latest = out / "model.latest.h5"
    # the paths as given (relative to the job's folder, where the command runs)
    assert "after epoch 2; last good checkpoint: cut2/model.latest.h5; resume with: " in line
    assert sorted(p.name for p in out.iterdir()) == ["model.latest.h5"]
    assert model_io.load(latest).training["epoch"] == 2
    command = shlex.split(line.split("; resume with: ")[1])
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        resumed = invoke(*command[1:])  # the printed command, in one process
    finally:
        os.chdir(cwd)
    assert resumed.exit_code == 0, resumed.stderr
    assert_same_weights(reference(folder, "dense"), out / "model.h5")


@needs_mpi
def test_a_raising_rank_ends_the_job_with_its_error(folder):
    train = ["train", "dense.yaml", "--quiet", "--output", "raise/model.h5"]
    command = [MPIEXEC, "-n", "1", sys.executable, "-m", "nncli", *train]
    command += [":", "-n", "1", sys.executable, "raise.py", *train]
    job = run_job(command, folder)
    assert job.returncode == 3  # the error's kind: a DataError
    errors = [line for line in job.stderr.splitlines() if line.startswith("nncli: error:")]
    assert errors == ["nncli: error: rank 1: rank.csv: injected failure"], job.stderr
    assert not (folder / "raise" / "model.h5").exists()


@needs_mpi
@pytest.mark.slow
def test_a_killed_rank_takes_the_job_down(folder):
    """Rank 1 dies mid-epoch 3: the launcher ends the job at once; the last checkpoint (epoch 2)
    is whole and resumes, in one process, to the uninterrupted run's weights."""
    train = ["train", "dense.yaml", "--quiet", "--set", "training.checkpoint_every=1"]
    train += ["--output", "die/model.h5"]
    command = [MPIEXEC, "-n", "1", sys.executable, "-m", "nncli", *train]
    command += [":", "-n", "1", sys.executable, "die.py", *train]
    job = run_job(command, folder)  # the hang guard: the survivor must not wait forever
    assert job.returncode != 0
    assert not (folder / "die" / "model.h5").exists()
    latest = folder / "die" / "model.latest.h5"
    assert int(model_io.load(latest, "cpu", "float64").training["epoch"]) == 2
    done = one_process(folder, "dense.yaml", "--resume", latest, "--output", "die/model.h5")
    assert_same_weights(reference(folder, "dense"), done)


KILL_RANK_1 = """\
import os

if os.environ.get("PMI_RANK") == "1":  # rank 1 of a --workers job dies in epoch 3
    import kill_in_epoch_3  # noqa: F401
"""


@needs_mpi
@pytest.mark.slow
def test_workers_report_a_killed_rank_and_its_resume_command_resumes(folder, tmp_path):
    """``--workers 2``, rank 1 SIGKILLed in epoch 3 (a sitecustomize in the ranks' path): one
    line naming rank 1 and the signal, exit 137, and the command it prints resumes from epoch
    2's checkpoint to the uninterrupted run's weights."""
    (tmp_path / "sitecustomize.py").write_text(KILL_RANK_1)
    (tmp_path / "kill_in_epoch_3.py").write_text(KILL_IN_EPOCH_3)
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    command = [sys.executable, "-m", "nncli", "train", "dense.yaml", "--workers", "2"]
    command += ["--quiet", "--set", "training.checkpoint_every=1", "--output", "kill/model.h5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(paths)}
    try:
        job = subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, timeout=HANG_GUARD
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang guard: the job still ran after {HANG_GUARD} s")
    assert job.returncode == 137, job.stderr
    lines = job.stderr.strip().splitlines()
    assert len(lines) == 1 and "rank 1 was killed by signal 9 (SIGKILL)" in lines[0], job.stderr
    assert not job.stdout.strip(), job.stdout  # mpiexec's own report is replaced by the line
    words = shlex.split(lines[0].split("; resume with: ")[1])
    assert words[:2] == ["nncli", "train"] and "kill/model.latest.h5" in words
    done = one_process(folder, *words[2:])
    assert_same_weights(reference(folder, "dense"), done)


@needs_mpi
def test_ranks_with_different_specs_stop_before_training(folder):
    (folder / "other.yaml").write_text(DENSE.replace("seed: 3", "seed: 4"))
    train = ["--quiet", "--output", "differ/model.h5"]
    command = [MPIEXEC, "-n", "1", sys.executable, "-m", "nncli", "train", "dense.yaml", *train]
    command += [":", "-n", "1", sys.executable, "-m", "nncli", "train", "other.yaml", *train]
    job = run_job(command, folder)
    assert job.returncode == 2
    lines = job.stderr.strip().splitlines()
    assert len(lines) == 1 and "rank 1 and rank 0 disagree" in lines[0], job.stderr
    assert "spec sha256" in lines[0]
    assert not (folder / "differ").exists()


@needs_mpi
def test_divergence_stops_every_rank_with_exit_5(folder):
    job = ranks(
        folder,
        "train",
        "dense.yaml",
        "--quiet",
        "--set",
        "optimizer.learning_rate=1e30",
        "--output",
        "nan/model.h5",
    )
    assert job.returncode == 5
    lines = job.stderr.strip().splitlines()  # the warning of a loss grown a thousandfold first
    errors = [line for line in lines if not line.startswith("nncli: warning: the training loss")]
    assert len(errors) == 1 and "training diverged" in errors[0], job.stderr


@needs_mpi
@pytest.mark.slow
def test_ctrl_c_on_workers_exits_130_with_the_resume_command(folder):
    latest = folder / "stop" / "model.latest.h5"
    command = [sys.executable, "-m", "nncli", "train", "dense.yaml", "--workers", "2"]
    command += ["--epochs", "100000", "--set", "training.checkpoint_every=1"]
    command += ["--output", "stop/model.h5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for _ in range(HANG_GUARD * 20):  # until the first checkpoint is whole
            if latest.exists() or job.poll() is not None:
                break
            time.sleep(0.05)
        job.send_signal(signal.SIGINT)
        _, err = job.communicate(timeout=HANG_GUARD)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            pytest.fail("hang guard: the interrupted job did not end")
    assert job.returncode == 130, err
    assert "resume with: nncli train" in err and "--resume" in err
    weights(latest)  # the last checkpoint is whole
