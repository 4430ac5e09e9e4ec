"""Which rows ``nncli evaluate`` scores: a part of the file a model was trained on (its training,
validation or test part, split again exactly as training split it) or every row of a file.

The checkpoint's training record holds the content digest of its training data
(``data_sha256``, ``nncli.data.digest``); a file with that digest is the training file. Its parts
come from the data room's own loader run on it with the checkpoint's resolved spec (its seed,
fractions, split column, missing-value policy), so every data kind splits as it did in training;
the encoder that loader fits must equal the stored one, else the split is not trusted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nncli import data
from nncli.checkpoint import model as model_io
from nncli.commands.predictor import Predictor
from nncli.data.dataset import PART_NAMES, Dataset, state_text
from nncli.data.digest import content_digest
from nncli.data.streaming import Streamed
from nncli.errors import SpecError

PARTS = ("train", "validation", "test", "all")
HELD_OUT = ("test", "validation")  # the default on the training file: the first it holds
UNITS = {"images": "images", "sequences": "sequences", "timeseries": "windows", "text": "windows"}
NO_DIGEST = "this checkpoint records no digest of its training data"


@dataclass
class Part:
    """What evaluate scores: ``part`` of the file ``name``; ``x, y, mask`` when split from the
    training file (None: the whole file, read by the stored encoder); ``total``: the examples
    of all the training file's parts; ``note``: said after which rows were scored."""

    part: str
    trained_on: bool | None  # the training file; None: the checkpoint records no digest
    name: str
    units: str  # rows, images, sequences or windows
    x: Any = None
    y: Any = None
    mask: Any = None
    total: int = 0
    note: str = ""

    def line(self, rows: int) -> str:
        """``scored the validation part: 14 of 56 rows of auto.csv, the file this model was
        trained on``."""
        scored = "all" if self.part == "all" else f"the {self.part} part: {rows} of"
        text = f"scored {scored} {self.total or rows} {self.units} of {self.name}"
        if self.trained_on:
            text += ", the file this model was trained on"
            text += " (training rows included)" if self.part == "all" else ""
        return text + self.note


def trained_on(model: model_io.Model, path: Path) -> bool | None:
    """True when ``path`` holds the data ``model`` was trained on, False when it differs, None
    when the checkpoint records no digest (written before nncli recorded one)."""
    recorded = model.training.get("data_sha256")
    if not recorded:
        return None
    return Path(path).exists() and content_digest(Path(path)) == state_text(recorded)


def choose(
    predictor: Predictor,
    path: Path,
    part: str | None,
    *,
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Part:
    """The part to score: ``part`` (train, validation, test or all), or None for the held-out
    part of the training file (its test part, else its validation part) and all of any other
    file. SpecError (exit 2) for a part of a file that is not the training file, for a part
    training did not make, or for a split that cannot be made again."""
    if part is not None and part not in PARTS:
        raise SpecError(f"expected one of {', '.join(PARTS)}, got {part!r}", field="--part")
    known = trained_on(predictor.model, path)
    whole = Part("all", known, Path(path).name, UNITS.get(predictor.kind, "rows"))
    if part == "all" or (part is None and known is False):
        return whole
    if part is None and known is None:
        whole.note = (
            f" ({NO_DIGEST}, so evaluate cannot tell whether this is that file; if it is, "
            "--part validation scores the rows training held out)"
        )
        return whole
    if known is False:
        raise SpecError(
            f"{whole.name} is not the file this model was trained on (its content differs), so "
            f"it has no {part} part; --part all scores every one of its {whole.units}",
            field="--part",
        )
    ds, failed = split_again(predictor, path, skip_bad=skip_bad, warn=warn)
    if failed and part is None:
        whole.note = f" (it cannot be split as in training: {failed})"
        return whole
    if failed:
        raise SpecError(f"{whole.name} cannot be split as in training: {failed}", field="--part")
    chosen = _picked(ds, part, whole)
    if known is None:
        chosen.note = f" ({NO_DIGEST}: split as training would split this file)"
    elif part is None and chosen.part != "all":
        chosen.note = "; --part train, validation, test or all picks another"
    return chosen


def _picked(ds: Dataset, part: str | None, whole: Part) -> Part:
    """The asked part of a split file, or the held-out one; ``whole`` when none is held out."""
    sizes = {name: ds.rows(name) for name in PART_NAMES}
    chosen = part or next((name for name in HELD_OUT if sizes[name]), None)
    if chosen is None:
        whole.note = ": training held out no part of it"
        return whole
    if not sizes[chosen]:
        made = ", ".join(f"{name} {n}" for name, n in sizes.items() if n)
        raise SpecError(
            f"training made no {chosen} part of {whole.name} (its parts: {made} {whole.units})",
            field="--part",
        )
    picked, total = ds.parts[chosen], sum(sizes.values())
    x, y = picked.x, picked.y
    if isinstance(x, Streamed):  # a streamed run's part, read into memory to be scored
        x, y = x.stream.head(len(x))
    return Part(chosen, whole.trained_on, whole.name, whole.units, x, y, picked.mask, total)


def split_again(
    predictor: Predictor,
    path: Path,
    *,
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[Dataset | None, str | None]:
    """(the training file split as training split it, None) or (None, why it cannot be): the
    data room's loader on ``path`` with the checkpoint's data settings and seed (a separate
    validation or test file of the spec is left out: it took no rows of this one)."""
    from nncli.spec import loads

    encoder = predictor.encoder
    try:
        spec = loads(predictor.model.spec_yaml, "the checkpoint's spec")
    except SpecError as exc:
        return None, f"this nncli cannot read the checkpoint's spec ({exc.message})"
    update: dict[str, Any] = {"path": Path(os.path.abspath(path))}
    for key in ("validation", "test"):
        if getattr(spec.data, key, None) is not None:
            update |= {key: None, f"{key}_split": 0.0}
    cfg = spec.data.model_copy(update=update)
    ds = data.load(
        cfg,
        Path(path).parent,
        spec.seed,
        spec.loss_name,
        skip_bad=skip_bad,
        input_form=encoder.input_form,
        dtype=encoder.dtype,
    )
    for note in ds.warnings if warn else ():
        warn(note)
    if not same_state(ds.encoder.to_state(), encoder.to_state()):
        return None, (
            "the encoder fitted on its training part differs from the model's (another file, "
            "or another nncli's encoding)"
        )
    return ds, None


def same_state(a: Any, b: Any) -> bool:
    """Two encoder states (nested dicts of text, numbers, lists and arrays) hold the same."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same_state(a[key], b[key]) for key in a)
        )
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return False
    if x.dtype.kind in "OSU" or y.dtype.kind in "OSU":
        return [state_text(v) for v in x.ravel()] == [state_text(v) for v in y.ravel()]
    return bool(np.array_equal(x, y, equal_nan=True))
