"""The one seam every table kind reads through: a file -> a frame, the reader chosen by the
file's suffix (``READERS``), so ``csv``/``table``, ``sequences`` and ``timeseries`` read every
format, and ``predict``, ``evaluate`` and ``init`` take every one.

A reader returns the frame the CSV reader would give for the same table: text cells (object
dtype, NaN where missing) and, with ``numbers``, each column whose every value is a finite number
as numbers (float64 or int64), so a table trains to the same weights whatever file it came in.
``.csv``, ``.tsv``, ``.txt`` and any suffix no reader claims go to the CSV reader, as always.
The formats themselves live in ``table_files.py``; a new one is one function registered there
with ``@reads(".suffix", name=...)``, and ``writes`` for ``predict --output``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.bounds.files import require_regular
from nncli.data import csv_reader
from nncli.errors import DataError, SpecError

if TYPE_CHECKING:
    import pandas as pd

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
INSTALL = 'pip install -e ".[formats]"'
NESTED = (list, dict, np.ndarray)  # JSON arrays and objects, Arrow lists and structs: no cell


@dataclass(frozen=True)
class Format:
    """A table format: ``read(path, sheet)`` -> a plain frame (any dtypes; checked and made
    into cells here); ``write(frame)`` -> the file's bytes; ``needs``: the libraries it
    imports (a missing one is named with the install line); ``row_word``/``first_row``: how
    messages number its rows (a sheet's first data row is row 2, under its header)."""

    name: str
    read: Callable[[Path, str | None], pd.DataFrame]
    write: Callable[[pd.DataFrame], bytes] | None = None
    needs: tuple[str, ...] = ()
    row_word: str = "row"
    first_row: int = 1


READERS: dict[str, Format] = {}  # suffix (lower case, with its dot) -> its format


def reads(*suffixes: str, **fields: Any) -> Callable[[Callable], Callable]:
    """Register the decorated ``read(path, sheet)`` as the format ``Format(read=..., **fields)``
    of each suffix."""

    def register(read: Callable) -> Callable:
        found = Format(read=read, **fields)
        for suffix in suffixes:
            READERS[suffix.lower()] = found
        return read

    return register


def format_of(path: Path) -> Format | None:
    """The format a file's suffix names, or None for CSV (``.csv``, ``.tsv``, any other)."""
    import nncli.data.table_files  # noqa: F401  (registers the formats)

    return READERS.get(Path(path).suffix.lower())


def read_table(
    path: Path,
    na_values: Sequence[str] = (),
    numbers: bool = False,
    delimiter: str = ",",
    sheet: str | None = None,
) -> pd.DataFrame:
    """A table file -> frame of cells as ``csv_reader.read_table`` gives them (its arguments);
    ``sheet``: the workbook sheet to read (``data.sheet``; the first when None)."""
    path = Path(path)
    found = format_of(path)
    if found is None:
        return csv_reader.read_table(path, na_values, numbers, delimiter)
    require_regular(path, DataError)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    require_libraries(found, path)
    frame = found.read(path, sheet)
    frame = cells(frame, path, [str(v) for v in na_values], numbers)
    frame.attrs.update(nncli_path=str(path), nncli_row_word=found.row_word)
    frame.attrs["nncli_first_row"] = found.first_row
    return frame


def require_libraries(found: Format, path: Path) -> None:
    """SpecError (exit 2) with the install line when a library the format needs is missing."""
    missing = [name for name in found.needs if importlib.util.find_spec(name) is None]
    if missing:
        raise SpecError(
            f"reading and writing {found.name} needs {' and '.join(missing)}: {INSTALL}",
            where=str(path),
        )


def cells(frame: pd.DataFrame, path: Path, na_values: list[str], numbers: bool) -> pd.DataFrame:
    """A frame as a format's library gives it -> the CSV reader's cells: names stripped,
    unique and at most ``column_limit()``, rows present; a column of finite numbers stays
    numbers (with ``numbers``), every other becomes text, missing (None, NaN, "" and the
    ``na_values``) as NaN; a cell holding a list or a mapping is refused with its row."""
    import pandas as pd

    header = [str(name).strip() for name in frame.columns]
    check_header(header, path)
    if len(frame) == 0:
        raise DataError("the table has a header but no rows", where=str(path))
    numeric_na = pd.to_numeric(pd.Series(na_values, dtype=object), errors="coerce").to_numpy()
    columns = {}
    for name, (_, column) in zip(header, frame.items(), strict=True):
        column = column.reset_index(drop=True)
        if column.dtype.kind in "iuf":  # numpy's or pandas' nullable (Int64: NA as NaN here)
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            clean = np.isfinite(values).all() and not np.isin(values, numeric_na).any()
            if numbers and clean:
                whole = column.dtype.kind in "iu"
                columns[name] = column.astype(np.int64) if whole else pd.Series(values)
                continue
            column = column.mask(np.isin(values, numeric_na))
        columns[name] = text_cells(column, name, path, na_values)
    return pd.DataFrame(columns)


def check_header(header: list[str], path: Path) -> None:
    """DataError for a header of more than ``column_limit()`` columns, or a name empty or twice."""
    csv_reader.check_width(header, path)
    seen: set[str] = set()
    for i, name in enumerate(header):
        if not name or name in ("None", "nan"):
            raise DataError(f"column {i + 1} of the header has no name", where=str(path))
        if name in seen:
            raise DataError(f"column {name!r} appears twice in the header", where=str(path))
        seen.add(name)


def text_cells(column: pd.Series, name: str, path: Path, na_values: list[str]) -> pd.Series:
    """A column -> object text cells (numbers spelled as Python spells them: 5.1, 3, True),
    NaN where missing; DataError naming the first row holding a list or a mapping."""
    import pandas as pd

    missing = np.array(column.isna(), dtype=bool)  # a copy: pandas hands out read-only views
    found = pd.api.types.infer_dtype(column, skipna=True)
    if found.startswith("mixed") and found != "mixed-integer-float":  # lists, mappings...
        nested = np.asarray(column.map(lambda v: isinstance(v, NESTED)), dtype=bool)
        if nested.any():
            row = int(np.flatnonzero(nested)[0])
            raise DataError(
                f"row {row + 1}, column {name!r}: expected a number or text, found a "
                f"{type(column.iloc[row]).__name__}",
                where=str(path),
            )
    text = np.array(column.astype(object).astype(str), dtype=object)
    missing |= (text == "") | np.isin(text, na_values)
    text[missing] = np.nan
    return pd.Series(text, dtype=object, name=name)


def writer_of(path: Path) -> Format | None:
    """The format ``predict --output`` writes for ``path``'s suffix: None for CSV (``.csv``,
    ``.tsv``, ``.txt``); SpecError (exit 2) naming the suffixes for any other."""
    suffix = Path(path).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return None
    found = format_of(path)
    if found is None or found.write is None:
        known = [*CSV_SUFFIXES, *(s for s, f in sorted(READERS.items()) if f.write)]
        raise SpecError(
            f"expected a table file's suffix ({', '.join(known)}), got {suffix or 'none'!r}",
            field="--output",
        )
    require_libraries(found, path)
    return found


def table_bytes(frame: pd.DataFrame, path: Path) -> bytes:
    """A table as the bytes of the file ``path``'s suffix names (CSV's text for CSV's, tab
    separated for ``.tsv``)."""
    found = writer_of(path)
    if found is None:
        sep = "\t" if Path(path).suffix.lower() == ".tsv" else ","
        return frame.to_csv(index=False, lineterminator="\n", sep=sep).encode("utf-8")
    return found.write(frame.reset_index(drop=True))
