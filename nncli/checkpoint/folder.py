"""The run folder: where a command's outputs may go, and how they are written (its lock is
``nncli.checkpoint.lock``).

Every command that writes follows the rules here. ``check_outputs``: an output never lands on
an input (a file, another name for it, or anything inside an input folder), and a table (such
as predict's CSV) never replaces an HDF5 file. ``run_files``: a checkpoint's companions are
its own (``a.h5`` -> ``a.history.csv``; the default ``model.h5`` keeps ``history.csv``), so one
folder may hold several runs. ``write_text_atomic``: temp file + rename, the mode from the umask.
``remove_stale_temps``: temporary files named after a process that is gone are removed.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nncli.checkpoint.format import HDF5_SIGNATURE
from nncli.checkpoint.lock import other_hosts
from nncli.checkpoint.model import history_columns
from nncli.errors import OptionHint, SpecError
from nncli.training.callbacks import History

PLAIN_STEM = "model"  # the default output's files keep their plain names: history.csv
ANOTHER_OUTPUT = OptionHint("--output", "choose another --output")  # validate has none
TEMP_NAME = re.compile(r"\..+\.tmp-(?P<pid>[0-9]+)-[0-9a-f]+")


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

    def written(self) -> list[Path]:
        return [self.checkpoint, self.latest, self.best, self.history, self.resolved]

    def checkpoints(self) -> list[Path]:
        return [self.checkpoint, self.latest, self.best]


def run_files(checkpoint: str | Path) -> RunFiles:
    return RunFiles(Path(checkpoint))


def continues(files: RunFiles, resume: str | Path | None) -> bool:
    """Whether ``--resume`` continues this very run: from its checkpoint, .latest.h5 or .best.h5."""
    if resume is None:
        return False
    real = Path(os.path.realpath(resume))
    return any(
        real == Path(os.path.realpath(p)) or _same_file(real, p) for p in files.checkpoints()
    )


def check_replace(files: RunFiles, *, force: bool, resume: str | Path | None) -> None:
    """SpecError (exit 2) when a file the run would write exists, unless ``force`` or the run
    continues itself (``continues``): a fresh run and a resume into another run's files alike."""
    if force or continues(files, resume):
        return
    for path in files.written():
        if not path.exists():
            continue
        if resume is not None:
            raise SpecError(
                f"{path} exists and is not part of the run --resume {resume} continues; pass "
                "--force to replace it or choose another --output",
                field="output",
            )
        how = f" or --resume {path} to continue it" if path in files.checkpoints() else ""
        raise SpecError(f"{path} exists; pass --force to replace it{how}", field="output")


def removed_note(removed: list[Path]) -> str:
    """The line that tells the user which temporary files ``remove_stale_temps`` removed."""
    count = len(removed)
    files = "file" if count == 1 else "files"
    return (
        f"removed {count} temporary {files} left by a stopped run "
        f"({', '.join(p.name for p in removed)} in {removed[0].parent})"
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
                f"{out} is an HDF5 file (a checkpoint?) and would be replaced by a table",
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


def alive(pid: int) -> bool:
    """Signal 0 checks a process exists without touching it; EPERM means it does (not ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def temp_path(path: Path) -> Path:
    """``.<name>.tmp-<pid>-<hex>`` beside ``path``: the pid tells a later run whether the
    writer still lives (see ``remove_stale_temps``)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``. Created with
    mode 0666 so the umask decides, as for any file a Unix tool writes."""
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer's process is gone (a run killed
    in the middle of a save) -> the files removed. A live process's file is never touched, nor
    any while a run on another host (whose pids cannot be checked here) holds a lock there."""
    removed = []
    if not folder.is_dir() or other_hosts(folder):
        return removed
    for path in sorted(folder.glob(".*.tmp-*")):
        match = TEMP_NAME.fullmatch(path.name)
        if match is None or alive(int(match["pid"])) or not path.is_file():
            continue
        try:
            path.unlink()
        except OSError:  # gone already, or not ours to remove: leave it
            continue
        removed.append(path)
    return removed


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
