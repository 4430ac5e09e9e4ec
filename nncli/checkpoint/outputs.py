"""The one output rule: where a command may write a file it names (predict's and evaluate's
``--output``, export, plot, init, cv's ``cv.csv``, tune's ``trials.csv`` and ``best.yaml``).
``train`` keeps the same rule for its run's files (``folder.check_replace``,
``runs.check_claims``).

``check_output``, in order, before any work:
1. never onto an input (a file, another name for it, anything inside an input folder) nor onto
   an HDF5 file (``folder.check_outputs``);
2. a file: never a folder, a FIFO or a device (``folder.check_kind``);
3. never a file of a run in its folder: a checkpoint, ``.latest.h5``, ``.best.h5``, history,
   resolved spec or lock, nor a data file a run there trained on (``runs.owner``); and, unless
   the command writes a spec, never a spec;
4. an existing one (a link, even one to nowhere, exists; it is replaced, never written
   through) only with ``--force``, or when it is this command's own earlier output (``own``,
   a recogniser of a regular file, never of a link);
5. its folder exists (or the command makes it) and can be written: else CheckpointError
   (exit 4), as a write that fails later is.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from nncli.checkpoint import folder, runs
from nncli.errors import CheckpointError, SpecError

SPEC_SECTIONS = ("data", "model")  # every nncli spec has both


def check_output(
    path: str | Path,
    inputs: Iterable[str | Path | None] = (),
    *,
    force: bool = False,
    own: Callable[[Path], bool] | None = None,
    spec: bool = False,
    makes_folder: bool = False,
    option: str = "--output",
) -> bool:
    """SpecError (exit 2) or CheckpointError (exit 4) when the command may not write ``path``
    (the module's rule) -> whether a file is there, which the command replaces. ``own``:
    recognises the command's earlier output, replaced without ``force``; ``spec``: the command
    writes a spec (init, tune's best.yaml); ``makes_folder``: a missing folder is made, not
    refused."""
    path = Path(path)
    try:
        folder.check_outputs([path], inputs, table=True)
    except SpecError as exc:
        exc.field = option
        raise
    folder.check_kind(path, option)
    found = runs.owner(path)
    if found is not None:
        run, role = found
        raise SpecError(f"{path} is the {role} of {run}; choose another {option}", field=option)
    exists = os.path.lexists(path)
    if exists and not spec and is_spec(path):
        raise SpecError(
            f"{path} is an nncli spec and is never replaced by an output; choose another {option}",
            field=option,
        )
    if exists and not force and not _own(path, own):
        raise SpecError(f"{_existing(path)}; pass --force to replace it", field=option)
    check_writable(path, makes_folder, option)
    return exists


def _own(path: Path, own: Callable[[Path], bool] | None) -> bool:
    """Whether ``own`` recognises ``path``, a regular file (never a link, nor anything a read
    could hang on), as the command's earlier output."""
    if own is None or path.is_symlink() or not path.is_file():
        return False
    try:
        return own(path)
    except OSError:  # unreadable: not recognised
        return False


def _existing(path: Path) -> str:
    if path.is_symlink():
        return f"{path} exists (a link to {os.readlink(path)}; the link is what would be replaced)"
    return f"{path} exists"


def is_spec(path: Path) -> bool:
    """A YAML file with the sections every nncli spec has (``data:`` and ``model:``)."""
    data = runs.yaml_mapping(path)
    return data is not None and all(key in data for key in SPEC_SECTIONS)


def check_writable(path: Path, makes_folder: bool = False, option: str = "--output") -> None:
    """SpecError when ``path``'s folder is missing (unless the command makes it);
    CheckpointError (exit 4) when it, or the nearest folder above it that exists, cannot be
    written (a read-only file system, no permission)."""
    parent = Path(os.path.abspath(path)).parent
    if not parent.is_dir() and not makes_folder:
        what = "not a folder" if os.path.lexists(parent) else "no such folder"
        raise SpecError(f"{what}: {path.parent}", field=option)
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():  # a file where a folder would go
        raise CheckpointError(f"cannot write ({os.strerror(errno.ENOTDIR)})", where=str(parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot write ({_why_not(parent)})", where=str(path))


def _why_not(parent: Path) -> str:
    """The words of the OSError a write into ``parent`` would raise."""
    read_only = getattr(os, "ST_RDONLY", 0)
    try:
        if read_only and os.statvfs(parent).f_flag & read_only:
            return os.strerror(errno.EROFS)
    except (OSError, AttributeError):  # no statvfs (Windows)
        pass
    return os.strerror(errno.EACCES)


def make_folder(path: Path) -> None:
    """mkdir -p for a command's output folder; CheckpointError (exit 4) when it cannot."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise folder.cannot_write(exc, Path(path)) or exc from None
