"""``nncli train --resume``: weights, optimizer state, epoch and history from a checkpoint, after
checking that the spec agrees with it on the model, loss, optimizer and data encoding; and the
command line that continues an interrupted run."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.checkpoint import model as model_io
from nncli.engine.history import History
from nncli.errors import SpecError

if TYPE_CHECKING:
    from nncli.spec import Spec

# what a resumed run may change: where the files are, and the learning rate
RESUME_MAY_CHANGE = {"data": ("path", "validation", "test"), "optimizer": ("learning_rate",)}


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """The dotted path of the first place two nested values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{where}.{key}".lstrip(".")
            diff = first_difference(a[key], b[key], f"{where}.{key}")
            if diff:
                return diff
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = first_difference(x, y, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        if a_arr.shape != b_arr.shape or a_arr.dtype.kind != b_arr.dtype.kind:
            return where.lstrip(".") or "."
        same = (
            np.array_equal(a_arr, b_arr)
            if a_arr.dtype.kind in "biuf"
            else (a_arr.tolist() == b_arr.tolist())
        )
        return None if same else (where.lstrip(".") or ".")
    return None if a == b else (where.lstrip(".") or ".")


def resume_command(spec: Spec, last: Path, out: Path, overrides: Sequence[str], device: Any) -> str:
    """The exact command line that continues an interrupted run (quoted for a POSIX shell)."""
    words = ["nncli", "train", str(spec.source or "SPEC")]
    words += [w for o in overrides for w in ("--set", o)]
    words += ["--resume", str(last), "--output", str(out)]
    return shlex.join(words + (["--device", device] if device else []))


def resume_advice(
    spec: Spec, last: Path | None, out: Path, overrides: Sequence[str], device: Any
) -> str:
    """How a stopped run's message ends: the last good checkpoint and the command that resumes
    from it, or that none was saved."""
    if last is None:
        saved = "no checkpoint was saved yet (set training.checkpoint_every)"
        return f"; last good checkpoint: none; {saved}"
    command = resume_command(spec, last, out, overrides, device)
    return f"; last good checkpoint: {last}; resume with: {command}"


def resume(
    path: Path,
    spec: Spec,
    net: Any,
    optimizer: Any,
    encoder_state: dict,
    backend: Any,
    schedule: Any = None,
    early_stopping: Any = None,
) -> tuple[int, History, dict | None]:
    """Load ``path`` into ``net``, ``optimizer`` and ``schedule`` -> (its epoch, its history,
    the best epoch's weights or None); SpecError naming the first setting the spec changes.
    ``spec.version`` becomes the checkpoint's, and ``early_stopping`` counts its ``patience`` as
    that version does (Keras's from version 2 on)."""
    model = model_io.load(path, backend.name, spec.dtype)
    diff = first_difference(model.net.config(), net.config(), "model.layers")
    diff = diff or settings_difference(model.spec_yaml, spec)
    diff = diff or first_difference(model.encoder_state, encoder_state, "data")
    if diff is not None:
        raise SpecError(
            f"the spec disagrees with the checkpoint {path} at {diff}; resume needs "
            "the same model, loss, optimizer and data encoding",
            field="--resume",
        )
    spec.version = stored_version(model.spec_yaml)
    if early_stopping is not None:
        early_stopping.keras_patience = spec.version >= 2
    training = model.training
    net.set_weights(training.get("resume_weights") or model.net.get_weights())
    if model.optimizer is not None and model.optimizer.type == optimizer.type_name:
        optimizer.load_state(model.optimizer.state, model.optimizer.step, backend)
    if schedule is not None and "schedule" in training:
        schedule.load_state(training["schedule"])
    columns = training.get("history", {})
    count = len(columns.get("epoch", []))
    history = History(
        epochs=[
            {k: float(v[i]) for k, v in columns.items() if not math.isnan(float(v[i]))}
            for i in range(count)
        ],
        best_epoch=training.get("best_epoch"),
        best_value=training.get("best_value"),
        mlflow_run_id=training.get("mlflow_run_id"),  # older checkpoints have none
    )
    for e in history.epochs:
        e["epoch"] = int(e["epoch"])
    return int(training.get("epoch", count)), history, best_weights(path, model, spec.dtype)


def settings_difference(stored_yaml: str, spec: Spec) -> str | None:
    """The first loss, optimizer or data setting the checkpoint was trained with that ``spec``
    changes (an optimizer's slots mean nothing to another one; the data's scaling, features and
    target are the encoding). The stored spec is only compared, never used to find files."""
    from nncli.spec import loads, to_dict

    try:
        stored = to_dict(loads(stored_yaml, "the checkpoint's spec"))
    except SpecError:
        return "spec (the checkpoint's own spec cannot be read)"
    current = to_dict(spec)
    for section in ("loss", "optimizer", "data"):
        a, b = stored.get(section), current.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            keep = RESUME_MAY_CHANGE.get(section, ())
            a, b = ({k: v for k, v in d.items() if k not in keep} for d in (a, b))
        diff = first_difference(a, b, section)
        if diff:
            return diff
    return None


def stored_version(stored_yaml: str) -> int:
    """The spec version a checkpoint was trained under, from its resolved spec (1 for one
    written before versions counted, or one that cannot be read)."""
    from nncli.spec import loads

    try:
        return loads(stored_yaml, "the checkpoint's spec").version
    except SpecError:
        return 1


def best_weights(path: Path, model: Any, dtype: str) -> dict | None:
    """The best epoch's weights, which ``restore_best`` needs at the end of a resumed run: the
    checkpoint's own model when it holds them, else the ``.best.h5`` beside a ``.latest.h5``."""
    training = model.training
    best_epoch = training.get("best_epoch")
    if "resume_weights" in training or best_epoch == training.get("epoch"):
        return model.net.get_weights()  # a final checkpoint's /model holds the best epoch
    stem = path.name.removesuffix(".latest.h5")
    best_path = path.with_name(f"{stem}.best.h5")
    if best_epoch is None or stem == path.name or not best_path.exists():
        return None
    best = model_io.load(best_path, model.net.backend.name, dtype)
    return best.net.get_weights() if best.training.get("epoch") == best_epoch else None
