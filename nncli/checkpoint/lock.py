"""One training run per checkpoint: the lock beside it.

``hold(folder, name=...)``: the lock file (``<folder>/.nncli.lock`` for the default
``model.h5``, ``.<stem>.nncli.lock`` for another checkpoint) is created with O_CREAT | O_EXCL
(so two runs cannot both create it) and holds the owner's pid and host. A second run finds it
and stops (SpecError, exit 2). A lock whose process is gone (same host, ``os.kill(pid, 0)`` raises
ProcessLookupError) is taken over with a warning. The lock goes on every exit, errors and
Ctrl-C included, and so do the folders made for it when nothing else was written into them.
Where outputs may go is for ``nncli.outputs``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from nncli.errors import CheckpointError, SpecError

LOCK_NAME = ".nncli.lock"
TRIES = 5  # rounds of create / find a stale lock / take it over, when runs race for a folder


def _warn(message: str) -> None:
    print(f"nncli: warning: {message}", file=sys.stderr, flush=True)


def _owner_text() -> str:
    return f"{os.getpid()} {socket.gethostname()}\n"


def alive(pid: int) -> bool:
    """Signal 0 checks a process exists without touching it; EPERM means it does (not ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _parse(text: str) -> tuple[int, str] | None:
    """``"<pid> <host>"`` -> (pid, host); None for anything else (a lock being written, junk)."""
    fields = text.split()
    if len(fields) != 2 or not fields[0].isdigit() or int(fields[0]) <= 0:
        return None  # pid 0 or -1 would make os.kill check a whole process group
    return int(fields[0]), fields[1]


def _read(lock: Path) -> str | None:
    try:
        return lock.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


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


def _busy(lock: Path, why: str) -> SpecError:
    return SpecError(
        f"{why}; wait for it to finish or choose another --output (delete {lock} only if no "
        "nncli is using that folder)",
        where=str(lock.parent),
        field="output",
    )


def _take_over(lock: Path, seen: str) -> bool:
    """Move a stale lock aside; False when another run changed it first (then look again)."""
    aside = lock.with_name(f"{lock.name}.stale-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(lock, aside)  # atomic: of several runs finding the same stale lock, one wins
    except FileNotFoundError:
        return False
    if _read(aside) == seen:
        aside.unlink(missing_ok=True)
        return True
    with contextlib.suppress(OSError):  # a live run locked in between: give its lock back
        os.link(aside, lock)
    aside.unlink(missing_ok=True)
    return False


def _create(lock: Path) -> int | None:
    """The new lock's descriptor, or None when the lock file already exists."""
    try:
        return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    except FileNotFoundError:  # the folder went (a failed run removed it): make it again
        _make_folders(lock.parent)
        return _create(lock)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CheckpointError(f"cannot create the lock file ({reason})", where=str(lock)) from None


def _acquire(lock: Path, warn: Callable[[str], None]) -> str:
    mine = _owner_text()
    for _ in range(TRIES):
        fd = _create(lock)
        if fd is not None:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(mine)
                f.flush()
                os.fsync(f.fileno())
            return mine
        seen = _read(lock)
        if seen is None:  # released between our open and our read
            continue
        owner = _parse(seen)
        if owner is None:
            raise _busy(lock, "the output is locked by another nncli run")
        pid, host = owner
        if host != socket.gethostname():
            raise _busy(lock, f"the output is locked by process {pid} on {host}")
        if pid == os.getpid() or alive(pid):
            raise _busy(lock, f"the output is in use by another nncli run (process {pid})")
        if _take_over(lock, seen):
            warn(f"{lock}: took over the lock of process {pid}, which no longer runs")
    raise _busy(lock, "other nncli runs keep taking the output's lock")


@contextlib.contextmanager
def hold(
    folder: str | Path, warn: Callable[[str], None] = _warn, *, name: str = LOCK_NAME
) -> Iterator[Path]:
    """Hold ``<folder>/<name>`` for the ``with`` block; yields the lock's path."""
    folder = Path(folder)
    created = _make_folders(folder)
    lock = folder / name
    try:
        mine = _acquire(lock, warn)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield lock
    finally:
        if _read(lock) == mine:  # never remove a lock another run holds
            lock.unlink(missing_ok=True)
        _remove_empty(created)


def _remove_empty(created: list[Path]) -> None:
    """A run that wrote nothing leaves no folders behind."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): everything above it stays too
            return


def other_hosts(folder: Path) -> list[str]:
    """The hosts, other than this one, whose runs hold a lock in ``folder`` (a shared network
    folder): their pids mean nothing here."""
    here, hosts = socket.gethostname(), []
    for lock in sorted(folder.glob(f"*{LOCK_NAME}")) if folder.is_dir() else ():
        owner = _parse(_read(lock) or "")
        if owner is not None and owner[1] != here:
            hosts.append(owner[1])
    return hosts
