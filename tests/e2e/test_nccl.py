"""GPU ranks sum through NCCL (nncli/training/nccl.py) on the strict stand-in's NCCL
(nncli/testing/fakenccl.py, ``NNCLI_FAKE_GPU=1``): once a step, never through the host, with the
single-process weights; a failing rank still ends the job from inside NCCL's wait; the host path
with ``NNCLI_NCCL=0`` and, with one warning line, when a rank's CuPy has no NCCL.

Each rank of a job run through ``counted.py`` leaves the stand-in's counts in ``counts-<rank>
.json``. Subprocess timeouts are hang guards, not timing checks.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import IRIS
from test_parallel import DENSE, MPIEXEC, assert_same_weights, needs_mpi, one_process, run_job

from nncli import backend as backend_module
from nncli.backend import get_backend
from nncli.testing import fakegpu, fakenccl
from nncli.training import nccl
from nncli.training.parallel import World

PLAIN = DENSE.replace("    - {type: batchnorm}\n", "")  # no batchnorm: one sum a step
STEPS = 4 * 5  # 4 epochs of 120 training rows in batches of 25
SUMS_A_STEP = 1 + 3  # the gradients, and batchnorm's two forward sums and one backward sum
COUNTED = """\
import json, os
from nncli.testing import fakegpu
from nncli.cli import app

try:
    app()
finally:
    with open(f"counts-{os.environ['PMI_RANK']}.json", "w") as f:
        json.dump(dict(fakegpu.COUNTS), f)
"""
FAILS_AT_THE_THIRD_STEP = """\
import os, signal, sys
import nncli.training.parallel as parallel
from nncli.cli import app
from nncli.errors import DataError

original, calls, how = parallel.World.sum_gradients, [], sys.argv.pop(1)

def fails(self, grads):  # the other rank is then waiting inside NCCL's sum of this step
    calls.append(1)
    if len(calls) == 3:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise DataError("injected failure", where="rank.csv")
    original(self, grads)

parallel.World.sum_gradients = fails
app()
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nccl")
    shutil.copy(IRIS, root / "iris.csv")
    (root / "dense.yaml").write_text(DENSE)
    (root / "plain.yaml").write_text(PLAIN)
    (root / "counted.py").write_text(COUNTED)
    (root / "fails.py").write_text(FAILS_AT_THE_THIRD_STEP)
    return root


def plain_reference(folder: Path) -> Path:
    """The single-process run of the spec without batchnorm (trained once for the module)."""
    path = folder / "one-plain" / "model.h5"
    return path if path.exists() else one_process(folder, "plain.yaml", "--output", path)


def gpu_job(
    folder: Path, spec: str, out: str, *env: str, rank1: tuple[str, ...] = (), device="gpu"
) -> tuple:
    """2 stand-in GPU ranks training ``spec`` through counted.py -> (the job, each rank's
    counts); ``env`` (NAME=VALUE) for both ranks, ``rank1`` for rank 1 alone."""
    for old in folder.glob("counts-*.json"):
        old.unlink()
    train = ["counted.py", "train", spec, "--device", device, "--quiet", "--output", out]
    command = [MPIEXEC, "-n", "1", "env", "NNCLI_FAKE_GPU=1", *env, sys.executable, *train]
    command += [":", "-n", "1", "env", "NNCLI_FAKE_GPU=1", *env, *rank1, sys.executable, *train]
    job = run_job(command, folder)
    files = [folder / f"counts-{r}.json" for r in (0, 1)]
    if not all(f.exists() for f in files):  # a rank was aborted
        pytest.fail(f"the job ended with {job.returncode}: {job.stderr}")
    return job, [json.loads(f.read_text()) for f in files]


# -- in one process: the pieces ----------------------------------------------------------------
def test_float32_and_float64_map_to_nccls_datatypes():
    assert nccl.datatype(fakenccl, np.float32) == fakenccl.NCCL_FLOAT32 == 7  # nccl.h's values
    assert nccl.datatype(fakenccl, np.dtype("float64")) == fakenccl.NCCL_FLOAT64 == 8
    other = SimpleNamespace(NCCL_FLOAT32=70, NCCL_FLOAT64=80)  # read from the module given
    assert nccl.datatype(other, np.float64) == 80
    with pytest.raises(ValueError, match="got int32"):
        nccl.datatype(fakenccl, np.int32)


def test_the_switch_reads_the_environment():
    assert nccl.switched_off({"NNCLI_NCCL": "0"}) and nccl.switched_off({"NNCLI_NCCL": " Off"})
    assert not nccl.switched_off({}) and not nccl.switched_off({"NNCLI_NCCL": "1"})


