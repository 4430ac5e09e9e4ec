"""GPU ranks' sums through NCCL (``cupy.cuda.nccl``, or the strict stand-in's).

When a run's gradients live on the GPUs of several ranks, ``connect`` makes one NCCL
communicator for the run: rank 0 draws the unique id, MPI broadcasts it as a numpy buffer, and
every rank joins. ``World`` (nncli/training/parallel.py) then sums device arrays with it: the
flat gradient buffer once per step, and batchnorm's batch sums, each one in-place
``allReduce`` on the current stream. The host waits for it by polling the stream's event
(``Pending.Test``), as it polls MPI's requests, so rank 0 still hears a failed rank at once; an
abort of the job aborts the communicator too.

MPI stays the path for CPU ranks and one process, with ``NNCLI_NCCL=0``, and when a rank's CuPy
has no NCCL or two ranks of a machine share a GPU (NCCL refuses it): rank 0 then says so in one
warning line. Every rank takes the same path.
"""

from __future__ import annotations

import contextlib
import os
import socket
import zlib
from typing import Any

import numpy as np

from nncli.backend import Backend
from nncli.backend import nccl as nccl_module
from nncli.errors import BackendError

NCCL_ENV = "NNCLI_NCCL"
UNIQUE_ID_BYTES = 128
DATATYPES = {"float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}  # dtype -> NCCL's name
FALLBACK = (
    "GPU ranks: CuPy finds no NCCL library on a rank, so the gradients are summed through host "
    "memory over MPI (one copy each way a step); install NCCL where CuPy finds it (CuPy's "
    f"installation guide), or set {NCCL_ENV}=0 to choose this path without this warning"
)
SHARED = (
    "GPU ranks: two ranks of one machine compute on the same GPU, which NCCL refuses, so the "
    "gradients are summed through host memory over MPI; give each rank its own GPU (device: gpu "
    "takes the rank's local one)"
)


def switched_off(environ: dict[str, str] | None = None) -> bool:
    """True when ``NNCLI_NCCL`` is 0, false, no or off: GPU ranks sum through the host."""
    value = (os.environ if environ is None else environ).get(NCCL_ENV, "")
    return value.strip().lower() in ("0", "false", "no", "off")


def datatype(nccl: Any, dtype: Any) -> int:
    """NCCL's datatype for an array of ``dtype`` (float32 or float64); ValueError otherwise."""
    name = DATATYPES.get(np.dtype(dtype).name)
    if name is None:
        raise ValueError(f"NCCL sums float32 or float64 arrays here, got {np.dtype(dtype)}")
    return getattr(nccl, name)


class Pending:
    """A queued device sum as ``World._wait`` waits for MPI's requests: ``Test()`` polls the
    event recorded after it (no blocking call the host could not leave)."""

    def __init__(self, event: Any):
        self.event = event

    def Test(self) -> bool:  # noqa: N802 - mpi4py's name, so one wait loop serves both
        return bool(self.event.done)


class NcclSum:
    """One rank's NCCL communicator over every rank of the run."""

    def __init__(self, nccl: Any, communicator: Any, xp: Any):
        self.nccl, self.communicator, self.xp = nccl, communicator, xp

    def takes(self, values: Any) -> bool:
        """True for a contiguous float32/float64 device array (a host array goes over MPI)."""
        return (
            not isinstance(values, np.ndarray)
            and np.dtype(values.dtype).name in DATATYPES
            and values.flags.c_contiguous
        )

    def start(self, values: Any) -> Pending:
        """Queue ``values`` += every other rank's, in place, on the current stream."""
        stream = self.xp.cuda.get_current_stream()
        ptr = values.data.ptr
        kind = datatype(self.nccl, values.dtype)
        self.communicator.allReduce(ptr, ptr, values.size, kind, self.nccl.NCCL_SUM, stream.ptr)
        return Pending(stream.record())

    def abort(self) -> None:
        """Abort the communicator (its unfinished sums end with it); never raises."""
        with contextlib.suppress(Exception):  # the job is being aborted: nothing left to tell
            self.communicator.abort()


def connect(world: Any, backend: Backend) -> tuple[NcclSum | None, str | None]:
    """The run's NCCL communicator when its arrays live on the GPUs of several ranks ->
    (it, None); (None, the warning line) when a rank's CuPy has no NCCL or two ranks share a
    GPU; (None, None) on CPU ranks, for one process and with NNCLI_NCCL=0 on any rank. The
    ranks agree on the path from one table they sum. BackendError (exit 2) when NCCL fails to
    join the ranks."""
    if not world.parallel or backend.name != "gpu":
        return None, None
    off = switched_off()
    module = None if off else nccl_module(backend)
    table = np.zeros((world.size, 4))  # each rank fills its row: machine, GPU, off, missing
    machine = zlib.crc32(socket.gethostname().encode())  # 32 bits: exact in float64
    table[world.rank] = (machine, backend.index, off, module is None)
    table = world.sum(table.reshape(-1)).reshape(world.size, 4)
    if table[:, 2].any():
        return None, None
    if table[:, 3].any():
        return None, FALLBACK
    if len({(m, gpu) for m, gpu in table[:, :2].tolist()}) < world.size:
        return None, SHARED
    uid = np.zeros(UNIQUE_ID_BYTES, dtype=np.int16)  # C chars, signed or not: both fit
    if world.lead:
        uid[:] = module.get_unique_id()
    world.broadcast(uid)
    try:
        communicator = module.NcclCommunicator(world.size, tuple(int(v) for v in uid), world.rank)
    except Exception as exc:  # NcclError: no network NCCL can use, a GPU taken twice
        raise BackendError(
            f"NCCL could not join the {world.size} GPU ranks ({type(exc).__name__}: {exc}); "
            f"set {NCCL_ENV}=0 to sum the gradients through host memory over MPI"
        ) from None
    return NcclSum(module, communicator, backend.xp), None
