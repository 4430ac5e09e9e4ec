"""Image files -> pixels: find the images of a folder (one sub-folder per class) and decode them.

Pillow reads PNG, JPEG, BMP and GIF (the first frame); every image is converted to grayscale (L)
or RGB, resized to ``size`` (H, W) when given, and scaled to [0, 1] (16-bit grayscale by 65535).
Out: float32 (N, C, H, W), C = 1 or 3. A file Pillow cannot read (not an image, truncated,
corrupt, over Pillow's decompression-bomb limit, which stays on; an entry that is no regular
file: a named pipe, a device, a symbolic link loop or one pointing nowhere) is a DataError
naming it, or, with ``skip_bad``, left out and counted. Hidden files (a leading dot) are never
read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nncli.bounds.files import require_regular
from nncli.data.labels import label_order
from nncli.errors import DataError, OptionHint

FORMATS = ("PNG", "JPEG", "BMP", "GIF")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MODES = {"grayscale": "L", "rgb": "RGB"}
CHANNELS = {"grayscale": 1, "rgb": 3}
SKIP_HINT = OptionHint("--skip-bad", "--skip-bad leaves out unreadable images")
NOT_AN_IMAGE = f"not a {', '.join(FORMATS[:-1])} or {FORMATS[-1]} image"


@dataclass
class ImageFrame:
    """Images read from a folder or from files: one entry per readable file, in order.

    files: the paths as given (the folder joined with the file's place in it). labels: the class
    folder of each file, None for an unlabelled folder or a single file. pixels: float32
    (N, C, H, W) in [0, 1]. skipped: unreadable files left out (``skip_bad``). warnings: images
    beside the class folders, which are not read.
    Columns ``file`` (and ``label``) read like a pandas frame's, for ``--keep``.
    """

    files: list[str]
    labels: list[str] | None
    pixels: np.ndarray
    source: str
    classes: list[str] | None = None  # every class folder, sorted, empty ones too
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return ["file"] + ([] if self.labels is None else ["label"])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, name: str) -> Any:
        import pandas as pd

        if name not in self.columns:
            raise KeyError(name)
        values = self.files if name == "file" else self.labels
        return pd.Series(np.array(values, dtype=object), name=name)


def _visible(folder: Path) -> list[Path]:
    """A folder's entries without hidden ones (.DS_Store, .git), sorted by name."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot list the folder ({exc.strerror})", where=str(folder)) from None


def list_images(path: Path) -> tuple[list[Path], list[str] | None, list[str] | None, list[str]]:
    """A folder or an image file -> (files, each file's class, the classes, warnings); the
    classes are None for an unlabelled folder or a file.

    A folder with sub-folders is labelled: each sub-folder is a class and holds its images (their
    own sub-folders are not read). A folder without sub-folders holds unlabelled images. Every
    entry that is not a folder is an image to read, so one that cannot be (a named pipe, a link
    loop) is reported as unreadable rather than passed over in silence.
    """
    path = Path(path)
    if not path.is_dir():
        if not (path.exists() or path.is_symlink()):
            raise DataError(f"no such image file or folder: {path}")
        require_regular(path, DataError)
        return [path], None, None, []
    entries = _visible(path)
    folders = [p for p in entries if p.is_dir()]
    if not folders:
        files = entries
        if not files:
            raise DataError("the folder holds no images and no class sub-folders", where=str(path))
        return files, None, None, []
    stray = [p for p in entries if p.is_file() and p.suffix.lower() in EXTENSIONS]
    notes = []
    if stray:
        notes.append(
            f"{path}: ignored {len(stray)} image{'s' * (len(stray) > 1)} beside the class "
            f"folders (e.g. {stray[0].name}); only the sub-folders' images are read"
        )
    by_name = {p.name: p for p in folders}
    files, labels, classes = [], [], label_order(by_name)
    for label in classes:  # one step per class folder, not per image
        inside = [p for p in _visible(by_name[label]) if not p.is_dir()]
        files += inside
        labels += [label] * len(inside)
    return files, labels, classes, notes


MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")  # how the FORMATS files start


def looks_like_image(path: Path) -> bool:
    """True for a file named or starting like a PNG, JPEG, GIF or BMP image."""
    if Path(path).suffix.lower() in EXTENSIONS:
        return True
    try:
        with open(path, "rb") as file:
            return file.read(4).startswith(MAGIC)
    except OSError:
        return False


def read_image(
    path: Path, size: tuple[int, int] | None, color: str, dtype: Any = np.float32
) -> np.ndarray:
    """One image file -> (H, W, C) in [0, 1], float32 unless ``dtype`` says float64 (the pixel
    values are then divided in float64, never rounded through float32); DataError naming the
    file if unreadable."""
    require_regular(path, DataError, hint=SKIP_HINT)  # a named pipe would block the decoder
    return opened(path, str(path), size, color, dtype)


def read_image_bytes(
    data: bytes, name: str, size: tuple[int, int] | None, color: str, dtype: Any = np.float32
) -> np.ndarray:
    """An image file's bytes (an upload) -> (H, W, C) in [0, 1], as ``read_image`` reads the
    file; DataError naming ``name`` if they are no readable image."""
    import io

    return opened(io.BytesIO(data), name, size, color, dtype)


def opened(
    source: Any, where: str, size: tuple[int, int] | None, color: str, dtype: Any
) -> np.ndarray:
    """A path or a binary file object -> (H, W, C) in [0, 1]; every decoder failure a
    DataError at ``where``."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; both are refusals here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=FORMATS) as img:
                return _pixels(img, size, color, dtype)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(
            f"refused as a possible decompression bomb ({exc})", where=where, hint=SKIP_HINT
        ) from None
    except Image.UnidentifiedImageError:
        raise DataError(NOT_AN_IMAGE, where=where, hint=SKIP_HINT) from None
    except FileNotFoundError:
        raise DataError("the image file disappeared while reading", where=where) from None
    except MemoryError:
        raise DataError("the image is too large to decode", where=where) from None
    except Exception as exc:  # any decoder failure on a damaged file: truncated, bad data, ...
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DataError(
            f"cannot read the image, it is truncated or corrupt ({reason})",
            where=where,
            hint=SKIP_HINT,
        ) from None


def _pixels(img: Any, size: tuple[int, int] | None, color: str, dtype: Any) -> np.ndarray:
    """An open Pillow image (the first frame of a GIF) -> (H, W, C) in [0, 1] of ``dtype``."""
    from PIL import Image

    if size is not None and img.format == "JPEG":
        img.draft(MODES[color], (size[1], size[0]))  # let the decoder shrink large photos
    wide = img.mode in ("I", "F") or img.mode.startswith("I;16")  # 16-bit grayscale PNG
    img = img.convert("F") if wide else img.convert(MODES[color])
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    values = np.asarray(img, dtype=dtype)
    values = np.clip(values / 65535.0, 0.0, 1.0) if wide else values / 255.0
    if values.ndim == 2:
        values = values[:, :, None]
    if values.shape[2] != CHANNELS[color]:  # a wide grayscale image asked for as RGB
        values = np.repeat(values, CHANNELS[color], axis=2)
    return values.astype(dtype, copy=False)


def decode(
    files: list[Path],
    size: tuple[int, int] | None,
    color: str,
    skip_bad: bool = False,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Files -> (pixels (n, C, H, W) in [0, 1] of the readable ones, in ``dtype``, ok (N,) bool).

    Without ``size`` every image must have the first one's size. An unreadable file raises,
    or with ``skip_bad`` gets ok False.
    """
    ok = np.ones(len(files), dtype=bool)
    images: list[np.ndarray] = []
    first: Path | None = None
    for i, path in enumerate(files):  # one Pillow decode per file; the array work is batched
        try:
            values = read_image(path, size, color, dtype)
        except DataError:
            if not skip_bad:
                raise
            ok[i] = False
            continue
        if first is None:
            first = path
        elif values.shape != images[0].shape:
            raise DataError(
                f"the image is {values.shape[0]}x{values.shape[1]} (H x W) but {first} is "
                f"{images[0].shape[0]}x{images[0].shape[1]}; set data.image_size: [H, W] to "
                "resize them all",
                where=str(path),
            )
        images.append(values)
    if not images:
        h, w = size or (0, 0)
        return np.zeros((0, CHANNELS[color], h, w), dtype=dtype), ok
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)), ok


