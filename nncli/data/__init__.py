"""Data: files -> host numpy arrays plus fitted encoders; stored encoders -> predict-time inputs.

``load(cfg, base_dir, seed, loss)`` dispatches on ``cfg.kind`` through the ``KINDS`` registry
(kinds.py); ``encoder_from_state(state)`` rebuilds the encoder a checkpoint stored, dispatching
on ``state["kind"]``. Nothing here imports the engine's layers, h5py, typer or rich; pandas
only inside the functions that read files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nncli.bounds.files import require_regular
from nncli.data.dataset import Dataset, state_text, task_for_loss
from nncli.data.encoder import Encoder
from nncli.data.kinds import KINDS, SYNONYMS, DataKind
from nncli.errors import CheckpointError, DataError, NncliError, SpecError

__all__ = [
    "KINDS",
    "DataKind",
    "Dataset",
    "Encoder",
    "encoder_from_state",
    "load",
    "task_for_loss",
]


def load(
    cfg: Any,
    base_dir: Path,
    seed: int,
    loss: str,
    *,
    skip_bad: bool = False,
    line_of: Callable[[str], str | None] | None = None,
    input_form: str = "onehot",
    dtype: str = "float32",
) -> Dataset:
    """The spec's ``data:`` section -> Dataset (train / validation / test arrays + encoder).

    ``skip_bad`` (``--skip-bad``): image loaders leave out unreadable files; other kinds ignore it.
    ``line_of`` (``Spec.line_of``): errors about a ``data.*`` key get its place in the spec file.
    ``input_form="ids"`` (an embedding first): kinds of symbols give them as integer ids.
    ``dtype`` (the spec's): kinds that read real values make their arrays in it.
    """
    kind = SYNONYMS.get(getattr(cfg, "kind", None), getattr(cfg, "kind", None))
    if kind not in KINDS:
        raise SpecError(
            f"expected a data kind ({', '.join(sorted([*KINDS, *SYNONYMS]))}), got {kind!r}",
            field="data.kind",
        )
    options: dict[str, Any] = {"skip_bad": True} if skip_bad and KINDS[kind].takes_skip_bad else {}
    if input_form == "ids" and KINDS[kind].takes_ids:
        options["input_form"] = input_form
    if dtype != "float32" and KINDS[kind].takes_dtype:
        options["dtype"] = dtype
    try:
        check_paths(cfg, Path(base_dir))
        return KINDS[kind].loader(cfg, Path(base_dir), seed, loss, **options)
    except NncliError as exc:
        field = exc.field or ""
        if line_of is not None and exc.where is None and field.startswith("data."):
            exc.where = line_of(field)
        raise


def check_paths(cfg: Any, base_dir: Path) -> None:
    """DataError naming the ``data.path``/``validation``/``test`` key whose file is missing,
    with a close match among the names in its folder, or is no regular file (a device, a named
    pipe; an image folder may be a folder)."""
    for key in ("path", "validation", "test"):
        value = getattr(cfg, key, None)
        if value is None:
            continue
        path = Path(value) if Path(value).is_absolute() else base_dir / value
        if path.exists():
            require_regular(
                _shown(path), DataError, folder=cfg.kind == "images", field=f"data.{key}"
            )
            continue
        try:
            names = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
        except OSError:
            names = []
        from nncli.engine.registry import did_you_mean  # only on this error path

        what = "no such image file or folder" if cfg.kind == "images" else "file not found"
        raise DataError(
            f"{what}: {_shown(path)}{did_you_mean(path.name, names)}",
            field=f"data.{key}",
        )


def _shown(path: Path) -> str:
    """A path as a message shows it: relative to the current folder when under it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def encoder_from_state(state: dict) -> Encoder:
    """A checkpoint's ``/data`` dict -> the fitted encoder it describes."""
    kind = state_text(state.get("kind"))
    kind = SYNONYMS.get(kind, kind)
    if kind not in KINDS:
        raise CheckpointError(
            f"the stored data encoder is of kind {kind!r}; this nncli knows "
            f"{', '.join(sorted(KINDS))}"
        )
    return KINDS[kind].encoder.from_state(state)