def test_the_backend_hands_out_nccl_for_gpus_only(monkeypatch):
    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    assert backend_module.nccl(get_backend("cpu")) is None
    assert backend_module.nccl(get_backend("gpu")) is fakenccl
    monkeypatch.setattr(fakenccl, "available", False)  # a CuPy without NCCL
    assert backend_module.nccl(get_backend("gpu")) is None


class _Ranks:
    """Rank 0 of two, the other rank's row given (machine, GPU, NCCL off, NCCL missing; by
    default another machine's GPU 0 with NCCL): what ``connect`` asks of ``World``."""

    parallel, lead, size, rank = True, True, 2, 0

    def __init__(self, theirs: tuple[float, ...] | None = (-1.0, 0.0, 0.0, 0.0)):
        self.theirs, self.sums = theirs, 0

    def sum(self, values: np.ndarray) -> np.ndarray:
        self.sums += 1  # theirs None: the other rank's row is this one's (same machine and GPU)
        table = values.reshape(2, -1)
        table[1] = table[0] if self.theirs is None else self.theirs
        return values

    def broadcast(self, values: np.ndarray) -> np.ndarray:
        raise AssertionError("no communicator is made on the host path")


def test_without_nccl_on_a_rank_every_rank_sums_through_the_host_with_one_warning(monkeypatch):
    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    monkeypatch.delenv("NNCLI_NCCL", raising=False)
    gpu = get_backend("gpu", "float64")
    assert nccl.connect(_Ranks(theirs=(-1, 0, 0, 1)), gpu) == (None, nccl.FALLBACK)  # theirs
    monkeypatch.setattr(fakenccl, "available", False)
    assert nccl.connect(_Ranks(), gpu) == (None, nccl.FALLBACK)  # this rank lacks it
    monkeypatch.setattr(fakenccl, "available", True)
    assert nccl.connect(_Ranks(theirs=None), gpu) == (None, nccl.SHARED)  # NCCL refuses it
    assert "\n" not in nccl.FALLBACK and "NNCLI_NCCL=0" in nccl.FALLBACK
    monkeypatch.setenv("NNCLI_NCCL", "0")
    assert nccl.connect(_Ranks(), gpu) == (None, None)  # asked for: no warning
    cpu_ranks = _Ranks()
    assert nccl.connect(cpu_ranks, get_backend("cpu")) == (None, None)
    assert cpu_ranks.sums == 0  # CPU ranks do not even vote
    assert World().use_device(gpu) is None  # one process: nothing to join


class _Recorder:
    def __init__(self):
        self.calls, self.aborted = [], 0

    def allReduce(self, *args):  # noqa: N802 - NCCL's name
        self.calls.append(args)

    def abort(self):
        self.aborted += 1
        raise RuntimeError("already gone")  # abort never raises into the job's own abort


def test_a_sum_is_one_in_place_allreduce_nccl_accepts(monkeypatch):
    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    gpu = get_backend("gpu", "float64")
    values = gpu.asarray(np.arange(6.0))
    recorder = _Recorder()
    summing = nccl.NcclSum(fakenccl, recorder, gpu.xp)
    assert summing.takes(values) and not summing.takes(np.arange(3.0))
    assert not summing.takes(values[::2]) and not summing.takes(values.astype(np.int64))
    pending = summing.start(values)
    ((send, recv, count, kind, op, stream),) = recorder.calls
    assert send == recv == values.data.ptr and count == 6 and kind == fakenccl.NCCL_FLOAT64
    assert op == fakenccl.NCCL_SUM and stream == gpu.xp.cuda.get_current_stream().ptr
    sent, landed, name, _ = fakenccl.operands(*recorder.calls[0])  # the stand-in accepts them
    assert landed is sent and name == "SUM"
    landed[0] = 9.0  # the stand-in NCCL writes the device's own memory
    assert float(values[0]) == 9.0
    assert pending.Test()  # nothing else was queued on the stream
    world = World()
    world.nccl = summing
    world.abort(3)  # one process: no MPI abort, but the communicator's
    assert recorder.aborted == 1


class _Work:
    def __init__(self):
        self.finished = False

    def Test(self) -> bool:  # noqa: N802 - mpi4py's name
        return self.finished


def test_the_stream_event_is_done_when_the_queued_sum_is():
    stream = fakegpu.xp.cuda.get_current_stream()
    work = _Work()
    stream.queue(work, None)
    pending = nccl.Pending(stream.record())
    assert not pending.Test()
    work.finished = True
    assert pending.Test()