def skipped_note(skipped: list[str]) -> list[str]:
    """The warning for files left out by ``skip_bad`` (``skipped``: their paths), or none."""
    if not skipped:
        return []
    word = "image" if len(skipped) == 1 else "images"
    return [f"skipped {len(skipped)} unreadable {word} (the first: {skipped[0]})"]


def all_skipped(skipped: list[str], source: str) -> DataError:
    """The error for a ``--skip-bad`` read that left out every image it found."""
    word = "image" if len(skipped) == 1 else f"all {len(skipped)} images"
    return DataError(
        f"--skip-bad left out every image: {word} unreadable (the first: {skipped[0]}), "
        "so there is nothing to use",
        where=source,
    )


def read_frame(
    path: Path,
    size: tuple[int, int] | None,
    color: str,
    skip_bad: bool = False,
    dtype: Any = np.float32,
) -> ImageFrame:
    """A folder (labelled or not) or one image file -> ImageFrame, pixels in ``dtype``."""
    files, labels, classes, notes = list_images(Path(path))
    pixels, ok = decode(files, size, color, skip_bad, dtype)
    kept = np.flatnonzero(ok)
    return ImageFrame(
        files=[str(files[i]) for i in kept],
        labels=None if labels is None else [labels[i] for i in kept],
        pixels=pixels,
        source=str(path),
        classes=classes,
        warnings=notes,
        skipped=[str(files[i]) for i in np.flatnonzero(~ok)],
    )
