"""The run folder: a run's files, where a command's outputs may go, and how they are written
(its lock is ``nncli.checkpoint.lock``; the other runs of a folder ``nncli.checkpoint.runs``,
the one output rule of the commands that write one file ``nncli.checkpoint.outputs``).

``check_outputs``: an output never lands on an input (a file, another name for it, or anything
inside an input folder), and a table (such as predict's CSV) never replaces an HDF5 file.
``check_kind``: an output is a file (or a name for one), never a folder or a FIFO.
``run_files``: a checkpoint's companions are its own (``a.h5`` -> ``a.history.csv``; the
default ``model.h5`` keeps ``history.csv``), so one folder may hold several runs.
``write_atomic``: temp file + rename (a link in the output's place is replaced, never written
through), the mode from the umask; a failure is a CheckpointError (exit 4) with the reason.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nncli.checkpoint.format import HDF5_SIGNATURE
from nncli.checkpoint.lock import LOCK_NAME
from nncli.checkpoint.model import history_columns
from nncli.checkpoint.writer import cannot_write
from nncli.engine.history import History
from nncli.errors import OptionHint, SpecError

PLAIN_STEM = "model"  # the default output's files keep their plain names: history.csv
ANOTHER_OUTPUT = OptionHint("--output", "choose another --output")  # validate has none
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>[0-9]+)-[0-9a-f]+")


@dataclass(frozen=True)
class RunFiles:
    """Every file a training run writes for the checkpoint ``checkpoint``."""

    checkpoint: Path

    def _beside(self, suffix: str, plain: str | None = None) -> Path:
        stem = self.checkpoint.with_suffix("").name
        name = plain if plain and stem == PLAIN_STEM else f"{stem}.{suffix}"
        return self.checkpoint.with_name(name)

    @property
    def latest(self) -> Path:
        return self._beside("latest.h5")

    @property
    def best(self) -> Path:
        return self._beside("best.h5")

    @property
    def history(self) -> Path:
        return self._beside("history.csv", "history.csv")

    @property
    def resolved(self) -> Path:
        return self._beside("spec.resolved.yaml", "spec.resolved.yaml")

    @property
    def lock(self) -> Path:
        """One lock per checkpoint: runs writing different checkpoints share a folder."""
        plain = self._beside("nncli.lock", "nncli.lock")
        return plain.with_name("." + plain.name)

    @property
    def stem(self) -> str:
        """What names the run in its folder: ``a`` for ``a.h5`` (its lock ``.a.nncli.lock``)."""
        return self.checkpoint.with_suffix("").name

    def roles(self) -> dict[Path, str]:
        """Every path the run writes -> what it is to the run, for messages. A run that writes
        a folder (TensorBoard's logs) adds it here, so it is claimed and checked like a file."""
        return {
            self.checkpoint: "checkpoint",
            self.latest: "latest checkpoint",
            self.best: "best checkpoint",
            self.history: "history",
            self.resolved: "resolved spec",
        }

    def written(self) -> list[Path]:
        return list(self.roles())

    def checkpoints(self) -> list[Path]:
        return [self.checkpoint, self.latest, self.best]


def run_files(checkpoint: str | Path) -> RunFiles:
    return RunFiles(Path(checkpoint))


def lock_stem(name: str) -> str | None:
    """The stem of the run whose lock is named ``name`` (``RunFiles.lock``): ``.nncli.lock``
    -> ``model``, ``.a.nncli.lock`` -> ``a``; None for another name."""
    if name == LOCK_NAME:
        return PLAIN_STEM
    stem = name.removeprefix(".").removesuffix(LOCK_NAME)
    return stem if name.startswith(".") and name.endswith(LOCK_NAME) and stem else None


def continues(files: RunFiles, resume: str | Path | None) -> bool:
    """Whether ``--resume`` continues this very run: from its checkpoint, .latest.h5 or .best.h5."""
    if resume is None:
        return False
    real = Path(os.path.realpath(resume))
    return any(
        real == Path(os.path.realpath(p)) or _same_file(real, p) for p in files.checkpoints()
    )


def check_replace(files: RunFiles, *, force: bool, resume: str | Path | None) -> None:
    """SpecError (exit 2) when a file the run would write is a folder or a FIFO, or exists,
    unless ``force`` or the run continues itself (``continues``): a fresh run and a resume into
    another run's files alike. A link in a file's place, even one to nowhere, exists."""
    for path in files.written():
        check_kind(path, example=path / "model.h5" if path == files.checkpoint else None)
    if force or continues(files, resume):
        return
    for path in files.written():
        if not os.path.lexists(path):
            continue
        if resume is not None:
            raise SpecError(
                f"{path} exists and is not part of the run --resume {resume} continues; pass "
                "--force to replace it or choose another --output",
                field="output",
            )
        how = f" or --resume {path} to continue it" if path in files.checkpoints() else ""
        raise SpecError(f"{path} exists; pass --force to replace it{how}", field="output")


def check_kind(path: Path, option: str = "--output", example: Path | None = None) -> None:
    """SpecError (exit 2) when ``path`` is a folder (``example``: the file to name inside it)
    or exists as something other than a file or a link (a FIFO, a device, a socket)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # nothing there (or unreadable: the write says why)
        return
    if stat.S_ISDIR(mode) or (stat.S_ISLNK(mode) and os.path.isdir(path)):
        how = (
            f"name the file inside it: {option} {example}"
            if example
            else f"choose another {option}"
        )
        raise SpecError(f"{path} is a folder, not a file; {how}", field=option)
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise SpecError(
            f"{path} is not a regular file (a FIFO, device or socket); choose another {option}",
            field=option,
        )


def check_outputs(
    outputs: Iterable[str | Path], inputs: Iterable[str | Path | None], *, table: bool = False
) -> None:
    """SpecError (exit 2) when an output is an input file or lies inside an input folder, or,
    for a ``table``, would replace an HDF5 file (a checkpoint, most likely)."""
    outputs = [Path(p) for p in outputs]
    for given in inputs:
        if given is None:
            continue
        source = Path(os.path.realpath(given))
        folder = source.is_dir()
        for out in outputs:
            real = Path(os.path.realpath(out))
            if folder and (real == source or source in real.parents):
                raise SpecError(
                    f"{out} is inside the input folder {given}; write outputs elsewhere",
                    field="output",
                )
            if real == source or _same_file(real, source):
                raise SpecError(
                    f"{out} would overwrite the input file {given}",
                    field="output",
                    hint=ANOTHER_OUTPUT,
                )
    for out in outputs if table else ():
        if is_hdf5(out):
            raise SpecError(
                f"{out} is an HDF5 file (a checkpoint?) and is never replaced by another kind "
                "of file",
                field="output",
                hint=ANOTHER_OUTPUT,
            )


def _same_file(a: Path, b: Path) -> bool:
    """Also catches hard links, which realpath cannot see."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def is_hdf5(path: Path) -> bool:
    """The HDF5 signature at byte 0, 512, 1024, 2048, ... (where a user block may move it)."""
    if not os.path.isfile(path):  # a folder, a FIFO (never opened: that would wait), nothing
        return False
    try:
        with open(path, "rb") as f:
            size, offset = os.fstat(f.fileno()).st_size, 0
            while offset + len(HDF5_SIGNATURE) <= size:
                f.seek(offset)
                if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                    return True
                offset = max(512, offset * 2)
    except OSError:  # missing, a folder, unreadable: not an HDF5 file we could replace
        return False
    return False


def starts_with(path: Path, head: bytes, *, follow: bool = True) -> bool:
    """Whether ``path`` is a regular file (reached through a link only when ``follow``) whose
    first bytes are ``head``. Nothing else is read: opening a FIFO does not wait."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags | (0 if follow else getattr(os, "O_NOFOLLOW", 0)))
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and os.read(fd, len(head)) == head
    except OSError:
        return False
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """``.<name>.tmp-<pid>-<hex>`` beside ``path``: the pid tells a later run whether the
    writer still lives (see ``nncli.checkpoint.runs.remove_stale_temps``)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a temporary file in the same folder, then rename it over ``path`` (a
    link there is replaced, its target never written). Created with mode 0666 so the umask
    decides, as for any file a Unix tool writes. CheckpointError (exit 4) when it cannot."""
    tmp = temp_path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):  # a read-only folder: nothing was created
                tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise (cannot_write(exc, path) or exc) from None


def write_text_atomic(path: Path, text: str) -> None:
    """``write_atomic`` for text (UTF-8, line endings as given)."""
    write_atomic(path, text)


def history_csv(history: History) -> str:
    columns = list(history_columns(history))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for e in history.epochs:
        writer.writerow(
            [int(e[c]) if c == "epoch" else f"{e.get(c, math.nan):.8g}" for c in columns]
        )
    return buf.getvalue()
