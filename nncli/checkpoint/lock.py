"""One training run per checkpoint: an operating-system lock on a file beside it.

``hold(folder, name=...)`` opens ``<folder>/<name>`` (``.nncli.lock`` for the default
``model.h5``, ``.<stem>.nncli.lock`` for another checkpoint) and locks the open file
(``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows). The kernel releases the lock when its
process ends, however it ends, so a killed run's lock is free at once: there is no stale lock to
detect or take over. A second run finds the lock held and stops (SpecError, exit 2) naming the
owner, whose pid and host the file's first line holds; its second line lists the names the run
writes (``claims``), which other runs in the folder leave alone (``nncli.checkpoint.runs``).
The file goes when the run ends, and so do the folders made for it when nothing else was written
into them. Where outputs may go is for ``nncli.checkpoint.folder``.

The lock file is never followed: a symbolic link, a hard link (a second name for some other
file) or anything but a regular file is refused (CheckpointError, exit 4), and so is a file
nncli did not write (neither empty nor starting with an owner line): it is never truncated.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a link in the lock's place is refused, never followed
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO in its place must not hang the open
MAX_TEXT = 1 << 20  # bytes of a lock file read: the owner line and the claimed names


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
    """The first line ``"<pid> <host>"`` -> (pid, host); None for anything else (a lock being
    written, a file that is not nncli's)."""
    fields = text.split("\n", 1)[0].split()
    if len(fields) != 2 or not fields[0].isdigit() or int(fields[0]) <= 0:
        return None
    return int(fields[0]), fields[1]


def _claims(text: str) -> list[str] | None:
    """The second line: the JSON list of names the run writes; None when absent (an older
    nncli's lock, or one being written)."""
    lines = text.split("\n")
    try:
        names = json.loads(lines[1]) if len(lines) > 1 and lines[1] else None
    except ValueError:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return names


def _regular(fd: int) -> str | None:
    """Why the open file ``fd`` cannot be a lock: None for a regular file with one name."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_nlink != 1:
        return f"is a hard link ({info.st_nlink} names for one file)"
    return None


def _read(lock: Path) -> str | None:
    """A lock file's text, read without following a link or waiting on a FIFO; None for
    anything that is not a regular file with one name."""
    try:
        fd = os.open(lock, os.O_RDONLY | NOFOLLOW | NONBLOCK)
    except OSError:
        return None
    try:
        return None if _regular(fd) else os.read(fd, MAX_TEXT).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


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
        owner = _parse(_read(lock) or "")
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


def _refused(lock: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"the lock file {why}; nncli neither follows nor replaces it: remove it and run again",
        where=str(lock),
    )


def _open(lock: Path, tries: int = 3) -> tuple[int, bool]:
    """(descriptor, whether this call created the file). A new file is created exclusively;
    an existing one is opened without following a link and must be a regular file with one
    name (never some other file a link would reach). A lock that vanishes between the two
    steps is tried again, ``tries`` times in all (a file system where it never appears, such
    as /proc, ends in a CheckpointError rather than endless recursion)."""
    if tries < 1:
        raise CheckpointError("cannot create the lock file (it vanishes)", where=str(lock))
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o644), True
    except FileExistsError:  # a run's lock, a dead run's, or something else: look at it
        pass
    except FileNotFoundError:  # the folder went (a failed run removed it): make it again
        _make_folders(lock.parent)
        return _open(lock, tries - 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CheckpointError(f"cannot create the lock file ({reason})", where=str(lock)) from None
    try:
        fd = os.open(lock, os.O_RDWR | NOFOLLOW | NONBLOCK)
    except FileNotFoundError:  # removed by its finishing run meanwhile: create it
        return _open(lock, tries - 1)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(lock):
            raise _refused(lock, "is a symbolic link") from None
        reason = exc.strerror or str(exc)
        raise CheckpointError(f"cannot open the lock file ({reason})", where=str(lock)) from None
    why = _regular(fd)
    if why is not None:
        os.close(fd)
        raise _refused(lock, why)
    return fd, False


def _ours(fd: int) -> bool:
    """Whether an existing, now locked file is one nncli wrote: empty (its run stopped before
    writing) or starting with an owner line."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, MAX_TEXT)
    return not text or _parse(text.decode("utf-8", "replace")) is not None


def _owner_text(claims: Sequence[str]) -> bytes:
    text = f"{os.getpid()} {socket.gethostname()}\n"
    return (text + (json.dumps(list(claims)) + "\n" if claims else "")).encode()


def _names(fd: int, lock: Path) -> bool:
    """Whether ``lock`` still names the open file ``fd`` (a finishing run removes its file)."""
    try:
        here, there = os.fstat(fd), os.lstat(lock)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _acquire(lock: Path, warn: Callable[[str], None] | None, claims: Sequence[str] = ()) -> int:
    """The locked file's descriptor, the owner text (and ``claims``) written into it."""
    for _ in range(TRIES):
        fd, created = _open(lock)
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
            if not created and not _ours(fd):
                os.close(fd)
                raise _refused(lock, "holds text nncli did not write")
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, _owner_text(claims))
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
    claims: Sequence[str] = (),
) -> Iterator[Path]:
    """Hold ``<folder>/<name>`` for the ``with`` block; yields the lock's path. ``warn`` hears
    when the file system cannot lock (the run goes on, unprotected). ``wait``: seconds to wait
    for another process's lock (a short section, such as tune's workers moving the best trial)
    before the busy error. ``claims``: the names in ``folder`` the holder writes, recorded for
    other runs (``holders``)."""
    folder = Path(folder)
    created = _make_folders(folder)
    lock = folder / name
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fd = _acquire(lock, warn, claims)
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
    here = socket.gethostname()
    return [h.host for h in holders(folder) if h.host is not None and h.host != here]


@dataclass(frozen=True)
class Holder:
    """A run holding a lock in a folder, as its lock file tells: ``pid`` and ``host`` (None
    while it writes them), ``claims`` (the names it writes; None when not recorded)."""

    lock: Path
    pid: int | None
    host: str | None
    claims: list[str] | None

    def __str__(self) -> str:
        if self.pid is None:
            return f"a starting nncli run (lock {self.lock.name})"
        there = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"process {self.pid}{there}"


def holders(folder: Path) -> list[Holder]:
    """The runs holding a lock in ``folder`` (``*.nncli.lock``). A lock file of this host's
    whose process is gone, or whose lock is free (its pid reused), holds nothing; one of
    another host is taken at its word; one that is not nncli's is no run."""
    here, found = socket.gethostname(), []
    for lock in sorted(folder.glob(f"*{LOCK_NAME}")) if folder.is_dir() else ():
        text = _read(lock)
        owner = _parse(text or "")
        if owner is None and text != "":  # not a regular file, or text nncli did not write
            continue
        checkable = owner is None or owner[1] == here  # empty: its run writes it (or died)
        if checkable and not ((owner is None or alive(owner[0])) and _held(lock)):
            continue
        pid, host = owner if owner is not None else (None, None)
        found.append(Holder(lock, pid, host, _claims(text)))
    return found


def _held(lock: Path) -> bool:
    """Whether another open file holds ``lock`` (POSIX; Windows answers by the pid alone). A
    live run holds its lock throughout, so this moment's shared lock never gets in its way."""
    if fcntl is None:
        return True
    try:
        fd = os.open(lock, os.O_RDONLY | NOFOLLOW | NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # held, or a file system that cannot say: the pid answers
        return True
    finally:
        os.close(fd)
    return False


def alive(pid: int) -> bool:
    """Signal 0 checks a process exists without touching it; EPERM means it does (not ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
