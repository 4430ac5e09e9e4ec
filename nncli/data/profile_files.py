"""What an image folder, a text file or an arrays file holds, for ``nncli init`` (tables:
``profile.py``).

Images are listed by ``image_files.list_images`` (the loader's own rule: one sub-folder per class)
and up to SAMPLE of them opened for their size and colour mode only (Pillow reads the header, not
the pixels). Text is read by ``text.read_text`` and its distinct characters counted.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from nncli.data.image_files import list_images
from nncli.data.profile import FEW_CLASSES, Column, Profile
from nncli.data.text import read_text, tokens
from nncli.errors import DataError

SAMPLE = 64  # images opened to find the size and colour
LARGEST = 64  # a side above this is resized down for a starter that trains in minutes
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def images(path: Path) -> Profile:
    """A folder with one sub-folder of images per class -> Profile of kind images."""
    files, labels, classes, _ = list_images(path)
    if classes is None:
        raise DataError(
            "the folder holds images but no class sub-folders; nncli init needs one sub-folder "
            "of images per class (cats/*.jpg, dogs/*.jpg)",
            where=str(path),
        )
    if not files:
        raise DataError("the class sub-folders hold no files", where=str(path))
    picked = np.unique(np.linspace(0, len(files) - 1, min(SAMPLE, len(files))).astype(int))
    sizes, modes = Counter(), set()
    for i in picked:  # one header read per sampled file, not per pixel
        size, mode = _header(files[i])
        if size is not None:
            sizes[size] += 1
            modes.add(mode)
    if not sizes:
        raise DataError(f"none of {len(picked)} files looked at is an image", where=str(path))
    height, width = sizes.most_common(1)[0][0]
    scale = min(1.0, LARGEST / max(height, width))
    found = Profile("images", Path(path), rows=len(files), classes=list(classes))
    found.image_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    found.sizes = len(sizes)
    found.color = "grayscale" if modes <= set(GRAY_MODES) else "rgb"
    return found


def _header(path: Path) -> tuple[tuple[int, int] | None, str]:
    """((height, width), mode) of an image file, or (None, "") when Pillow cannot open it."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return (img.size[1], img.size[0]), img.mode
    except Exception:  # not an image, or damaged: the loader names it when it reads every file
        return None, ""


def text(path: Path) -> Profile:
    """A UTF-8 text file -> Profile of kind text (rows: characters)."""
    content = read_text(Path(path)).text
    found = Profile("text", Path(path), rows=len(content))
    found.symbols = len(np.unique(tokens(content, "char")))
    return found


def arrays(path: Path, target: str | None = None) -> Profile:
    """An HDF5 or ``.npz`` file of arrays ``x`` and ``target`` (default ``y``) -> Profile of kind
    arrays: a classifier when y holds one whole number a row of at most FEW_CLASSES values, or
    one-hot rows; else regression. A file that is no arrays file is named for what it is."""
    from nncli.data.array_files import read_arrays
    from nncli.data.arrays import class_text, frame_of
    from nncli.data.formats import foreign
    from nncli.data.labels import label_order

    y_name = target or "y"
    try:
        frame = frame_of(read_arrays(path, ["x", y_name]), "x", y_name, path)
    except DataError as err:
        other = None if "no array" in err.message else foreign(Path(path))
        raise (other or err) from None
    y = frame.y.reshape(len(frame.y), -1)
    one_hot = y.shape[1] > 1 and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
    whole = y.shape[1] == 1 and np.isfinite(y).all() and (y == np.round(y)).all()
    classes = [str(k) for k in range(y.shape[1])] if one_hot else []
    if whole and len(np.unique(y)) <= FEW_CLASSES:
        classes = label_order(np.unique(class_text(y)))
    found = Profile("arrays", Path(path), rows=len(frame), classes=classes)
    found.task = "classification" if classes else "regression"
    found.target = Column(
        y_name,
        "categorical" if classes else "numeric",
        len(classes),
        0,
        True,
        bool(whole),
        classes[:8],
    )
    found.target_given = True  # y unless --target names another: no column to guess
    return found
