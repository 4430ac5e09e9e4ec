"""One column of image paths in a table -> pixels (N, C, H, W) in [0, 1], decoded as an image
folder's files are (``image_files.decode``). A path is relative to the table's folder (the
folder of the file the frame was read from; the current folder for rows handed in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.data.csv_reader import cell_text, describe_rows, source_of
from nncli.data.dataset import state_text
from nncli.data.image_files import CHANNELS, SKIP_HINT, all_skipped, decode
from nncli.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def table_folder(frame: pd.DataFrame) -> Path:
    """The folder of the file ``frame`` was read from (paths in it are relative to it)."""
    path = frame.attrs.get("nncli_path")
    return Path(path).parent if path else Path.cwd()


@dataclass
class ImageColumn:
    """The encoder of one image input: its column, the size every image is resized to, and
    its colour."""

    column: str
    image_size: tuple[int, int]
    color: str

    @classmethod
    def fit(cls, column: str, paths: Any, settings: dict[str, Any]) -> ImageColumn:
        """Nothing to learn from the training rows: the size and colour are the spec's."""
        return cls(column, tuple(int(d) for d in settings["image_size"]), settings["color"])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (CHANNELS[self.color], *self.image_size)

    def files(self, frame: pd.DataFrame) -> list[Path]:
        """Each row's image file; DataError naming the rows whose cell is empty or whose file
        is not there."""
        text, absent = cell_text(frame[self.column], ())
        folder = table_folder(frame)
        files = [folder / str(p) for p in text]
        missing = absent | np.array([not f.is_file() for f in files], dtype=bool)
        if missing.any():
            first = int(np.argmax(missing))
            shown = "an empty cell" if absent[first] else f"no such file {files[first]}"
            raise DataError(
                f"column {self.column!r} names no image on {describe_rows(frame, missing)} "
                f"({shown}); paths are relative to {folder}",
                where=source_of(frame),
                hint=SKIP_HINT,
            )
        return files

    def unreadable(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[Path]]:
        """(bad (N,) bool: rows whose cell is empty, whose file is not there or is no image
        the decoder reads, every row's file)."""
        text, absent = cell_text(frame[self.column], ())
        files = [table_folder(frame) / str(p) for p in text]
        bad = absent | np.array([not f.is_file() for f in files], dtype=bool)
        present = np.flatnonzero(~bad)
        _, ok = decode([files[i] for i in present], self.image_size, self.color, skip_bad=True)
        bad[present[~ok]] = True
        return bad, files

    def encode(self, frame: pd.DataFrame, dtype: Any = np.float32) -> np.ndarray:
        """The frame's images (N, C, H, W) in [0, 1]; DataError at the first unreadable file,
        naming its row (``--skip-bad`` leaves such rows out: ``without_unreadable``)."""
        files = self.files(frame)
        try:
            pixels, _ = decode(files, self.image_size, self.color, dtype=dtype)
        except DataError as exc:
            at = np.array([str(f) == exc.where for f in files], dtype=bool)
            if at.any():
                exc.message += f" (column {self.column!r}, {describe_rows(frame, at)})"
            raise
        return pixels

    def described(self) -> dict[str, Any]:
        """What a request's column is (``Encoder.row_columns``): image paths, of what size."""
        return {"type": "image", "image_size": list(self.image_size), "color": self.color}

    def to_state(self) -> dict[str, Any]:
        return {
            "type": "image",
            "column": self.column,
            "image_size": np.array(self.image_size, dtype=np.int64),
            "color": self.color,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImageColumn:
        size = tuple(int(d) for d in np.asarray(state["image_size"]).tolist())
        return cls(state_text(state["column"]), size, state_text(state["color"]))


SHOWN = 3  # the files a --skip-bad warning names


def without_unreadable(
    frame: pd.DataFrame, columns: list[ImageColumn]
) -> tuple[pd.DataFrame, list[str]]:
    """``--skip-bad`` for a table's image-path columns: the rows whose image (in any of
    ``columns``) is missing or unreadable left out -> (the kept rows, their index labels kept so
    messages still name the file's lines; the warning, or none). DataError when no row is left."""
    bad = np.zeros(len(frame), dtype=bool)
    files: list[Path] = []
    for column in columns:
        unread, paths = column.unreadable(frame)
        files += [paths[i] for i in np.flatnonzero(unread & ~bad)]
        bad |= unread
    if not bad.any():
        return frame, []
    if bad.all():
        raise all_skipped([str(f) for f in files], source_of(frame))
    word = "row" if bad.sum() == 1 else "rows"
    first = ", ".join(str(f) for f in files[:SHOWN]) + (", ..." if len(files) > SHOWN else "")
    note = (
        f"skipped {int(bad.sum())} {word} whose image is missing or unreadable (--skip-bad): "
        f"{describe_rows(frame, bad)}; the files: {first}"
    )
    return frame[~bad], [note]
