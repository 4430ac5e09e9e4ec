"""``nncli init DATA``: a commented starter spec that trains as it is, from what the data holds."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nncli.checkpoint import folder
from nncli.checkpoint.outputs import check_output
from nncli.data.profile import Profile, profile
from nncli.errors import SpecError
from nncli.spec.resolve import Resolved
from nncli.spec.starter import spec_text, summary


@dataclass
class Started:
    """What ``init`` wrote: the spec, what the data holds, and what to tell the user."""

    output: Path
    profile: Profile
    summary: str  # e.g. "a table of 150 rows; classify 'species' into 3 classes"
    replaced: bool
    notes: list[str] = field(default_factory=list)  # choices made for the user (the target, ids)
    checked: list[str] = field(default_factory=list)  # what validate said of the spec
    warnings: list[str] = field(default_factory=list)  # the data's, as train would give them
    train_command: str = ""  # the line that trains the spec


def init(
    data: Path,
    *,
    target: str | None = None,
    output: Path | None = None,
    force: bool = False,
    skip_bad: bool = False,
) -> Started:
    """Look at ``data``, write the starter spec to ``output`` (default ``<data stem>.yaml`` in
    the current folder; a folder gets that name inside it), then check it as ``nncli validate``
    does before it takes the output's name (``skip_bad``: leaving out unreadable images, as
    ``train --skip-bad`` will). Never onto the data, never over a file without ``force``."""
    data = Path(data)
    out = _output(data, output)
    replaced = check_output(out, [data], force=force, spec=True)
    found = profile(data, target)
    path = _data_path(data, out)
    command = " ".join(["nncli init", str(data), *(["--target", target] if target else [])])

    def render(ready: Resolved | None) -> str:
        if ready is None:
            return spec_text(found, path, _name(data), command)
        shape, parameters = ready.ds.input_shape, ready.net.parameter_count()
        return spec_text(found, path, _name(data), command, shape, parameters)

    warnings: list[str] = []
    checked = _write_checked(out, render, skip_bad, warnings.append)
    started = Started(out, found, summary(found), replaced, _notes(found), checked, warnings)
    started.train_command = f"nncli train {out}" + (" --skip-bad" if skip_bad else "")
    return started


def _output(data: Path, output: Path | None) -> Path:
    """``--output`` (a folder: ``<data stem>.yaml`` inside it), or that name here."""
    name = f"{_name(data)}.yaml"
    if output is None:
        return Path(name)
    return Path(output) / name if Path(output).is_dir() else Path(output)


def _data_path(data: Path, out: Path) -> str:
    """The data as the spec at ``out`` names it: relative to the spec's folder (how spec paths
    resolve), or absolute when the two share nothing but the root."""
    data, here = os.path.abspath(data), os.path.abspath(out.parent)
    try:
        shared = os.path.commonpath([data, here])
    except ValueError:  # two drives on Windows
        shared = ""
    if not shared or Path(shared) == Path(shared).parent:  # the root: nothing in common
        return Path(data).as_posix()
    return Path(os.path.relpath(data, here)).as_posix()


def _name(data: Path) -> str:
    """The run's name: the data file's stem (a folder's own name)."""
    name = Path(os.path.abspath(data)).stem
    return name if name not in ("", ".", "..") else "starter"


def _write_checked(
    out: Path,
    render: Callable[[Resolved | None], str],
    skip_bad: bool,
    warn: Callable[[str], None],
) -> list[str]:
    """Write ``render(None)`` to a temporary file beside ``out`` and validate it there (so its
    relative data path resolves as it will); then the same spec with the input shape and the
    parameter count the check found in its comments (``render(resolved)``, which must load to
    the same spec) takes the name ``out``. A spec that does not validate is a bug of this
    command and raises as one; a DataError of the data itself goes to the user."""
    from nncli import spec as spec_module
    from nncli.commands.validate import validate

    tmp = folder.temp_path(out)
    try:
        _write(tmp, render(None), out)
        seen: list[Resolved] = []
        try:
            checked = validate(tmp, on_resolved=seen.append, skip_bad=skip_bad, warn=warn)
        except SpecError as exc:  # our template, not the user's data
            raise RuntimeError(f"the starter spec for {out} does not validate: {exc}") from exc
        text = render(seen[0])
        if spec_module.to_dict(spec_module.loads(text, str(tmp), out.parent)) != (
            spec_module.to_dict(seen[0].spec)
        ):
            raise RuntimeError(f"the starter spec for {out} changed when commented")
        _write(tmp, text, out)
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise folder.cannot_write(exc, out) or exc from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return checked


def _write(tmp: Path, text: str, out: Path) -> None:
    """The spec's text into ``out``'s temporary file (CheckpointError, exit 4, when the system
    refuses)."""
    try:
        tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise folder.cannot_write(exc, out) or exc from None


def _notes(found: Profile) -> list[str]:
    """What the user should know was chosen for them."""
    notes = []
    if found.target is not None and not found.target_given:
        notes.append(
            f"the target is the last column, {found.target.name!r}; pass --target COLUMN to "
            "predict another"
        )
    ids = [c.name for c in found.left_out]
    if ids:
        notes.append(f"left out like an id (data.exclude): {', '.join(ids)}")
    if found.missing:
        counted = f", counting {', '.join(found.na_values)} as empty" if found.na_values else ""
        notes.append(
            f"{found.missing} empty cells are filled (data.missing: fill{counted}): numbers "
            "with the training mean, text with the most frequent value"
        )
    return notes
