"""One training run per checkpoint: an operating-system lock on a file beside it.

``hold(folder, name=...)`` opens ``<folder>/<name>`` (``.nncli.lock`` for the default
``model.h5``, ``.<stem>.nncli.lock`` for another checkpoint) and locks the open file
(``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows). The kernel releases the lock when its
process ends, however it ends, so a killed run's lock is free at once: there is no stale lock to
detect or take over. A second run finds the lock held and stops (SpecError, exit 2) naming the
owner, whose pid and host the file holds for that message only. The file goes when the run
ends, and so do the folders made for it when nothing else was written into them. Where outputs
may go is for ``nncli.checkpoint.folder``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from nncli.errors import CheckpointError, SpecError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_NAME = ".nncli.lock"
WAIT_STEP = 0.02  # seconds between tries of a lock held by another process (``wait``)
TRIES = 5  # rounds of open / lock, when a finishing run removes the file we just opened
HELD = {errno.EACCES, errno.EAGAIN, errno.EDEADLK}  # what a lock held elsewhere raises
WINDOWS_OFFSET = 1 << 30  # msvcrt locks bytes: one far past the owner text, which stays readable


def _try_lock(fd: int) -> bool:
    """Lock ``fd`` without waiting: False when another open file holds the lock."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, WINDOWS_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        if exc.errno in HELD:
            return False
        raise
    return True


def _parse(text: str) -> tuple[int, str] | None:
    """``"<pid> <host>"`` -> (pid, host); None for anything else (a lock being written, junk)."""
    fields = text.split()
    if len(fields) != 2 or not fields[0].isdigit() or int(fields[0]) <= 0:
        return None
    return int(fields[0]), fields[1]


def _read(lock: Path) -> str:
    try:
        return lock.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _make_folders(folder: Path) -> list[Path]:
    """mkdir -p; returns the folders it created, the deepest last."""
    missing = []
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            break
        missing.append(candidate)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CheckpointError(
            f"cannot create the output folder ({reason})", where=str(folder)
        ) from None
    return list(reversed(missing))


def _busy(lock: Path, why: str | None = None) -> SpecError:
    if why is None:
        owner = _parse(_read(lock))
        if owner is None:  # it has the lock and is writing its pid
            why = "the output is locked by another nncli run"
        elif owner[1] != socket.gethostname():
            why = f"the output is locked by process {owner[0]} on {owner[1]}"
        else:
            why = f"the output is in use by another nncli run (process {owner[0]})"
    return SpecError(
        f"{why}; wait for it to finish or choose another --output (the lock: {lock})",
        where=str(lock.parent),
        field="output",
    )


def _open(lock: Path) -> int:
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:  # the folder went (a failed run removed it): make it again
        _make_folders(lock.parent)
        return _open(lock)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CheckpointError(f"cannot create the lock file ({reason})", where=str(lock)) from None


def _names(fd: int, lock: Path) -> bool:
    """Whether ``lock`` still names the open file ``fd`` (a finishing run removes its file)."""
    try:
        here, there = os.fstat(fd), os.stat(lock)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _acquire(lock: Path, warn: Callable[[str], None] | None) -> int:
    """The locked file's descriptor, the owner text written into it."""
    for _ in range(TRIES):
        fd = _open(lock)
        try:
            locked = _try_lock(fd)
        except OSError as exc:  # a file system without locks: run, but say what is lost
            if warn is not None:
                reason = exc.strerror or str(exc)
                warn(f"{lock}: cannot lock ({reason}); two runs into this checkpoint could mix")
            locked = True
        if not locked:
            os.close(fd)
            raise _busy(lock)
        if fcntl is None or _names(fd, lock):
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            return fd
        os.close(fd)
    raise _busy(lock, "other nncli runs keep taking the output's lock")


def _release(fd: int, lock: Path) -> None:
    """Remove the file, then let the lock go. POSIX removes it while locked, so the next run
    sees the name free or locks a new file; Windows cannot remove an open file, and refuses to
    while another run has it open."""
    if fcntl is not None and _names(fd, lock):
        lock.unlink(missing_ok=True)
    os.close(fd)
    if fcntl is None:
        with contextlib.suppress(OSError):
            lock.unlink()


@contextlib.contextmanager
def hold(
    folder: str | Path,
    warn: Callable[[str], None] | None = None,
    *,
    name: str = LOCK_NAME,
    wait: float = 0.0,
) -> Iterator[Path]:
    """Hold ``<folder>/<name>`` for the ``with`` block; yields the lock's path. ``warn`` hears
    when the file system cannot lock (the run goes on, unprotected). ``wait``: seconds to wait
    for another process's lock (a short section, such as tune's workers moving the best trial)
    before the busy error."""
    folder = Path(folder)
    created = _make_folders(folder)
    lock = folder / name
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fd = _acquire(lock, warn)
                break
            except SpecError:  # busy
                if time.monotonic() >= deadline:
                    raise
                time.sleep(WAIT_STEP)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield lock
    finally:
        _release(fd, lock)
        _remove_empty(created)


def _remove_empty(created: list[Path]) -> None:
    """A run that wrote nothing leaves no folders behind."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): everything above it stays too
            return


def other_hosts(folder: Path) -> list[str]:
    """The hosts, other than this one, named by the lock files in ``folder`` (a shared network
    folder): the pids in their temporary files' names mean nothing here."""
    here, hosts = socket.gethostname(), []
    for lock in sorted(folder.glob(f"*{LOCK_NAME}")) if folder.is_dir() else ():
        owner = _parse(_read(lock))
        if owner is not None and owner[1] != here:
            hosts.append(owner[1])
    return hosts
