"""The strict stand-in's ``cupy.cuda.nccl``: NCCL's calls, summing over MPI on the host arrays
under the stand-in's device arrays (the device's own side may read them), so CI runs the GPU
ranks' NCCL path without a GPU.

The same names and values as CuPy's module (``NCCL_SUM``, ``NCCL_FLOAT32``, ...,
``get_unique_id``, ``NcclCommunicator(ndev, commId, rank)`` with ``allReduce(sendbuf, recvbuf,
count, datatype, op, stream)`` taking pointers and a stream handle, ``abort``). Its checks are a
GPU's and more (``operands``): a pointer that is no live device array, a count past the array's
end, a datatype that is not the array's dtype (NCCL would reinterpret the bytes), an op NCCL
does not have, a stream object instead of its handle, a unique id not every rank holds, or a
rank that is not its MPI rank all raise. A sum is queued, not waited for: MPI's non-blocking
allreduce on the stream, so the stream's event is ``done`` once every rank has joined it, as on
a GPU. ``fakegpu.COUNTS`` counts ``nccl_init``, ``nccl_allreduce`` and ``nccl_abort``.

``NNCLI_FAKE_NCCL=0`` makes it a CuPy without NCCL (``available`` False), for the fallback's test.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nncli.testing import fakegpu

available = os.environ.get("NNCLI_FAKE_NCCL", "1").strip() != "0"

NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = 0, 1, 2, 3, 4
NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64 = 0, 1, 2, 3, 4, 5
NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_BFLOAT16 = 6, 7, 8, 9
UNIQUE_ID_BYTES = 128

DTYPES = {  # NCCL datatype -> the numpy dtype of its values (bfloat16 has none)
    NCCL_INT8: np.int8,
    NCCL_UINT8: np.uint8,
    NCCL_INT32: np.int32,
    NCCL_UINT32: np.uint32,
    NCCL_INT64: np.int64,
    NCCL_UINT64: np.uint64,
    NCCL_FLOAT16: np.float16,
    NCCL_FLOAT32: np.float32,
    NCCL_FLOAT64: np.float64,
}
OPS = {NCCL_SUM: "SUM", NCCL_PROD: "PROD", NCCL_MAX: "MAX", NCCL_MIN: "MIN"}  # MPI's names


class NcclError(RuntimeError):
    """CuPy's ``nccl.NcclError``: an NCCL call failed."""


def get_unique_id() -> tuple[int, ...]:
    """128 signed bytes naming a new communicator (from the OS: an id, not a model's draw)."""
    return tuple(int(v) for v in np.frombuffer(os.urandom(UNIQUE_ID_BYTES), dtype=np.int8))


def _handle(name: str, value: Any) -> int:
    """An integer argument (a pointer, count, enum or stream handle), as CuPy's C signature
    takes it: anything else (a MemoryPointer, a Stream, a float) raises TypeError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    return value


def operands(
    sendbuf: int, recvbuf: int, count: int, datatype: int, op: int, stream: int
) -> tuple[np.ndarray, np.ndarray, str, fakegpu.Stream]:
    """allReduce's arguments checked -> (the values sent, the memory they land in, MPI's name
    of the op, the stream it is queued on)."""
    for name, value in zip(
        ("sendbuf", "recvbuf", "count", "datatype", "op", "stream"),
        (sendbuf, recvbuf, count, datatype, op, stream),
        strict=True,
    ):
        _handle(name, value)
    if datatype not in DTYPES:
        raise NcclError(f"NCCL_ERROR_INVALID_ARGUMENT: datatype {datatype}")
    if op not in OPS:
        raise NcclError(f"NCCL_ERROR_INVALID_ARGUMENT: op {op} (the stand-in has SUM PROD MAX MIN)")
    sent = fakegpu.memory_at(sendbuf, count, DTYPES[datatype])
    landed = sent if recvbuf == sendbuf else fakegpu.memory_at(recvbuf, count, DTYPES[datatype])
    return sent, landed, OPS[op], fakegpu.stream_at(stream)


class NcclCommunicator:
    """One rank's NCCL communicator over ``ndev`` ranks; the stand-in's ranks are MPI's."""

    def __init__(self, ndev: int, commId: tuple, rank: int):  # noqa: N803 - CuPy's names
        from mpi4py import MPI  # noqa: PLC0415 - the stand-in's wire: only under a launcher

        if not isinstance(commId, tuple) or len(commId) != UNIQUE_ID_BYTES:
            raise TypeError(f"commId: expected the tuple of {UNIQUE_ID_BYTES} get_unique_id gave")
        world = MPI.COMM_WORLD
        if ndev != world.Get_size() or rank != world.Get_rank():
            raise NcclError(
                f"NCCL_ERROR_INVALID_ARGUMENT: rank {rank} of {ndev} on MPI rank "
                f"{world.Get_rank()} of {world.Get_size()} (the stand-in's ranks are MPI's)"
            )
        ids = np.empty((ndev, UNIQUE_ID_BYTES), dtype=np.int16)
        world.Allgather(np.array(commId, dtype=np.int16), ids)
        if (ids != ids[0]).any():  # a real NCCL would wait for the missing ranks forever
            raise NcclError("NCCL_ERROR_INVALID_USAGE: the ranks hold different unique ids")
        self._mpi, self._comm, self._rank, self._size = MPI, world.Dup(), rank, ndev
        fakegpu.COUNTS["nccl_init"] += 1

    def size(self) -> int:
        return self._size

    def rank_id(self) -> int:
        return self._rank

    def allReduce(  # noqa: N802 - CuPy's name
        self, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int, stream: int
    ) -> None:
        """Queue recvbuf = the op over every rank's sendbuf (``count`` values) on ``stream``."""
        if self._comm is None:
            raise NcclError("NCCL_ERROR_INVALID_USAGE: the communicator was aborted or destroyed")
        sent, landed, name, queue = operands(sendbuf, recvbuf, count, datatype, op, stream)
        mpi_op = getattr(self._mpi, name)
        if landed is sent:
            request = self._comm.Iallreduce(self._mpi.IN_PLACE, landed, op=mpi_op)
        else:
            request = self._comm.Iallreduce(sent, landed, op=mpi_op)
        queue.queue(request, (sent, landed))
        fakegpu.COUNTS["nccl_allreduce"] += 1

    def abort(self) -> None:
        """End the communicator now, its queued sums unfinished (the job is going down)."""
        fakegpu.COUNTS["nccl_abort"] += 1
        self._comm = None

    def destroy(self) -> None:
        self._comm = None
