"""``nncli train spec.yaml --workers K``: the same command as K MPI processes on this machine.

Starts ``mpiexec -n K`` (the one the ``mpi`` extra put beside this Python, else the first on
PATH) on ``python -m nncli train`` with the other arguments, in a session of its own, and hands
it Ctrl-C and SIGTERM (mpiexec passes them to every rank, which stop together after the same
batch). Each rank gets an equal part of the machine's cores for its BLAS threads unless the
environment already says how many to use.

A rank killed by a signal (the OOM killer, ``kill -9``) takes the others down at once: mpiexec
kills them before rank 0 can say anything. So the launcher speaks for the job afterwards: the
ranks' ``nncli:`` lines pass through as they come, mpiexec's own report is held, and when it
says a rank died of a signal the held report becomes one line (``RankKilled``, exit 128 + the
signal, as a shell reports it) naming the rank, the signal, the last good checkpoint and the
command that resumes it. Each rank writes its process id where the launcher finds it
(``PIDS_VARIABLE``), so mpiexec's "PID 1234" names a rank.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nncli.errors import NncliError, SpecError
from nncli.training.parallel import INSTALL, PIDS_VARIABLE, launched_size

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
NNCLI_CODES = (0, 1, 2, 3, 4, 5, 130, 141, 143)  # how an nncli rank exits (ARCHITECTURE.md)
SIGNAL_IN_REPORT = re.compile(r"\(signal (\d+)\)|exited on signal (\d+)")  # MPICH, Open MPI
RANK_IN_REPORT = re.compile(r"process rank (\d+)")  # Open MPI names the rank
PID_IN_REPORT = re.compile(r"\bPID (\d+)")  # MPICH names the process
# where mpiexec's report of a failed job starts: MPICH's rule of "=" or its first words, Open
# MPI's rule of "-" or its own
REPORT_START = re.compile(
    r"^[=-]{20,}\s*$|BAD TERMINATION|YOUR APPLICATION TERMINATED|(mpiexec|prterun) noticed"
)


class RankKilled(NncliError):
    """A rank died of a signal and mpiexec ended the job: exit 128 + the signal's number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def mpiexec_path() -> str | None:
    """The mpiexec beside this interpreter (the ``mpi`` extra's), else the first on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


def without_workers(args: Sequence[str]) -> list[str]:
    """The command's arguments with ``--workers K`` (or ``--workers=K``) taken out."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def launch(
    args: Sequence[str],
    workers: int,
    *,
    relay: Callable[[str, bool], None] | None = None,
    after_kill: Callable[[float], str] | None = None,
    debug: bool = False,
) -> int:
    """Run ``nncli train ARGS`` (``--workers`` removed) as ``workers`` ranks -> the job's exit
    code. SpecError (exit 2) with the install line when mpi4py or mpiexec is missing.

    ``relay(line, err)`` (the command line's stdout and stderr) takes the job's output line by
    line (``JobOutput``): mpiexec's report of a failure comes at the end, unless it says a rank
    was killed: then RankKilled, whose line ends with ``after_kill(start time)`` (the checkpoint
    to resume from). Without ``relay`` the job writes to the terminal itself."""
    if launched_size() > 1:
        raise SpecError(
            "expected --workers outside a launcher, got it under one (mpiexec or srun already "
            "started the ranks): leave --workers out",
            field="--workers",
        )
    mpiexec = mpiexec_path()
    if mpiexec is None or importlib.util.find_spec("mpi4py") is None:
        raise SpecError(f"--workers needs mpi4py and mpiexec: {INSTALL}", field="--workers")
    command = [mpiexec, "-n", str(workers), sys.executable, "-m", "nncli", "train"]
    command += without_workers(args)
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for key in THREAD_VARIABLES:
        env.setdefault(key, threads)
    output = JobOutput(relay, debug) if relay is not None else None
    with tempfile.TemporaryDirectory(prefix="nncli-ranks-") as pids:
        env[PIDS_VARIABLE] = pids
        started = time.time()
        code = _run_job(command, env, output)
        report = output.report if output is not None else []
        killed = killed_rank(code, report, _rank_pids(Path(pids)))
    if killed is None or output is None or output.said:
        if output is not None and not (output.said and code):  # an error line says it all
            output.release()
        return code
    rank, signum = killed
    name = signal.Signals(signum).name if signum in signal.valid_signals() else "unknown"
    who = "a rank" if rank is None else f"rank {rank}"
    raise RankKilled(
        f"{who} was killed by signal {signum} ({name}) and mpiexec ended the job"
        + (after_kill(started) if after_kill else ""),
        signum,
    )


