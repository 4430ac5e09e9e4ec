"""CSV files -> frames of text cells, and the cell helpers every table loader shares.

Reading checks every record first (ragged rows, bad bytes, empty files) with the exact line.
Rows in messages are line numbers as an editor shows them: the header is line 1, the first data
row line 2 (blank lines and line breaks inside quoted fields count as they do in the file).
pandas is imported inside the functions that need it, so ``import nncli.data`` stays quick.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

SHOW = 5  # rows or values a message lists before "..."


# -- reading -------------------------------------------------------------------------------------


def read_table(path: Path, na_values: Sequence[str] = ()) -> pd.DataFrame:
    """CSV file -> frame of text cells (object dtype, the file's row order); missing cells are NaN.

    Only empty fields and the ``na_values`` strings are missing, so "NA" in a text column is data.
    """
    import pandas as pd

    path = Path(path)
    # pandas pads a short row with missing values without a word; the csv pass catches ragged
    # rows (and bad bytes, empty files) first, with the exact line.
    header = _check_records(path)
    try:
        frame = pd.read_csv(
            path,
            dtype=object,
            keep_default_na=False,
            na_values=["", *na_values],
            encoding="utf-8-sig",
            index_col=False,
        )
    except (OSError, ValueError) as err:  # pandas' ParserError is a ValueError
        raise DataError(f"cannot read it as CSV: {err}", where=str(path)) from err
    frame.columns = header
    frame.attrs["nncli_path"] = str(path)
    return frame


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each non-blank record of a CSV file, the header first."""
    reader: Any = None
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file)
            line = 1
            for fields in reader:
                if fields:
                    yield line, fields
                line = reader.line_num + 1
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except csv.Error as err:
        raise DataError(f"line {reader.line_num}: {err}", where=str(path)) from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None


def _check_records(path: Path) -> list[str]:
    """The header's column names, after checking every record has one field per column."""
    records = _records(path)
    first = next(records, None)
    if first is None:
        raise DataError("the file is empty; expected a header row and data rows", where=str(path))
    header = [name.strip() for name in first[1]]
    for i, name in enumerate(header):
        if not name:
            raise DataError(f"column {i + 1} of the header has no name", where=str(path))
        if name in header[:i]:
            raise DataError(f"column {name!r} appears twice in the header", where=str(path))
    n_rows = 0
    for line, fields in records:
        n_rows += 1
        if len(fields) != len(header):
            raise DataError(
                f"line {line} has {len(fields)} fields, expected {len(header)} like the header",
                where=str(path),
            )
    if n_rows == 0:
        raise DataError("the file has a header but no data rows", where=str(path))
    return header


def _not_utf8(path: Path) -> DataError:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        position = 0
    except UnicodeDecodeError as err:
        position = err.start
    line = raw.count(b"\n", 0, position) + 1
    return DataError(
        f"line {line}: byte 0x{raw[position]:02x} is not UTF-8 text; save the file as UTF-8",
        where=str(path),
    )


def record_lines(path: Path) -> np.ndarray:
    """Line number where each data record of ``path`` starts (the header is line 1)."""
    return np.array([line for line, _ in _records(Path(path))][1:], dtype=np.int64)


# -- cells ---------------------------------------------------------------------------------------


def cell_text(column: pd.Series, na_values: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """A column -> (stripped text, object (N,); missing, bool (N,)). Missing cells hold ""."""
    missing = np.array(column.isna(), dtype=bool)  # copies: pandas hands out read-only views
    text = np.array(column.astype(str).str.strip(), dtype=object)
    text[missing] = ""
    missing |= (text == "") | np.isin(text, list(na_values))
    text[missing] = ""
    return text, missing


def parse_numbers(text: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Text (N,) -> (float64 (N,), NaN where missing; bad (N,): present but not a finite number)."""
    import pandas as pd

    values = np.array(pd.to_numeric(pd.Series(text, dtype=object), errors="coerce"), dtype=float)
    bad = ~missing & ~np.isfinite(values)
    values[missing] = np.nan
    return values, bad


def all_numbers(text: np.ndarray) -> bool:
    """True when every (present) text value is a finite number."""
    return not parse_numbers(text, np.zeros(len(text), dtype=bool))[1].any()


def canonical_numbers(text: np.ndarray) -> np.ndarray:
    """One spelling per number: "2007.0" and "2007" -> "2007", "1e-1" -> "0.1"; other text stays."""
    uniques, inverse = np.unique(np.asarray(text, dtype=str), return_inverse=True)
    spelled = np.array([_spell(u) for u in uniques], dtype=object)  # distinct values only
    return spelled[inverse.reshape(-1)]


def _spell(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return str(text)
    if not np.isfinite(number):
        return str(text)
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(number)


def source_of(frame: pd.DataFrame) -> str:
    """The file a frame was read from, for messages."""
    return frame.attrs.get("nncli_path", "data")


def describe_rows(frame: pd.DataFrame, mask: np.ndarray) -> str:
    """Rows where ``mask`` holds -> "lines 5, 273 (2 of 344 rows)", at most SHOW lines listed."""
    positions = np.flatnonzero(mask)
    labels = frame.index.to_numpy()[positions[:SHOW]]
    lines = positions[:SHOW] + 2
    path = frame.attrs.get("nncli_path")
    if path and labels.dtype.kind in "iu":  # index labels are the file's record numbers
        all_lines = record_lines(Path(path))
        if len(labels) and labels.max() < len(all_lines):
            lines = all_lines[labels]
    shown = ", ".join(str(n) for n in lines) + (", ..." if len(positions) > SHOW else "")
    word = "line" if len(positions) == 1 else "lines"
    return f"{word} {shown} ({len(positions)} of {len(frame)} rows)"


def describe_values(values: np.ndarray) -> str:
    """Distinct values -> "'abc', 'x'", at most SHOW listed."""
    distinct = list(dict.fromkeys(str(v) for v in values))
    return ", ".join(repr(v) for v in distinct[:SHOW]) + (", ..." if len(distinct) > SHOW else "")


# -- checks with messages ------------------------------------------------------------------------


def check_names(names: list[str], field: str, choices: list[str], what: str) -> None:
    """DataError at the first of ``names`` not in ``choices`` (``what`` names those), for the
    spec ``field`` that lists it, with a did-you-mean."""
    for name in names:
        if name not in choices:
            from nncli.engine.registry import did_you_mean  # only on this error path

            raise DataError(
                f"column {name!r} not in {what}" + did_you_mean(name, choices), field=field
            )


def require_columns(frame: pd.DataFrame, names: list[str], what: str) -> None:
    """DataError naming the ``what`` columns (feature, target, ...) the frame lacks, if any."""
    absent = [name for name in names if name not in frame.columns]
    if absent:
        raise DataError(
            f"missing {what} column{'s' if len(absent) > 1 else ''} "
            f"{describe_values(absent)} (the file has {describe_values(list(frame.columns))})",
            where=source_of(frame),
        )


def column_numbers(
    frame: pd.DataFrame, name: str, text: np.ndarray, missing: np.ndarray, what: str = "column"
) -> np.ndarray:
    """A column's cells (``cell_text``) -> float64 (N,), NaN where missing; DataError naming the
    present values that are not finite numbers and their lines."""
    values, bad = parse_numbers(text, missing)
    if bad.any():
        raise DataError(
            f"{what} {name!r} expects numbers, found {describe_values(text[bad])} on "
            f"{describe_rows(frame, bad)}",
            where=source_of(frame),
        )
    return values
