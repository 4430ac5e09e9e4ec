"""Training past one process: the MPI world a run belongs to, and its collectives.

The only module that imports mpi4py, and only when the environment says a launcher started us
(``mpiexec``, ``srun``, a hostfile), so one process never loads MPI. ``World`` is what ``fit``
asks of the others: this rank's contiguous share of each global batch, the global batch's mean
loss (each rank's local mean weighted by its share of the loss's denominator: rows, real steps,
or class weights), one in-place allreduce (sum) of the flat gradient buffer per step, batchnorm's
batch sums, and the sums of the running metrics. ``SINGLE`` (one process) answers every one of
them without communicating, so a one-rank run is today's run. GPU ranks sum device arrays
through NCCL instead (nncli/training/nccl.py; ``use_device`` joins them), waited for alike.

Every collective is non-blocking and waited for by polling, so rank 0 hears at once when another
rank failed (a message with tag ``FAULT``: the exit code and the error's line): it raises
``RankFailed`` naming the rank, prints that one line and aborts the job with the error's code.
Only buffer (upper-case) mpi4py calls are used: nothing is pickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nncli.engine.optimizers import FlatParameters
from nncli.errors import DivergedError, Interrupted, NncliError, SpecError
from nncli.training import nccl

# What launchers set in each rank's environment (MPICH/Hydra, Intel MPI, Open MPI, PMIx, Slurm
# with --mpi=pmi2/pmix); without one of them a process is alone and never imports mpi4py.
LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
LAUNCHER_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MPI_LOCALRANKID")
INSTALL = 'pip install -e ".[mpi]"'
FAULT = 77  # the tag of the message a failing rank sends rank 0
ROWS = 78  # the tag of the rows rank 0 sends each rank (``World.send``)
CHUNK_BYTES = 1 << 30  # one message at most: MPI counts in int
FAULT_BYTES = 4096
FACT_BYTES = 96  # each agreement fact travels as this many UTF-8 bytes
SELF_ABORT_S = 10.0  # a failing rank aborts the job itself when rank 0 has not after this long
# set by ``--workers`` (commands/launch.py): a folder where each rank writes its process id, so
# the launcher can name the rank mpiexec reports killed
PIDS_VARIABLE = "NNCLI_RANK_PIDS"


class RankFailed(NncliError):
    """Another rank raised: its line, prefixed with its rank, and its exit code."""

    def __init__(self, rank: int, line: str, exit_code: int):
        super().__init__(f"rank {rank}: {line}")
        self.exit_code = exit_code


class Disagreement(SpecError):
    """Ranks started with a different spec, data file or nncli version (every rank raises it)."""


def collective(exc: BaseException) -> bool:
    """True for an error every rank raises at the same point (the job ends without an abort)."""
    return isinstance(exc, DivergedError | Interrupted | Disagreement | KeyboardInterrupt)


def failure(exc: BaseException) -> tuple[str, int]:
    """(the one line, the exit code) a rank's error ends the job with (ARCHITECTURE.md)."""
    if isinstance(exc, NncliError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", getattr(exc, "exit_code", 130)
    if isinstance(exc, SystemExit):
        return "exited", exc.code if isinstance(exc.code, int) else 1
    return f"internal error ({type(exc).__name__}: {exc})", 1


def run_rank(world: World, action: Callable[[], None], tell: Callable[[BaseException], int]) -> int:
    """Run ``action`` as this rank's part of a shared run -> its exit code (0: done). The
    rank-failure policy: rank 0 tells its error as a single process does (``tell``, the command
    line's: the one line -> the exit code); another rank says nothing and hands its line and
    code to rank 0, which names the rank. Unless every rank raised the error at the same point
    (``collective``), the job then ends at once with that code: the other ranks may be waiting
    in a collective this rank will never join."""
    try:
        action()
    except BaseException as exc:
        if world.lead:
            code = tell(exc)
            if code and not collective(exc):
                world.abort(code)
            return code
        line, code = failure(exc)
        if not collective(exc):
            world.report(line, code)
        return code
    return 0


def share_of(rows: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s contiguous positions in a batch of ``rows`` shared by ``size`` ranks."""
    return slice(rows * rank // size, rows * (rank + 1) // size)


def launched_size(environ: dict[str, str] | None = None) -> int:
    """The world size a launcher announced in the environment, 1 when none did."""
    env = os.environ if environ is None else environ
    for key in LAUNCHER_SIZE:
        if env.get(key, "").strip().isdigit():
            return max(int(env[key]), 1)
    return 2 if any(k in env for k in LAUNCHER_RANK) else 1


class World:
    """One process's view of the job: ``rank`` of ``size``; rank 0 (``lead``) prints and writes."""

    def __init__(self, comm: Any = None, mpi: Any = None):
        self.comm, self.mpi = comm, mpi
        self.rank = 0 if comm is None else int(comm.Get_rank())
        self.size = 1 if comm is None else int(comm.Get_size())
        # this rank's number among the ranks on its machine: the GPU it takes
        self.local_rank = 0
        if comm is not None and self.size > 1:
            local = comm.Split_type(mpi.COMM_TYPE_SHARED)
            self.local_rank = int(local.Get_rank())
            local.Free()
        self.allreduce_seconds = 0.0  # time spent waiting for gradient sums (benchmarks)
        self.nccl: nccl.NcclSum | None = None  # GPU ranks' device sums (nncli/training/nccl.py)

    @property
    def lead(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def device_for(self, device: str) -> str:
        """``gpu`` (no number) under several ranks -> ``gpu:<local rank>``: each rank of a machine
        takes its own GPU. Any other device, or one process, as given."""
        from nncli.backend import parse_device

        if not self.parallel or ":" in device or parse_device(device)[0] != "gpu":
            return device
        return f"gpu:{self.local_rank}"

    def use_device(self, backend: Any) -> str | None:
        """The run computes on ``backend``: GPU ranks join through NCCL (every rank calls this)
        -> the warning line rank 0 says when they sum through the host instead, else None."""
        self.nccl, warning = nccl.connect(self, backend)
        return warning

    # -- shares --------------------------------------------------------------------------------
    def share(self, rows: int) -> slice:
        """This rank's contiguous positions in a global batch of ``rows`` (sizes differ by at most
        one; a rank may get none when the batch has fewer rows than there are ranks)."""
        return share_of(rows, self.rank, self.size)

    # -- collectives ---------------------------------------------------------------------------
    def sum(self, values: Any) -> Any:
        """Element-wise sum over every rank of a 1-D host or device array (in place when it can)."""
        if not self.parallel:
            return values
        if isinstance(values, np.ndarray) and values.flags.c_contiguous:
            self._wait(self.comm.Iallreduce(self.mpi.IN_PLACE, values, op=self.mpi.SUM))
            return values
        if self.nccl is not None and self.nccl.takes(values):  # batchnorm's sums on GPU ranks
            self._wait(self.nccl.start(values))
            return values
        host = _host(values)
        self._wait(self.comm.Iallreduce(self.mpi.IN_PLACE, host, op=self.mpi.SUM))
        return host if isinstance(values, np.ndarray) else _like(values, host)

    def mean_loss(self, value: Any, total: Any) -> tuple[Any, float]:
        """(the global batch's loss, this rank's gradient factor) from this rank's mean ``value``
        over its ``total`` (rows, real steps or class weights): factor = total / global total.
        One rank: ``value`` as it is (on a GPU a device scalar, read later) and factor 1."""
        if not self.parallel:
            return value, 1.0
        value, total = float(value), float(total)
        both = self.sum(np.array([total * value if total else 0.0, total], dtype=np.float64))
        if both[1] == 0:
            return value, 0.0
        return float(both[0] / both[1]), float(total / both[1])

    def sum_gradients(self, grads: dict[str, Any]) -> None:
        """The one in-place allreduce per step that turns the weighted local gradients into the
        global batch's mean gradient (on the flat buffer; one per array when there is none)."""
        if not self.parallel:
            return
        started = time.perf_counter()
        arrays = [grads.buffer] if isinstance(grads, FlatParameters) else list(grads.values())
        for g in arrays:
            if isinstance(g, np.ndarray) and g.flags.c_contiguous:
                self._wait(self.comm.Iallreduce(self.mpi.IN_PLACE, g, op=self.mpi.SUM))
            elif self.nccl is not None and self.nccl.takes(g):  # on the GPUs, through NCCL
                self._wait(self.nccl.start(g))
            else:  # device memory without NCCL: through the host
                g[...] = _like(g, self.sum(_host(g).reshape(-1)).reshape(g.shape))
        self.allreduce_seconds += time.perf_counter() - started

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any (a stop every rank takes together)."""
        if not self.parallel:
            return flag
        return bool(self.sum(np.array([1.0 if flag else 0.0]))[0] > 0)

    def gather(self, rows: np.ndarray, positions: np.ndarray, total: int) -> np.ndarray:
        """Every rank's ``rows`` (n_r, ...) put at their ``positions`` of a (total, ...) array."""
        if not self.parallel:
            return rows
        counts = np.zeros(self.size, dtype=np.int64)
        counts[self.rank] = len(rows)
        counts = self.sum(counts.astype(np.float64)).astype(np.int64)
        width = int(np.prod(rows.shape[1:]))
        flat = np.ascontiguousarray(rows, dtype=np.float64).reshape(-1)
        both = np.concatenate([positions.astype(np.float64), flat])
        out = np.empty(int(counts.sum() * (1 + width)), dtype=np.float64)
        sizes = counts * (1 + width)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        request = self.comm.Iallgatherv(both, [out, (sizes, offsets), self.mpi.DOUBLE])
        self._wait(request)
        full = np.zeros((total, *rows.shape[1:]), dtype=rows.dtype)
        for start, n in zip(offsets, counts, strict=True):  # one slice per rank
            part = out[start : start + n * (1 + width)]
            at = part[:n].astype(np.int64)
            full[at] = part[n:].reshape(n, *rows.shape[1:])
        return full

    # -- moving data from rank 0 (nncli/training/spread.py) -----------------------------------
    def broadcast(self, buffer: np.ndarray) -> np.ndarray:
        """Rank 0's ``buffer`` (C-contiguous) into every rank's ``buffer`` of the same size."""
        if not self.parallel:
            return buffer
        for part in _chunks(buffer):
            self._wait(self.comm.Ibcast(part, root=0))
        return buffer

    def send(self, buffer: np.ndarray, rank: int) -> None:
        """Rank 0: ``buffer`` (C-contiguous) to ``rank``, which ``receive``s it."""
        for part in _chunks(buffer):
            self._wait(self.comm.Isend(part, dest=rank, tag=ROWS))

    def receive(self, buffer: np.ndarray) -> np.ndarray:
        """What rank 0 ``send``s this rank, into ``buffer`` of the size it sent."""
        for part in _chunks(buffer):
            self._wait(self.comm.Irecv(part, source=0, tag=ROWS))
        return buffer

    # -- agreement and faults ------------------------------------------------------------------
    def agree(self, facts: dict[str, str]) -> None:
        """Disagreement (exit 2, on every rank) naming the first fact a rank holds differently
        from rank 0 (the spec's digest, the data files' digest, the nncli version)."""
        if not self.parallel:
            return
        mine = b"".join(v.encode()[:FACT_BYTES].ljust(FACT_BYTES, b"\0") for v in facts.values())
        table = np.empty((self.size, len(mine)), dtype=np.uint8)
        sent = np.frombuffer(mine, dtype=np.uint8).copy()
        self._wait(self.comm.Iallgather(sent, table))
        for rank in range(1, self.size):
            for k, name in enumerate(facts):
                theirs, lead = (_fact(table[r], k) for r in (rank, 0))
                if theirs != lead:
                    raise Disagreement(
                        f"rank {rank} and rank 0 disagree before training: {name} "
                        f"{theirs} on rank {rank}, {lead} on rank 0; start every rank with the "
                        "same spec, data and nncli"
                    )

    def report(self, line: str, exit_code: int) -> None:
        """A failing rank other than 0: tell rank 0 (which prints and aborts the job); when no
        abort came in ``SELF_ABORT_S`` seconds, abort the job from here."""
        text = f"{exit_code} {line}".encode()[:FAULT_BYTES]
        request = self.comm.Isend([bytearray(text), self.mpi.BYTE], dest=0, tag=FAULT)
        deadline = time.monotonic() + SELF_ABORT_S
        while time.monotonic() < deadline and not request.Test():
            time.sleep(0.01)
        time.sleep(max(0.0, deadline - time.monotonic()))
        self.abort(exit_code)

    def abort(self, exit_code: int) -> None:
        """End every rank now with ``exit_code`` (rank 0 after it printed the one line)."""
        if self.nccl is not None:  # the GPUs' queued sums end with it
            self.nccl.abort()
        if self.parallel:
            self.comm.Abort(int(exit_code))

    def _wait(self, request: Any) -> None:
        """Wait for a non-blocking collective; rank 0 listens for a failed rank meanwhile."""
        spins = 0
        while not request.Test():
            if self.lead:
                self._check_faults()
            spins += 1
            if spins > 200:  # a slow partner: stop burning the core it may need
                time.sleep(0.0002)

    def _check_faults(self) -> None:
        status = self.mpi.Status()
        if not self.comm.Iprobe(source=self.mpi.ANY_SOURCE, tag=FAULT, status=status):
            return
        text = bytearray(status.Get_count(self.mpi.BYTE))
        self.comm.Recv([text, self.mpi.BYTE], source=status.Get_source(), tag=FAULT)
        code, _, line = text.decode(errors="replace").partition(" ")
        raise RankFailed(status.Get_source(), line, int(code) if code.isdigit() else 1)


SINGLE = World()
_detected: World | None = None


def world() -> World:
    """The world this process runs in: MPI's when a launcher started more than one rank (mpi4py
    imported only then), else ``SINGLE``. SpecError (exit 2) when a launcher started several
    ranks but mpi4py is missing."""
    global _detected
    if _detected is not None:
        return _detected
    if launched_size() <= 1:
        _detected = SINGLE
        return _detected
    try:
        from mpi4py import MPI
    except ImportError:
        raise SpecError(
            f"an MPI launcher started this run but mpi4py is not installed: {INSTALL}"
        ) from None
    comm = MPI.COMM_WORLD
    _detected = World(comm, MPI) if comm.Get_size() > 1 else SINGLE
    _tell_launcher(_detected.rank)
    return _detected


def _tell_launcher(rank: int) -> None:
    """Write this rank's process id where ``--workers``'s launcher reads it (if it asked)."""
    folder = os.environ.get(PIDS_VARIABLE)
    if folder:
        with contextlib.suppress(OSError):  # only a name in a message is lost
            (Path(folder) / f"rank-{rank}").write_text(str(os.getpid()), encoding="utf-8")


def run_facts(spec_text: str, data_paths: list[Path], version: str) -> dict[str, str]:
    """What every rank must hold alike: digests of the resolved spec and of the data files (a
    folder by its files' names and sizes), and the nncli version."""
    data = hashlib.sha256()
    for path in data_paths:
        data.update(str(path.name).encode() + b"\0")
        if path.is_file():
            data.update(_file_digest(path))
        elif path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                data.update(f"{f.relative_to(path)}\0{f.stat().st_size}\0".encode())
    spec = hashlib.sha256(spec_text.encode()).hexdigest()
    return {
        "spec": f"sha256 {spec[:16]}",
        "data files": f"sha256 {data.hexdigest()[:16]}",
        "nncli version": version,
    }


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def _chunks(buffer: np.ndarray) -> list[np.ndarray]:
    """A C-contiguous array's bytes in pieces of at most ``CHUNK_BYTES`` (views, no copies)."""
    flat = buffer.reshape(-1).view(np.uint8)
    return [flat[i : i + CHUNK_BYTES] for i in range(0, max(len(flat), 1), CHUNK_BYTES)]


def _fact(row: np.ndarray, k: int) -> str:
    return bytes(row[k * FACT_BYTES : (k + 1) * FACT_BYTES]).rstrip(b"\0").decode(errors="replace")


def _host(values: Any) -> np.ndarray:
    from nncli.backend import to_host

    return np.ascontiguousarray(to_host(values))


def _like(values: Any, host: np.ndarray) -> Any:
    """``host`` moved to the device ``values`` live on (through the backend: CuPy, and the
    strict stand-in, refuse an implicit move)."""
    from nncli.backend import device_copy

    return device_copy(host, values)
