"""``data.streaming: true`` for an image folder: each batch's files decoded when ``fit`` asks
for them, never the whole folder at once.

The folder's listing (paths and class folders) is held; the pixels are not. One pass before
training decodes every image once, ``chunk_rows`` at a time, to find the unreadable ones
(``--skip-bad``), check their sizes and keep each image's per-channel count, mean and squared
deviations, from which the training part's statistics come (Chan's update, ``moments.merged``).
The split is the in-memory one (it needs only the labels), and so is the batch order:
``LazyImages[rows]`` decodes those rows, so ``fit`` indexes it as it indexes an array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nncli.data.dataset import Dataset, Part, parts_of, task_for_loss
from nncli.data.image_encoder import ImageEncoder, class_codes
from nncli.data.image_files import ImageFrame, all_skipped, decode, list_images, skipped_note
from nncli.data.moments import merged
from nncli.data.split import split_parts
from nncli.data.streaming import Unheld
from nncli.errors import DataError


class LazyImages(Unheld):
    """A part's images (N, C, H, W) as ``fit`` sees them, decoded and scaled on indexing."""

    def __init__(self, files: list[str], encoder: ImageEncoder, size: Any, shape: tuple):
        self.files, self.encoder, self.size = np.array(files, dtype=object), encoder, size
        self.shape = (len(files), *shape)
        self.dtype = np.dtype(encoder.dtype)
        self.held_peak = 0  # the most images one indexing decoded (tests count it)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, rows: Any) -> np.ndarray:
        chosen = [Path(p) for p in np.atleast_1d(self.files[rows])]
        pixels, _ = decode(chosen, self.size, self.encoder.color, False, self.dtype)
        self.held_peak = max(self.held_peak, len(pixels))
        return self.encoder.scale(pixels)


class Checked:
    """What the pass over a folder found: the readable files, their labels, the ones skipped,
    and each readable image's per-channel (count, mean, squared deviations), (N, C) each."""

    def __init__(self, path: Path, size: Any, color: str, skip_bad: bool, dtype: Any, chunk: int):
        listed, labels, self.classes, self.notes = list_images(path)
        kept, self.skipped, stats, shape = [], [], [], None
        for start in range(0, len(listed), chunk):
            files = listed[start : start + chunk]
            pixels, ok = decode(files, size, color, skip_bad, dtype)
            if len(pixels) and shape is not None and pixels.shape[1:] != shape:
                raise DataError(
                    f"the image is {pixels.shape[2]}x{pixels.shape[3]} (H x W) but the first "
                    f"is {shape[1]}x{shape[2]}; set data.image_size: [H, W] to resize them all",
                    where=str(files[int(np.flatnonzero(ok)[0])]),
                )
            shape = shape or (pixels.shape[1:] if len(pixels) else None)
            kept += [start + i for i in np.flatnonzero(ok)]
            self.skipped += [str(files[i]) for i in np.flatnonzero(~ok)]
            flat = pixels.reshape(len(pixels), pixels.shape[1], -1).astype(np.float64)
            mean = flat.mean(axis=2)
            stats.append((mean, ((flat - mean[:, :, None]) ** 2).sum(axis=2), flat.shape[2]))
        self.files = [str(listed[i]) for i in kept]
        self.labels = None if labels is None else [labels[i] for i in kept]
        self.shape = shape
        self.mean = np.concatenate([s[0] for s in stats]) if stats else np.zeros((0, 1))
        self.m2 = np.concatenate([s[1] for s in stats]) if stats else np.zeros((0, 1))
        self.pixels = stats[0][2] if stats else 0  # per image and channel
        self.source = str(path)

    def frame(self) -> ImageFrame:
        """The listing as an ``ImageFrame`` without pixels (the class checks read it)."""
        listing = (self.files, self.labels, np.zeros((0,)), self.source, self.classes)
        return ImageFrame(*listing, [], self.skipped)

    def statistics(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The per-channel mean and standard deviation of images ``rows`` (numpy's ``std``)."""
        count = np.full(self.mean[rows].shape, float(self.pixels))
        total, mean, m2 = merged(count, self.mean[rows], self.m2[rows])
        return mean, np.sqrt(m2 / np.maximum(total, 1))


def load(
    cfg: Any, path: Path, seed: int, loss: str, dtype: str, skip_bad: bool, checks: tuple
) -> Dataset:
    """``data: {kind: images, streaming: true}`` -> a Dataset whose inputs are ``LazyImages``.
    ``checks``: the image loader's class check, augmenter and path resolver."""
    check_classes, augmenter, other = checks
    size = tuple(cfg.image_size) if cfg.image_size else None
    read = (size, cfg.color, skip_bad, np.dtype(dtype), cfg.chunk_rows)
    found = Checked(path, *read)
    if found.skipped and not found.files:
        raise all_skipped(found.skipped, str(path))
    classes = check_classes(found.frame(), path, loss)
    codes = class_codes(found.labels, classes, str(path))
    files, (train, val, test) = split_parts(cfg, len(found.files), seed, codes, "images")
    mean = std = None
    if cfg.normalize == "standard":
        mean, std = found.statistics(train)
        std = np.where(std > 0, std, 1.0)  # a constant channel is only centred
    shape, resize = found.shape, size is not None
    encoder = ImageEncoder(classes, loss, shape[1:], cfg.color, cfg.normalize, mean, std, resize)
    encoder.dtype = dtype
    notes, skipped = list(found.notes), list(found.skipped)

    def part(name: str, rows: np.ndarray) -> Part | None:
        listing, labels = found, codes[rows]
        if files.get(name):
            listing = Checked(other(files[name]), *read)
            notes.extend(listing.notes)
            skipped.extend(listing.skipped)
            if not listing.files:
                raise DataError(f"no {name} images", where=listing.source)
            rows, labels = np.arange(len(listing.files)), encoder.codes(listing.frame())
        elif name != "train" and len(rows) == 0:
            return None
        x = LazyImages([listing.files[i] for i in rows], encoder, size, tuple(shape))
        return Part(x, encoder.encode(labels))

    chosen = {"train": train, "validation": val, "test": test}
    parts = parts_of(**{name: part(name, rows) for name, rows in chosen.items()})
    augment, warnings = augmenter(cfg.augment, encoder), notes + skipped_note(skipped)
    return Dataset(task_for_loss(loss), parts, encoder, str(path), augment, warnings=warnings)
