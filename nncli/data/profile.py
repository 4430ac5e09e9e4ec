"""What a data file or folder holds, for ``nncli init``: its kind, columns, target and task.

``profile(path, target)`` -> ``Profile``. The room's own rules decide: the CSV reader (its
delimiter hint, header and cell checks), the rule of ``table.too_distinct``, the label order of
``labels.label_order``, the image listing of ``image_files``. A folder is an image folder (one
sub-folder per class); a table is a grouped-sequence CSV when an id column runs in blocks with an
order column that restarts in each, a time series when a time-like first column rises row after
row and every other column is a number, and a plain table otherwise; any other text file is text.
Images and text: ``profile_files.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nncli.bounds.files import require_regular
from nncli.data.csv_reader import cell_numbers, cell_text
from nncli.data.formats import foreign
from nncli.data.header import DELIMITERS, check_names, sniff_delimiter
from nncli.data.labels import label_order
from nncli.data.readers import format_of, read_table
from nncli.data.table import ID_ROWS, mostly_numbers, stray_text, too_distinct
from nncli.errors import DataError, SpecError

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".tsv", ".tab")
ARRAY_SUFFIXES = (".h5", ".hdf5", ".hdf", ".npz")  # kind: arrays (array_files.py reads them)
FEW_CLASSES = 20  # a number target of at most this many whole values (1 per 5 rows) is a class
MIN_SEQUENCES = 8  # an id column with fewer blocks is a category, not sequences
TIME_NAME = re.compile(r"(^|_)(t|time|date|datetime|timestamp|year|month|week|day|hour|step)($|_)")
DATE_LIKE = re.compile(r"^\d{4}[-/.]\d{1,2}")
SNIFF_LINES = 20
# a text column read as an input of its own (``data.inputs``) rather than one-hot: image paths
# (at least FREE_SHARE of its cells end so), or free text: mostly distinct (``too_distinct``)
# strings of TEXT_CHARS characters and TEXT_WORDS words on average
FREE = ("text", "image")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
FREE_SHARE, TEXT_CHARS, TEXT_WORDS = 0.9, 30, 4


@dataclass
class Column:
    """One column of a table as ``nncli init`` sees it."""

    name: str
    role: str  # "numeric" | "categorical" (text, one-hot) | "id" (left out) | "text" | "image"
    distinct: int
    missing: int
    numbers: bool  # every present cell a number
    integer: bool  # numbers, each a whole number
    values: list[str]  # the distinct values as text, in label order (at most SHOW_VALUES)


@dataclass
class Profile:
    """What ``nncli init`` found: the data kind (a ``KINDS`` key) and what its starter needs."""

    kind: str
    path: Path
    rows: int = 0  # table rows, images or characters
    delimiter: str = ","
    columns: list[Column] = field(default_factory=list)  # every column but the target
    target: Column | None = None
    target_given: bool = False  # --target, else the last column
    task: str = "classification"
    classes: list[str] = field(default_factory=list)  # classification labels, in output order
    id_column: str | None = None  # sequences
    order_column: str | None = None  # sequences
    target_per: str = "sequence"  # sequences: constant within each sequence, or per step
    sequences: int = 0
    longest: int = 0
    time_column: str | None = None  # timeseries
    cycle: int | None = None  # timeseries: the lag of the target's first autocorrelation peak
    image_size: tuple[int, int] | None = None  # images: [H, W] to read them at
    sizes: int = 0  # images: distinct sizes among those looked at
    color: str = "grayscale"
    symbols: int = 0  # text: distinct characters
    split_column: str | None = None  # csv: a column named split of train / validation / test
    split_counts: dict[str, int] = field(default_factory=dict)  # its rows per part
    na_values: list[str] = field(default_factory=list)  # placeholders ("?") in number columns

    @property
    def features(self) -> list[Column]:
        """The columns the model reads (ids, the sequence id and order, the time left out)."""
        return [
            c
            for c in self.columns
            if c.role not in FREE + ("id",) and c.name not in self._structure
        ]

    @property
    def free_columns(self) -> list[Column]:
        """Free text and image paths: an input each (``data.inputs``), not one-hot."""
        return [c for c in self.columns if c.role in FREE and c.name not in self._structure]

    @property
    def left_out(self) -> list[Column]:
        """The id-like columns a spec lists in ``data.exclude``."""
        return [c for c in self.columns if c.role == "id" and c.name not in self._structure]

    @property
    def _structure(self) -> tuple[str | None, ...]:
        return (self.id_column, self.order_column, self.time_column, self.split_column)

    @property
    def missing(self) -> int:
        """Empty cells in the features and the target."""
        return sum(c.missing for c in [*self.features, *([self.target] if self.target else [])])


def profile(path: Path, target: str | None = None) -> Profile:
    """A data file or folder -> Profile; DataError when it cannot be read, SpecError for a
    ``target`` that is not a column (with a did-you-mean) or given for images or text."""
    from nncli.data import profile_files

    path = Path(path)
    if not path.exists():
        from nncli.engine.registry import did_you_mean  # only on this error path

        names = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
        raise DataError(f"no such file or folder: {path}{did_you_mean(path.name, names)}")
    require_regular(path, DataError, folder=True)  # sniffing a named pipe would block
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return profile_files.arrays(path, target)
    if path.is_dir() or not looks_like_table(path):
        if target is not None:
            what = (
                "an image folder's classes are its sub-folders"
                if path.is_dir()
                else "a text model predicts each next character"
            )
            raise SpecError(f"{what}; leave --target out", field="--target", where=str(path))
        return profile_files.images(path) if path.is_dir() else profile_files.text(path)
    return table(path, target)


def looks_like_table(path: Path) -> bool:
    """A .csv/.tsv/.tab file, or one whose first lines all hold one delimiter as often."""
    if path.suffix.lower() in TABLE_SUFFIXES or format_of(path) is not None:
        return True  # Parquet, Feather, JSON, Excel: readers.py
    from nncli.data.image_files import looks_like_image

    if looks_like_image(path):
        raise DataError(
            "one image; nncli init takes a folder with one sub-folder of images per class",
            where=str(path),
        )
    other = foreign(path)  # Parquet, Excel, gzip...: named, not read as text
    if other is not None:
        raise other
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = [line for _, line in zip(range(SNIFF_LINES), file, strict=False)]
    except OSError as exc:
        raise DataError(f"cannot read it ({exc.strerror})", where=str(path)) from None
    lines = [line for line in lines if line.strip()]
    counts = {sep: {line.count(sep) for line in lines} for sep in DELIMITERS + (",",)}
    return len(lines) > 1 and any(len(c) == 1 and min(c) > 0 for c in counts.values())


# -- tables --------------------------------------------------------------------------------------


def table(path: Path, target: str | None) -> Profile:
    """A table file (CSV or another format) -> Profile of kind sequences, timeseries or csv."""
    delimiter = ","
    if format_of(path) is None:  # CSV: the delimiter its header line holds
        with open(path, encoding="utf-8-sig", errors="replace") as file:
            delimiter = sniff_delimiter(file.readline())
    frame = read_table(path, numbers=True, delimiter=delimiter)
    header = list(frame.columns)
    if len(header) < 2:
        raise DataError(
            f"the file has one column ({header[0]!r}); a table needs features and a target",
            where=str(path),
        )
    if target is not None:
        check_names([target], "--target", header, path.name, error=SpecError)
    split, counts = split_column(frame, [n for n in header if n != target])
    name = target or [n for n in header if n != split][-1]
    na_values = placeholders(frame)
    columns = {n: column(frame, n, na_values=na_values) for n in header if n != name}
    target_column = column(frame, name, None, na_values, target=True)  # every class, in order
    found = Profile("csv", path, rows=len(frame), delimiter=delimiter, target=target_column)
    found.na_values = na_values
    found.split_column, found.split_counts = split, counts
    found.columns, found.target_given = list(columns.values()), target is not None
    found.task = task_of(found.target, len(frame))
    if found.task == "classification":
        found.classes = found.target.values
    if not _sequences(frame, found) and found.task == "regression":
        _timeseries(frame, found)
    return found


SHOW_VALUES = 1000  # distinct values a Column keeps (classes are fewer)


def split_column(frame: pd.DataFrame, names: list[str]) -> tuple[str | None, dict[str, int]]:
    """(a column named ``split`` in any case whose every cell is train, validation or test in
    any case, with some train rows; its rows per part), or (None, {})."""
    from nncli.data.split import MARKS

    for name in names:
        if name.lower() != "split":
            continue
        marks = np.char.lower(cell_text(frame[name])[0].astype(str))
        counts = {mark: int((marks == mark).sum()) for mark in MARKS}
        if sum(counts.values()) == len(marks) and counts["train"]:
            return name, counts
    return None, {}


def free_role(text: np.ndarray) -> str | None:
    """ "image" when most present cells are image file paths, "text" for free text (long
    strings of several words, mostly distinct), else None."""
    if not len(text):
        return None
    lower = np.char.lower(text.astype(str))
    paths = np.any([np.char.endswith(lower, suffix) for suffix in IMAGE_SUFFIXES], axis=0)
    if np.mean(paths) >= FREE_SHARE:
        return "image"
    words = np.char.count(np.char.strip(lower), " ") + 1
    long = np.mean(np.char.str_len(lower)) >= TEXT_CHARS and np.mean(words) >= TEXT_WORDS
    distinct = too_distinct(len(np.unique(lower)), len(lower))
    return "text" if long and distinct else None


def column(
    frame: pd.DataFrame,
    name: str,
    keep: int | None = SHOW_VALUES,
    na_values: Sequence[str] = (),
    target: bool = False,
) -> Column:
    """A column's role: numeric (every present cell a number), id (text by ``too_distinct``, or
    whole numbers counting up one by one: a row number), categorical (other text); ``keep``: how
    many of its distinct values to keep as text (None: all); ``na_values`` are missing. Numbers
    with a few stray text cells stop with the loader's error naming them
    (``table.stray_text``), never become text."""
    values, missing, bad = cell_numbers(frame[name], na_values)
    stray = stray_text(frame, name, missing, bad, na_values, feature=not target)
    if stray is not None:
        raise stray
    present = values[~missing]
    if not bad.any() and len(present):
        distinct = np.unique(present)
        integer = bool(np.all(distinct == np.round(distinct)))
        counting = integer and len(distinct) == len(present) > ID_ROWS
        counting = counting and bool(np.all(np.diff(present) == 1))
        shown = label_order(str(int(v)) if integer else repr(float(v)) for v in distinct[:keep])
        role = "id" if counting else "numeric"
        return Column(name, role, len(distinct), int(missing.sum()), True, integer, shown)
    text = cell_text(frame[name], na_values)[0][~missing]
    distinct = np.unique(text.astype(str))
    role = "id" if too_distinct(len(distinct), len(text)) else "categorical"
    role = free_role(text.astype(str)) or role
    shown = label_order(distinct[:keep])
    return Column(name, role, len(distinct), int(missing.sum()), False, False, shown)


PLACEHOLDERS = {"?", "-", "--", ".", "na", "n/a", "#n/a", "nan", "null", "none", "nil", "missing"}


def placeholders(frame: pd.DataFrame) -> list[str]:
    """The cells that stand for a missing number ("?", "NA", "-", ...) in columns of numbers
    (by ``table.mostly_numbers``), as written, for the spec's ``data.na_values``; other text
    among numbers is left for ``column`` to name."""
    found: set[str] = set()
    for name in frame.columns:
        _, missing, bad = cell_numbers(frame[name])
        if mostly_numbers(missing, bad):
            stray = set(cell_text(frame[name])[0][bad])
            if all(text.lower() in PLACEHOLDERS for text in stray):
                found |= stray
    return sorted(found)


def task_of(target: Column, rows: int) -> str:
    """classification for text, or for few whole numbers (at most FEW_CLASSES, and at most one
    per 5 rows: 0/1 flags, digits 0-9); regression for other numbers."""
    if target.role != "numeric":
        return "classification"
    few = target.distinct <= min(FEW_CLASSES, max(2, rows // 5))
    return "classification" if target.integer and few else "regression"


def _sequences(frame: pd.DataFrame, found: Profile) -> bool:
    """Sequences: an id column (no empty cell) in at least MIN_SEQUENCES contiguous blocks of
    2+ rows, and a number column that rises within each block and starts again at the next."""
    import pandas as pd

    for id_col in found.columns:
        if id_col.missing or not MIN_SEQUENCES <= id_col.distinct <= found.rows // 2:
            continue
        codes = np.asarray(pd.factorize(frame[id_col.name])[0])
        same = codes[1:] == codes[:-1]
        if int((~same).sum()) + 1 != id_col.distinct:  # each id in one block of rows
            continue
        for order in found.columns:
            if order is id_col or order.role == "categorical" or order.missing:
                continue
            steps = np.diff(cell_numbers(frame[order.name])[0])
            if (steps[same] > 0).all() and (steps[~same] <= 0).any():
                found.kind, found.id_column = "sequences", id_col.name
                found.order_column = order.name
                found.sequences = id_col.distinct
                found.longest = int(np.bincount(codes).max())
                target = cell_text(frame[found.target.name])[0]
                constant = (target[1:][same] == target[:-1][same]).all()
                found.target_per = "sequence" if constant else "step"
                return True
    return False


def _timeseries(frame: pd.DataFrame, found: Profile) -> bool:
    """A time series: the first column has a time-like name or holds dates, rises row after row,
    and every other column (the target too) is a number with no empty cell."""
    first = found.columns[0]
    others = [c for c in found.columns[1:] if c.role != "id"] + [found.target]
    if any(c.role != "numeric" or c.missing for c in others) or first.missing:
        return False
    text = cell_text(frame[first.name])[0]
    if first.numbers:
        times = cell_numbers(frame[first.name])[0]
    elif DATE_LIKE.match(str(text[0])):
        times = _dates(text)
    else:
        return False
    named = TIME_NAME.search(first.name.lower()) is not None
    rising = times is not None and bool(np.all(np.diff(times) > 0))
    if not (rising and (named or not first.numbers)):
        return False
    found.kind, found.time_column = "timeseries", first.name
    found.cycle = cycle(cell_numbers(frame[found.target.name])[0])
    return True


def _dates(text: np.ndarray) -> np.ndarray | None:
    """Text cells -> seconds since the epoch (float64), or None when any is not a date."""
    import warnings

    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' note that it infers the format
        times = pd.to_datetime(pd.Series(text, dtype=object), errors="coerce")
    if times.isna().any():
        return None
    return times.astype("int64").to_numpy(dtype=np.float64) / 1e9


def cycle(values: np.ndarray) -> int | None:
    """The lag of the autocorrelation's highest peak after its first dip below zero, when that
    peak is above 0.2: a series' cycle (11 for yearly sunspots); None without one."""
    y = np.asarray(values, dtype=np.float64) - np.mean(values)
    n = len(y)
    if n < 8 or not np.any(y):
        return None
    spectrum = np.fft.rfft(y, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: n // 2]
    acf /= acf[0]
    below = np.flatnonzero(acf < 0)
    if not len(below):
        return None
    rest = acf[below[0] :]
    peak = below[0] + int(np.argmax(rest))
    return int(peak) if acf[peak] > 0.2 else None
