"""CSV files -> frames of text cells, and the cell helpers every table loader shares.

Reading checks every record first (ragged rows, bad bytes, empty files) with the exact line.
Rows in messages are line numbers as an editor shows them: the header is line 1, the first data
row line 2 (blank lines and line breaks inside quoted fields count as they do in the file); the
other formats (``readers.py``) name rows by ``attrs["nncli_row_word"]`` from ``nncli_first_row``."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.bounds.files import require_regular
from nncli.bounds.limits import COLUMNS_VARIABLE, column_limit
from nncli.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

SHOW = 5  # rows or values a message lists before "..."


# -- reading -------------------------------------------------------------------------------------


def read_table(
    path: Path, na_values: Sequence[str] = (), numbers: bool = False, delimiter: str = ","
) -> pd.DataFrame:
    """CSV file -> frame of text cells (object dtype, the file's row order); missing cells are NaN.

    Only empty fields and the ``na_values`` strings are missing, so "NA" in a text column is data.
    ``numbers``: a column whose every cell is a finite number comes back as numbers (float64 or
    int64, what ``cell_numbers`` gives at once); ``cell_text`` reads its text back from the file.
    ``delimiter``: the one character between fields (``data.delimiter``).
    """
    import pandas as pd

    path = Path(path)
    require_regular(path, DataError)  # /dev/zero never ends, a named pipe may never start
    # pandas pads a short row with missing values without a word; the csv pass catches ragged
    # rows (and bad bytes, empty files) first, with the exact line.
    header = _check_records(path, delimiter)
    options: dict[str, Any] = {
        "keep_default_na": False,
        "na_values": ["", *na_values],
        "encoding": "utf-8-sig",
        "index_col": False,
        "sep": delimiter,
    }
    try:
        if not numbers:
            frame = pd.read_csv(path, dtype=object, **options)
        else:
            # the C parser reads numbers far faster than Python makes millions of strings;
            # only the columns that are not cleanly numbers are read again as text
            frame = pd.read_csv(path, low_memory=False, **options)
            frame.columns = header
            text = [j for j, name in enumerate(header) if not _clean(frame[name], na_values)]
            if text:
                cells = pd.read_csv(path, dtype=object, usecols=text, **options)
                cells.columns = [header[j] for j in text]
                frame = pd.DataFrame(
                    {name: cells[name] if name in cells else frame[name] for name in header}
                )
    except (OSError, ValueError) as err:  # pandas' ParserError is a ValueError
        raise DataError(f"cannot read it as CSV: {err}", where=str(path)) from err
    frame.columns = header
    frame.attrs["nncli_path"] = str(path)
    frame.attrs["nncli_delimiter"] = delimiter
    return frame


def _records(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each non-blank record of a CSV file, the header first."""
    reader: Any = None
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file, delimiter=delimiter)
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


def _check_records(path: Path, delimiter: str = ",") -> list[str]:
    """The header's column names, after checking every record has one field per column and
    the header has at most ``limits.column_limit()`` columns (before any per-column work)."""
    header = _plain_header(path, delimiter)
    if header is not None:
        return check_width(header, path)
    records = _records(path, delimiter)
    first = next(records, None)
    if first is None:
        raise DataError("the file is empty; expected a header row and data rows", where=str(path))
    header = check_width([name.strip() for name in first[1]], path)
    seen: set[str] = set()  # a wide header: one lookup a name, not a scan of those before it
    for i, name in enumerate(header):
        if not name:
            raise DataError(f"column {i + 1} of the header has no name", where=str(path))
        if name in seen:
            raise DataError(f"column {name!r} appears twice in the header", where=str(path))
        seen.add(name)
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


def check_width(header: list[str], path: Path) -> list[str]:
    """The header, unless it names more columns than ``column_limit()`` (DataError)."""
    limit = column_limit()
    if len(header) > limit:
        raise DataError(
            f"the header has {len(header):,} columns; nncli reads at most {limit:,} "
            f"({COLUMNS_VARIABLE}=<count> raises the limit)",
            where=str(path),
        )
    return header


