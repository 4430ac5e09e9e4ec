"""The runs of one folder: whose each name is, so that no run or command writes onto another's.

A run is known by its lock while it trains (``lock.holders``: the names it claimed) and by its
files once it has ended: a checkpoint (an HDF5 file named ``*.h5`` or ``*.hdf5``), a
``.latest.h5`` or ``.best.h5`` (``a.latest.h5`` -> the run ``a``), a history or a resolved spec
(``a.history.csv`` -> ``a``; ``history.csv`` -> ``model``). A run owns every name ``RunFiles``
gives its checkpoint, written yet or not, and the data files its resolved spec names.

``check_claims``: a run whose names another run of the folder owns stops (exit 2) naming it,
``--force`` or not. ``owner``: the run a path belongs to (the one output rule of
``nncli.checkpoint.outputs``). ``remove_stale_temps``: a dead writer's temporary file of one of
the folder's checkpoints is removed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nncli.checkpoint.folder import (
    PLAIN_STEM,
    TEMP_NAME,
    RunFiles,
    lock_stem,
    run_files,
    starts_with,
)
from nncli.checkpoint.format import HDF5_SIGNATURE
from nncli.checkpoint.lock import Holder, alive, holders, other_hosts
from nncli.errors import NncliError, SpecError

CHECKPOINT_SUFFIXES = (".h5", ".hdf5")  # the names a folder's files are looked into for runs
COMPANIONS = ("latest", "best")  # a.latest.h5, a.best.h5: the run a's
MAX_SPEC = 1 << 20  # bytes: a larger file is no spec (the loader refuses it too)


@dataclass(frozen=True)
class Run:
    """A run of a folder: its files, every name it owns there, and its process while it runs."""

    files: RunFiles
    names: frozenset[str]
    holder: Holder | None = None

    def __str__(self) -> str:
        running = f" ({self.holder}, running)" if self.holder is not None else ""
        return f"the run {self.files.checkpoint}{running}"

    def role(self, name: str) -> str:
        """What ``name`` is to this run: ``latest checkpoint``, ``history``, ..."""
        roles = {path.name: role for path, role in self.files.roles().items()}
        roles[self.files.lock.name] = "lock"
        return roles.get(name, "file")

    def data_files(self) -> list[Path]:
        """The data files its resolved spec names (absolute there; else from the folder)."""
        data = yaml_mapping(self.files.resolved)
        section = data.get("data") if data else None
        if not isinstance(section, dict):
            return []
        folder = self.files.checkpoint.parent
        paths = [section.get(key) for key in ("path", "validation", "test")]
        return [folder / p for p in paths if isinstance(p, str) and p]


def _marks() -> list[tuple[str, str]]:
    """(the plain run's name, any other run's suffix) of the history and the resolved spec,
    which every ended run leaves beside its checkpoint (from ``RunFiles``)."""
    plain, named = run_files(Path(f"{PLAIN_STEM}.h5")), run_files(Path("x.h5"))
    return [
        (plain.history.name, named.history.name.removeprefix("x")),
        (plain.resolved.name, named.resolved.name.removeprefix("x")),
    ]


def _stem_of_mark(name: str) -> str | None:
    """``history.csv`` -> ``model``, ``a.history.csv`` -> ``a``; None for other names."""
    for plain, suffix in _marks():
        if name == plain:
            return PLAIN_STEM
        if name.endswith(suffix) and len(name) > len(suffix):
            return name.removesuffix(suffix)
    return None


def _stems(folder: Path, names: list[str], live: set[str]) -> tuple[set[str], dict[str, str]]:
    """(the stems of the runs that left files in ``folder`` or run there (``live``), stem ->
    its checkpoint's name). ``a.latest.h5`` is the run ``a``'s unless a run ``a.latest`` has
    its own history, resolved spec or lock there: then it is that run's checkpoint."""
    stems, checkpoints, companions = set(live), {}, []
    for name in names:
        stem = _stem_of_mark(name)
        if stem is not None:
            stems.add(stem)
            continue
        if TEMP_NAME.fullmatch(name) or not name.endswith(CHECKPOINT_SUFFIXES):
            continue
        if not starts_with(folder / name, HDF5_SIGNATURE, follow=False):  # no link read
            continue
        own = Path(name).with_suffix("").name
        checkpoints.setdefault(own, name)
        run = [own.removesuffix("." + c) for c in COMPANIONS if own.endswith("." + c)]
        if run and run[0]:
            companions.append((own, run[0]))
        else:
            stems.add(own)
    stems.update(run for own, run in companions if own not in stems)
    return stems, checkpoints


def runs_in(folder: Path) -> dict[str, Run]:
    """stem -> the run of ``folder`` it names: each running one (by its lock) and each that
    left files there."""
    try:
        names = os.listdir(folder)
    except OSError:  # no folder (yet), or not one: no runs
        return {}
    live = {lock_stem(h.lock.name): h for h in holders(folder)}
    live.pop(None, None)
    stems, checkpoints = _stems(folder, names, set(live))
    runs = {}
    for stem in stems:
        holder = live.get(stem)
        claims = holder.claims if holder is not None and holder.claims else []
        files = run_files(folder / (claims[0] if claims else checkpoints.get(stem, f"{stem}.h5")))
        owned = {p.name for p in files.written()} | {files.lock.name} | set(claims)
        runs[stem] = Run(files, frozenset(owned), holder)
    return runs


def check_claims(files: RunFiles) -> None:
    """SpecError (exit 2) when a name this run writes is a name another run of its folder owns
    (running, or ended with its files there): never replaced, even with ``--force``."""
    mine = {path.name: role for path, role in files.roles().items()}
    for stem, run in sorted(runs_in(files.checkpoint.parent).items()):
        shared = sorted(set(mine) & run.names) if stem != files.stem else []
        if shared:
            path = files.checkpoint.parent / shared[0]
            raise SpecError(
                f"{path} is the {run.role(shared[0])} of {run}, and this run would write its "
                f"{mine[shared[0]]} there; choose another --output (another run's files are "
                "never replaced)",
                field="--output",
            )


def owner(path: Path) -> tuple[Run, str] | None:
    """(the run of ``path``'s folder that owns it, what it is to that run): a file it writes,
    its lock, or a data file it trained on; None when no run does."""
    runs = runs_in(path.parent).values()
    for run in runs:
        if path.name in run.names:
            return run, run.role(path.name)
    real = os.path.realpath(path)
    for run in runs:
        for data in run.data_files():
            if os.path.realpath(data) == real:
                return run, "data file"
    return None


def yaml_mapping(path: Path) -> dict[str, Any] | None:
    """A regular file's YAML as a mapping, through the spec room's safe reader; None for a
    link, a large or unreadable file, or anything that is not a YAML mapping."""
    from nncli.spec.document import parse

    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SPEC:
            return None
        data = parse(path.read_text(encoding="utf-8"), str(path)).data
    except (OSError, UnicodeDecodeError, NncliError):
        return None
    return data if isinstance(data, dict) else None


def remove_stale_temps(folder: Path, files: RunFiles | None = None) -> list[Path]:
    """Remove the temporary files in ``folder`` of a save whose process is gone (a run killed in
    the middle of one) -> the files removed. Only ``.<checkpoint>.tmp-<pid>-<hex>`` of a
    checkpoint of the folder's runs (and of ``files``), holding an HDF5 file in progress; never
    a live process's, nor any while a run on another host (whose pids cannot be checked here)
    holds a lock there."""
    removed: list[Path] = []
    if not folder.is_dir() or other_hosts(folder):
        return removed
    runs = [run.files for run in runs_in(folder).values()] + ([files] if files else [])
    names = {path.name for run in runs for path in run.checkpoints()}
    for path in sorted(folder.glob(".*.tmp-*")):
        match = TEMP_NAME.fullmatch(path.name)
        if match is None or match["name"] not in names or alive(int(match["pid"])):
            continue
        if not starts_with(path, HDF5_SIGNATURE, follow=False):  # a save in progress, no link
            continue
        try:
            path.unlink()
        except OSError:  # gone already, or not ours to remove: leave it
            continue
        removed.append(path)
    return removed


def removed_note(removed: list[Path]) -> str:
    """The line that tells the user which temporary files ``remove_stale_temps`` removed."""
    count = len(removed)
    files = "file" if count == 1 else "files"
    return (
        f"removed {count} temporary {files} left by a stopped run "
        f"({', '.join(p.name for p in removed)} in {removed[0].parent})"
    )