class JobOutput:
    """The job's stdout and stderr on their way to the command line (``relay(line, err)``):
    lines pass as they come until mpiexec starts its report of a failed job; from there they
    are held (the ranks' own ``nncli:`` lines still pass, and with ``debug`` everything), so
    the launcher can replace that report with one line."""

    def __init__(self, relay: Callable[[str, bool], None], debug: bool):
        self.relay, self.debug = relay, debug
        self.held: list[tuple[str, bool]] = []
        self.blank: list[tuple[str, bool]] = []  # blank lines not yet passed on
        self.report: list[str] = []  # mpiexec's report (and what followed), held or not
        self.said = False  # a rank printed its own error line
        self.lock = threading.Lock()

    def take(self, line: str, err: bool) -> None:
        with self.lock:
            ours = err and line.startswith("nncli: ")
            self.said |= ours and line.startswith("nncli: error:")
            if not ours and not self.report and not line.strip():
                self.blank.append((line, err))  # MPICH's report opens with a blank line
                return
            lines, self.blank = [*self.blank, (line, err)], []
            if not ours and (self.report or REPORT_START.search(line)):
                self.report.append(line)
                if not self.debug:
                    self.held += lines
                    return
            self._pass(lines)

    def release(self) -> None:
        """Pass on what was held: mpiexec's report when it is not replaced."""
        self._pass([*self.blank, *self.held])
        self.blank, self.held = [], []

    def _pass(self, lines: list[tuple[str, bool]]) -> None:
        for line, err in lines:
            self.relay(line, err)

    def reader(self, stream: Any, err: bool) -> threading.Thread:
        def read() -> None:
            for raw in iter(stream.readline, b""):
                self.take(raw.decode("utf-8", errors="replace"), err)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread


def _run_job(command: list[str], env: dict[str, str], output: JobOutput | None) -> int:
    """Run the job, handing it Ctrl-C and SIGTERM, its output through ``output`` -> its exit
    code."""
    pipe = subprocess.PIPE if output is not None else None
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=pipe, stderr=pipe)
    readers = []
    if output is not None:
        readers = [output.reader(process.stdout, False), output.reader(process.stderr, True)]
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda s, _f: process.send_signal(s))
    try:
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for reader in readers:
        reader.join()
    return code


def killed_rank(
    code: int, report: list[str], pids: dict[int, int]
) -> tuple[int | None, int] | None:
    """(the rank, or None when the report does not say; the signal) when mpiexec's exit
    ``code`` and its ``report`` say a rank died of a signal, else None. ``pids``: process id ->
    rank, for a report that names the process (MPICH's)."""
    text = "".join(report)
    found = SIGNAL_IN_REPORT.search(text)
    if found:
        signum = int(found[1] or found[2])
    elif code < 0:  # mpiexec itself died of it
        signum = -code
    elif code > 128 and code not in NNCLI_CODES:
        signum = code - 128
    else:
        return None
    rank = RANK_IN_REPORT.search(text)
    pid = PID_IN_REPORT.search(text)
    if rank:
        return int(rank[1]), signum
    return (pids.get(int(pid[1])) if pid else None), signum


def resume_hint(
    spec: Path,
    overrides: Sequence[str],
    output: Path | None,
    resume: Path | None,
    device: str | None,
) -> Callable[[float], str]:
    """``after_kill`` for a ``train`` run: the end of its line, naming the newest checkpoint the
    job wrote (``.latest.h5``, newer than the job's start) or the one it resumed from, and the
    command that resumes from it."""

    def hint(started: float) -> str:
        from nncli import spec as spec_module
        from nncli.checkpoint.folder import run_files
        from nncli.commands.resume import resume_advice

        try:
            loaded = spec_module.load(spec, overrides)
        except NncliError:  # the spec changed since: the line still names the rank and signal
            return ""
        out = Path(output or loaded.output)
        latest = run_files(out).latest
        fresh = latest.is_file() and latest.stat().st_mtime >= started
        return resume_advice(loaded, latest if fresh else resume, out, overrides, device)

    return hint


def _rank_pids(folder: Path) -> dict[int, int]:
    """process id -> rank, from the files the ranks wrote (``parallel.world``)."""
    found = {}
    for file in folder.glob("rank-*"):
        text = file.read_text(encoding="utf-8", errors="replace").strip()
        if text.isdigit() and file.name.removeprefix("rank-").isdigit():
            found[int(text)] = int(file.name.removeprefix("rank-"))
    return found
