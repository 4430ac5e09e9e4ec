"""``nncli train spec.yaml --workers K``: the same command as K MPI processes on this machine.

Starts ``mpiexec -n K`` (the one the ``mpi`` extra put beside this Python, else the first on
PATH) on ``python -m nncli train`` with the other arguments, in a session of its own, and hands
it Ctrl-C and SIGTERM (mpiexec passes them to every rank, which stop together after the same
batch). Each rank gets an equal part of the machine's cores for its BLAS threads unless the
environment already says how many to use.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from nncli.errors import SpecError
from nncli.training.parallel import INSTALL, launched_size

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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


def launch(args: Sequence[str], workers: int) -> int:
    """Run ``nncli train ARGS`` (``--workers`` removed) as ``workers`` ranks -> the job's exit
    code. SpecError (exit 2) with the install line when mpi4py or mpiexec is missing."""
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
    process = subprocess.Popen(command, env=env, start_new_session=True)
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda s, _f: process.send_signal(s))
    try:
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