def _plain_header(path: Path, delimiter: str = ",") -> list[str] | None:
    """The stripped header of a well-formed file without quotes (delimiters counted per line, as
    the csv pass would split it, in a fraction of its time), or None: the csv pass then decides."""
    try:
        raw = path.read_bytes()
        raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if not raw or b'"' in raw or b"\0" in raw or raw.count(b"\r") != raw.count(b"\r\n"):
        return None  # quoting, odd bytes or lone CRs: the csv module's own rules
    # every CR ends a line here, so a line is a record unless it is blank
    lines = [line for line in raw.split(b"\n") if line not in (b"", b"\r")]
    limit = csv.field_size_limit()
    if len(lines) < 2 or any(len(line) > limit for line in lines):
        return None  # a field the csv module would refuse, or no data row
    sep = delimiter.encode("utf-8")
    commas = lines[0].count(sep)
    if any(line.count(sep) != commas for line in lines):
        return None
    line = lines[0].removesuffix(b"\r").decode("utf-8")
    header = [name.strip() for name in line.split(delimiter)]
    if any(not name for name in header) or len(set(header)) != len(header):
        return None
    return header


def _not_utf8(path: Path) -> DataError:
    from nncli.data.formats import not_utf8  # the error path only (formats imports the images')

    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        position = 0
    except UnicodeDecodeError as err:
        position = err.start
    return not_utf8(path, raw, position)


def record_lines(path: Path, delimiter: str = ",") -> np.ndarray:
    """Line number where each data record of ``path`` starts (the header is line 1)."""
    return np.array([line for line, _ in _records(Path(path), delimiter)][1:], dtype=np.int64)


# -- cells ---------------------------------------------------------------------------------------


