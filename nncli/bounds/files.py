"""Which paths nncli reads and writes: regular files in ordinary folders.

A device, a named pipe or a socket is never read: ``/dev/zero`` never ends, a FIFO may never
start, and both would hang or fill memory before any check could run. Readers call
``require_regular`` before they open a path (data files give DataError, checkpoints
CheckpointError, specs SpecError). ``output_problem`` says what is wrong with a checkpoint path
a run would write, before anything is created: a device or a folder in its place, a folder
that is a file, a name too long for the file system, or a place under ``/proc``, ``/sys`` or
``/dev`` (pseudo file systems: writes there change the system, not a file).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from nncli.errors import NncliError

NAME_MAX = 255  # bytes in one path component on Linux, macOS and Windows file systems
PSEUDO = ("/proc", "/sys")  # pseudo file systems: their "files" are the kernel's state

KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def not_regular(path: str | Path) -> str | None:
    """What ``path`` is when it is not a regular file ("a character device", "a folder", "a
    symbolic link loop", ...), following symbolic links; None for a regular file and for a path
    that does not exist or cannot be examined (its reader names those)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a dangling symbolic link" if os.path.islink(path) else None
    except OSError as exc:
        return "a symbolic link loop" if exc.errno == errno.ELOOP else None
    except ValueError:  # a NUL in the name: the reader refuses it
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def require_regular(
    path: str | Path,
    error: type[NncliError],
    *,
    folder: bool = False,
    hint: str = "",
    field: str | None = None,
) -> None:
    """``error`` naming ``path`` unless it is a regular file (or, with ``folder``, a folder) or
    absent; ``hint`` ends the message (``--skip-bad`` for images)."""
    found = not_regular(path)
    if found is None or (folder and found == "a folder"):
        return
    expected = "a regular file or a folder" if folder else "a regular file"
    raise error(f"{path} is {found}; expected {expected}{hint}", field=field)


def output_problem(path: str | Path) -> str | None:
    """Why a checkpoint cannot be written at ``path`` (nothing is created to find out), or None.

    The file may not exist yet; when it does it must be a regular file. Its nearest existing
    folder must be a folder (``iris.csv/model.h5`` is not), outside the pseudo file systems
    (``/proc``, ``/sys``, ``/dev`` itself; ``/dev/shm`` is an ordinary one), and each name on
    the way must fit the file system's 255 bytes."""
    path = Path(os.path.abspath(path))
    long = next((p for p in path.parts if len(os.fsencode(p)) > NAME_MAX), None)
    if long is not None:
        return f"the name {long[:20]}... is {len(os.fsencode(long))} bytes long, over {NAME_MAX}"
    if path.exists() or path.is_symlink():
        found = not_regular(path)
        if found is not None:
            return f"{path} is {found}; expected a checkpoint file"
    existing = next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    real = Path(os.path.realpath(existing))
    pseudo = next((p for p in PSEUDO if real == Path(p) or Path(p) in real.parents), None)
    if pseudo is None and _same_device(real, "/dev"):
        pseudo = "/dev"
    if pseudo is not None:
        return f"{path} is under {pseudo}, the system's own files; expected an ordinary folder"
    return None


def _same_device(path: Path, other: str) -> bool:
    """Whether ``path`` lies on the file system mounted at ``other`` (devtmpfs for /dev)."""
    try:
        return os.stat(path).st_dev == os.stat(other).st_dev and Path(other) in (
            path,
            *path.parents,
        )
    except OSError:
        return False