def test_the_stand_in_nccl_refuses_what_nccl_would_get_wrong(monkeypatch):
    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    gpu = get_backend("gpu", "float32")
    values = gpu.asarray(np.ones(5))
    ptr, stream = values.data.ptr, gpu.xp.cuda.get_current_stream()
    good = (ptr, ptr, 5, fakenccl.NCCL_FLOAT32, fakenccl.NCCL_SUM, stream.ptr)
    fakenccl.operands(*good)
    wrong = {
        2: (6, ValueError, "count 6 for the 5 values"),  # past the array's end
        3: (fakenccl.NCCL_FLOAT64, ValueError, "float64 given for the float32"),
        4: (17, fakenccl.NcclError, "op 17"),
        5: (stream, TypeError, "stream: expected an int"),  # the object, not its handle
        0: (values.data, TypeError, "sendbuf: expected an int"),
    }
    for at, (value, error, message) in wrong.items():
        args = list(good)
        args[at] = value
        with pytest.raises(error, match=message):
            fakenccl.operands(*args)
    dead = gpu.asarray(np.ones(5)).data.ptr  # the array is gone: so is its memory
    with pytest.raises(ValueError, match="live array"):
        fakenccl.operands(dead, dead, 5, fakenccl.NCCL_FLOAT32, fakenccl.NCCL_SUM, stream.ptr)


# -- two stand-in GPU ranks through mpiexec ----------------------------------------------------
@needs_mpi
def test_gpu_ranks_sum_once_a_step_through_nccl_with_the_single_process_weights(folder):
    one = plain_reference(folder)
    job, counts = gpu_job(folder, "plain.yaml", "nccl-plain/model.h5")
    assert job.returncode == 0, job.stderr
    assert job.stderr == ""
    for c in counts:
        assert c["nccl_init"] == 1 and c["nccl_allreduce"] == STEPS
    assert_same_weights(one, folder / "nccl-plain" / "model.h5")


@needs_mpi
def test_nccl_keeps_the_sums_off_the_host_and_the_switch_puts_them_back(folder):
    job, on = gpu_job(folder, "dense.yaml", "nccl-on/model.h5")
    assert job.returncode == 0 and job.stderr == "", job.stderr
    job, off = gpu_job(folder, "dense.yaml", "nccl-off/model.h5", "NNCLI_NCCL=0")
    assert job.returncode == 0 and job.stderr == "", job.stderr  # asked for: no warning
    for with_nccl, without in zip(on, off, strict=True):
        assert with_nccl["nccl_allreduce"] == STEPS * SUMS_A_STEP
        assert "nccl_init" not in without and "nccl_allreduce" not in without
        # the host path copies each sum down and back up; NCCL moves nothing through the host
        assert without["d2h"] - with_nccl["d2h"] == STEPS * SUMS_A_STEP
        assert without["h2d"] - with_nccl["h2d"] == STEPS * SUMS_A_STEP
    assert_same_weights(folder / "nccl-off" / "model.h5", folder / "nccl-on" / "model.h5", 1e-12)


@needs_mpi
def test_a_rank_without_nccl_puts_every_rank_on_the_host_path_with_one_warning(folder):
    job, counts = gpu_job(folder, "plain.yaml", "lacks/model.h5", rank1=("NNCLI_FAKE_NCCL=0",))
    assert job.returncode == 0, job.stderr
    assert job.stderr.splitlines() == [f"nncli: warning: {nccl.FALLBACK}"]  # rank 0's, once
    assert all("nccl_allreduce" not in c and c["d2h"] >= STEPS for c in counts)
    assert_same_weights(plain_reference(folder), folder / "lacks" / "model.h5")


@needs_mpi
def test_ranks_sharing_a_gpu_sum_through_the_host_with_one_warning(folder):
    job, counts = gpu_job(folder, "plain.yaml", "shared/model.h5", device="gpu:0")
    assert job.returncode == 0, job.stderr
    assert job.stderr.splitlines() == [f"nncli: warning: {nccl.SHARED}"]
    assert all("nccl_init" not in c and c["d2h"] >= STEPS for c in counts)


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_rank_failing_while_the_other_waits_in_nccl_ends_the_job(folder, how):
    train = ["train", "plain.yaml", "--device", "gpu", "--quiet", "--epochs", "500"]
    train += ["--output", f"{how}/model.h5"]
    fake = ["env", "NNCLI_FAKE_GPU=1", sys.executable]
    command = [MPIEXEC, "-n", "1", *fake, "-m", "nncli", *train]
    command += [":", "-n", "1", *fake, "fails.py", how, *train]
    job = run_job(command, folder)  # the hang guard: rank 0 must leave NCCL's wait
    if how == "raise":
        assert job.returncode == 3  # the error's kind: a DataError
        errors = [line for line in job.stderr.splitlines() if line.startswith("nncli: error:")]
        assert errors == ["nncli: error: rank 1: rank.csv: injected failure"], job.stderr
    else:
        assert job.returncode != 0  # the launcher takes the job down
    assert not (folder / how / "model.h5").exists()