def cell_text(column: pd.Series, na_values: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """A column -> (stripped text, object (N,); missing, bool (N,)). Missing cells hold ""."""
    if column.dtype.kind in "iuf":
        column = _file_cells(column)
    missing = np.array(column.isna(), dtype=bool)  # copies: pandas hands out read-only views
    text = np.array(column.astype(str).str.strip(), dtype=object)
    text[missing] = ""
    missing |= (text == "") | np.isin(text, list(na_values))
    text[missing] = ""
    return text, missing


def cell_numbers(
    column: pd.Series, na_values: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column -> (float64 (N,), NaN where missing; missing (N,); bad (N,)), what
    ``parse_numbers(*cell_text(column))`` gives, without making text for a column of numbers."""
    if _clean(column, na_values):
        values = column.to_numpy(dtype=np.float64, copy=True)
        return values, np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=bool)
    text, missing = cell_text(column, na_values)
    values, bad = parse_numbers(text, missing)
    return values, missing, bad


def clean_block(frame: pd.DataFrame, names: list[str], na_values: Sequence[str] = ()) -> Any:
    """The columns ``names`` as float64 (N, len(names)) when every one is a numbers column
    ``cell_numbers`` reads without text (``_clean``: all finite, none a numeric ``na_values``
    string), else None: one array for a wide table of numbers rather than a Series each."""
    if not names or not frame.columns.is_unique:
        return None
    if not all(dtype.kind in "iuf" for dtype in frame.dtypes[names]):
        return None
    whole = len(names) == frame.shape[1] and bool((frame.columns == names).all())
    part = frame if whole else frame[names]  # selecting columns costs more than the values
    values = part.to_numpy(dtype=np.float64, copy=True)  # the caller fills its gaps
    if not np.isfinite(values).all():
        return None
    if na_values and np.isin(values, _numeric(na_values)).any():
        return None
    return values


def cell_missing(column: pd.Series, na_values: Sequence[str] = ()) -> np.ndarray:
    """A column -> missing, bool (N,), as ``cell_text`` finds it."""
    if _clean(column, na_values):
        return np.zeros(len(column), dtype=bool)
    return cell_text(column, na_values)[1]


def _clean(column: pd.Series, na_values: Sequence[str]) -> bool:
    """True for a numbers column whose text would parse back to its values: every value finite
    and none equal to a numeric ``na_values`` string (" -999 " strips to a missing "-999")."""
    if column.dtype.kind not in "iuf":
        return False
    values = column.to_numpy()
    if not np.isfinite(values).all():
        return False
    return not (na_values and np.isin(values, _numeric(na_values)).any())


def _numeric(strings: Sequence[str]) -> np.ndarray:
    import pandas as pd

    return np.array(pd.to_numeric(pd.Series(list(strings), dtype=object), errors="coerce"))


def _file_cells(column: pd.Series) -> pd.Series:
    """A numbers column of ``read_table(numbers=True)`` -> its cells as the file spells them
    (rows by index label, as ``describe_rows`` finds them); any other column as it is."""
    import pandas as pd

    path = column.attrs.get("nncli_path")
    labels = column.index.to_numpy()
    if not path or labels.dtype.kind not in "iu" or column.attrs.get("nncli_first_row"):
        return column  # not read from a CSV file (the other formats keep their numbers)
    delimiter = column.attrs.get("nncli_delimiter", ",")
    try:
        stat = Path(path).stat()
        cells = _column_text(path, stat.st_mtime_ns, stat.st_size, str(column.name), delimiter)
    except (OSError, ValueError):
        return column
    if cells is None or (len(labels) and labels.max() >= len(cells)):
        return column
    return pd.Series(cells[labels], index=column.index, name=column.name)


@lru_cache(maxsize=8)  # a column's text serves fit, the checks and every part's transform
def _column_text(
    path: str, mtime_ns: int, size: int, name: str, delimiter: str = ","
) -> np.ndarray | None:
    """The cells of column ``name`` (its header name stripped) of a CSV file, object (N,)."""
    import pandas as pd

    options: dict[str, Any] = {"encoding": "utf-8-sig", "index_col": False, "sep": delimiter}
    options["dtype"] = object
    first = next(_records(Path(path), delimiter), None)  # the csv module's header: pandas
    header = [] if first is None else [n.strip() for n in first[1]]  # takes seconds for a wide one
    if name not in header:
        return None
    cells = pd.read_csv(
        path, usecols=[header.index(name)], keep_default_na=False, na_values=[""], **options
    )
    return cells.iloc[:, 0].to_numpy(dtype=object)


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
    """The file a frame was read from (or the name of rows handed in: ``records``), for
    messages."""
    return frame.attrs.get("nncli_path", frame.attrs.get("nncli_rows", "data"))


def describe_rows(frame: pd.DataFrame, mask: np.ndarray) -> str:
    """Rows where ``mask`` holds -> "lines 5, 273 (2 of 344 rows)", at most SHOW lines listed;
    rows handed in rather than read (``attrs["nncli_rows"]``) by index: "records[4]"."""
    positions = np.flatnonzero(mask)
    labels = frame.index.to_numpy()[positions[:SHOW]]
    name = frame.attrs.get("nncli_rows")
    if name and not frame.attrs.get("nncli_path"):
        shown = ", ".join(f"{name}[{label!r}]" for label in labels.tolist())
        more = ", ..." if len(positions) > SHOW else ""
        return f"{shown}{more} ({len(positions)} of {len(frame)} rows)"
    lines, path = positions[:SHOW] + 2, frame.attrs.get("nncli_path")
    first = frame.attrs.get("nncli_first_row")  # a format of rows, not lines (readers.py)
    if first is not None and labels.dtype.kind in "iu":
        lines = labels + first
    elif path and labels.dtype.kind in "iu":  # index labels are the file's record numbers
        all_lines = record_lines(Path(path), frame.attrs.get("nncli_delimiter", ","))
        if len(labels) and labels.max() < len(all_lines):
            lines = all_lines[labels]
    shown = ", ".join(str(n) for n in lines) + (", ..." if len(positions) > SHOW else "")
    word = frame.attrs.get("nncli_row_word", "line") + ("" if len(positions) == 1 else "s")
    return f"{word} {shown} ({len(positions)} of {len(frame)} rows)"


def describe_values(values: np.ndarray) -> str:
    """Distinct values -> "'abc', 'x'", at most SHOW listed."""
    distinct = list(dict.fromkeys(str(v) for v in values))
    return ", ".join(repr(v) for v in distinct[:SHOW]) + (", ..." if len(distinct) > SHOW else "")


# -- checks with messages ------------------------------------------------------------------------


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
        raise not_numbers(frame, name, text, bad, what)
    return values


def not_numbers(
    frame: pd.DataFrame, name: str, text: np.ndarray, bad: np.ndarray, what: str = "column"
) -> DataError:
    """The DataError for the cells ``bad`` (text ``text``) of a column that expects numbers."""
    return DataError(
        f"{what} {name!r} expects numbers, found {describe_values(text[bad])} on "
        f"{describe_rows(frame, bad)}",
        where=source_of(frame),
    )
