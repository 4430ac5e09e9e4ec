"""Image folders -> Dataset: one sub-folder per class, split, scaled, with training augmentation.

``data: {kind: images, path: FOLDER, ...}``: labels are the sub-folder names (sorted; numbers as
numbers). Validation and test parts are drawn at random, seeded and stratified, as for CSV
(``split.py``), or read from their own labelled folders (``validation:`` / ``test:``). The
per-channel statistics of ``normalize: standard`` come from the training part only.
x: float32 (N, C, H, W); y: one-hot (N, K) or 0/1 (N, 1) for binary_cross_entropy.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from nncli.data.augment import Augmenter
from nncli.data.dataset import CLASSIFICATION_LOSSES, Dataset, Part, parts_of, task_for_loss
from nncli.data.image_encoder import ImageEncoder, class_codes
from nncli.data.image_files import all_skipped, read_frame, skipped_note
from nncli.data.labels import check_class_count
from nncli.data.split import split_parts
from nncli.data.table import resolve
from nncli.errors import DataError, SpecError


def load(
    cfg: Any,
    base_dir: Path,
    seed: int,
    loss: str,
    *,
    skip_bad: bool = False,
    dtype: str = "float32",
) -> Dataset:
    """``data: {kind: images, ...}`` -> Dataset; ``skip_bad`` leaves out unreadable files (the
    Dataset's warnings count them) instead of stopping at the first."""
    if loss not in CLASSIFICATION_LOSSES:
        raise SpecError(
            "image folders are labelled by class; expected loss "
            f"{' or '.join(CLASSIFICATION_LOSSES)}, got {loss!r}",
            field="loss",
        )
    size = tuple(cfg.image_size) if getattr(cfg, "image_size", None) else None
    color = getattr(cfg, "color", "grayscale")
    path = resolve(cfg.path, base_dir)
    if getattr(cfg, "streaming", False):  # larger than memory: each batch decoded when used
        from nncli.data import image_stream

        checks = (_check_classes, augmenter, partial(resolve, base_dir=base_dir))
        return image_stream.load(cfg, path, seed, loss, dtype, skip_bad, checks)
    frame = read_frame(path, size, color, skip_bad, np.dtype(dtype))
    if frame.skipped and not len(frame):
        raise all_skipped(frame.skipped, str(path))
    classes = _check_classes(frame, path, loss)
    notes, skipped = list(frame.warnings), list(frame.skipped)

    codes = class_codes(frame.labels, classes, str(path))
    files, (train, val, test) = split_parts(cfg, len(frame), seed, codes, "images")
    encoder = ImageEncoder.fit(
        frame.pixels[train],
        classes,
        loss,
        color,
        getattr(cfg, "normalize", "none"),
        resize=size is not None,
    )
    encoder.dtype = dtype  # pixels of new data are read and scaled in it too

    def part(name: str, rows: np.ndarray) -> Part | None:
        if files.get(name):
            other = encoder.read_frame(resolve(files[name], base_dir), skip_bad)
            notes.extend(other.warnings)
            skipped.extend(other.skipped)
            if len(other) == 0:
                if other.skipped:
                    raise all_skipped(other.skipped, other.source)
                raise DataError(f"no {name} images", where=other.source)
            return Part(encoder.transform(other), encoder.targets(other))
        if name != "train" and len(rows) == 0:
            return None
        return Part(encoder.scale(frame.pixels[rows]), encoder.encode(codes[rows]))

    chosen = {"train": train, "validation": val, "test": test}
    return Dataset(
        task_for_loss(loss),
        parts_of(**{name: part(name, rows) for name, rows in chosen.items()}),
        encoder,
        str(path),
        augment=augmenter(getattr(cfg, "augment", None), encoder),
        warnings=notes + skipped_note(skipped),
    )


def _check_classes(frame: Any, path: Path, loss: str) -> list[str]:
    """The class labels, after checking there are enough and none is empty."""
    if frame.classes is None:
        raise DataError(
            "expected one sub-folder per class (named by its label) holding its images, "
            "found images without class folders",
            where=str(path),
        )
    counts = dict.fromkeys(frame.classes, 0)
    names, found = np.unique(np.array(frame.labels, dtype=str), return_counts=True)
    counts.update(zip(names.tolist(), found.tolist(), strict=True))
    empty = [label for label, count in counts.items() if count == 0]
    if empty:
        what = "readable images" if frame.skipped else "images"
        raise DataError(f"class folder {empty[0]!r} has no {what}", where=str(path / empty[0]))
    found = f"found {len(counts)} class folder{'s' * (len(counts) != 1)}: {', '.join(counts)}"
    check_class_count(len(counts), loss, found, where=str(path))
    return list(frame.classes)


def augmenter(cfg: Any, encoder: ImageEncoder) -> Augmenter | None:
    """``data.augment`` -> the batch function ``fit`` applies in training, or None when off."""
    if cfg is None:
        return None
    aug = Augmenter(
        flip_horizontal=bool(cfg.flip_horizontal),
        flip_vertical=bool(cfg.flip_vertical),
        shift=int(cfg.shift),
        rotate=float(cfg.rotate),
        noise=float(cfg.noise),
        fill=encoder.fill,
        scale=tuple(float(v) for v in 1.0 / encoder.std),
    )
    return aug if aug.active else None
