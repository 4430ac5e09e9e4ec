"""The table formats beside CSV, one reader (and writer) each, registered by suffix in
``readers.READERS``: Parquet and Feather (pyarrow), JSON lines and JSON records (the standard
library), Excel workbooks (openpyxl). pyarrow and openpyxl are the ``formats`` extra.

Each reader checks what its file claims before the work it would cost: the columns against
``limits.column_limit()``, the bytes a compressed file unpacks to against the memory limit;
a damaged file is one DataError naming it (the line for JSON lines, the sheet for Excel).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nncli.bounds.limits import over_memory, size_text
from nncli.data.readers import check_header, reads
from nncli.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

SHEET_BYTES = 4  # a sheet's XML unpacks into Python objects about this many times its size


def _to_bytes(write: Any) -> bytes:
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def _within_memory(path: Path, need: int, what: str) -> None:
    over = over_memory(need)
    if over is not None:
        raise DataError(f"{what} would take {size_text(need)}, {over}", where=str(path))


# -- Arrow: Parquet and Feather --------------------------------------------------------------


def _arrow_frame(table: Any, path: Path) -> pd.DataFrame:
    """An Arrow table -> pandas, after its columns and size are checked."""
    check_header([str(name).strip() for name in table.column_names], path)
    _within_memory(path, int(table.nbytes), "its columns")
    return table.to_pandas()


def _write_parquet(frame: pd.DataFrame) -> bytes:
    return _to_bytes(lambda buffer: frame.to_parquet(buffer, index=False))


@reads(".parquet", ".pq", name="Parquet", write=_write_parquet, needs=("pyarrow",))
def parquet(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """A Parquet file -> frame; its footer (columns, unpacked size) is checked first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        meta = file.metadata
        check_header([str(name).strip() for name in file.schema_arrow.names], path)
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        _within_memory(path, unpacked, "its row groups")
        table = file.read()
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"cannot read it as Parquet: {err}", where=str(path)) from None
    return _arrow_frame(table, path)


def _write_feather(frame: pd.DataFrame) -> bytes:
    return _to_bytes(lambda buffer: frame.to_feather(buffer))


@reads(".feather", ".arrow", name="Feather", write=_write_feather, needs=("pyarrow",))
def feather(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """A Feather (Arrow IPC) file -> frame, memory-mapped: uncompressed columns cost no copy
    until pandas makes its own."""
    import pyarrow as pa
    import pyarrow.feather as pf

    try:
        table = pf.read_table(path, memory_map=True)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"cannot read it as Feather: {err}", where=str(path)) from None
    return _arrow_frame(table, path)


# -- JSON ------------------------------------------------------------------------------------


def _text(path: Path) -> str:
    """The file's UTF-8 text; DataError naming the line of a byte that is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        from nncli.data.formats import not_utf8

        raise not_utf8(path, raw, err.start) from None


def _records_frame(records: list, path: Path, word: str) -> pd.DataFrame:
    """A list of JSON objects -> frame (columns in the order they first appear; a key a
    record lacks is missing there); DataError naming the first record that is no object."""
    import pandas as pd

    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(
            f"{word} {bad + 1}: expected an object of column: value, found "
            f"{type(records[bad]).__name__} {json.dumps(records[bad])[:40]}",
            where=str(path),
        )
    if not records:
        raise DataError("the file holds no records; expected one a row", where=str(path))
    return pd.DataFrame.from_records(records)


def _records_json(frame: pd.DataFrame) -> list[dict]:
    """A frame -> JSON-ready records: missing cells as null, numbers exactly (Python's repr)."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _write_jsonl(frame: pd.DataFrame) -> bytes:
    lines = (json.dumps(r, allow_nan=False) for r in _records_json(frame))
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


@reads(".jsonl", ".ndjson", name="JSON lines", write=_write_jsonl, row_word="line")
def json_lines(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """One JSON object a line -> frame; DataError naming the first line that is not one (a
    blank line too: JSON lines has none, so a message's line numbers are the file's)."""
    lines = _text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    try:
        records = json.loads("[" + ",".join(lines) + "]") if all(map(str.strip, lines)) else None
    except (json.JSONDecodeError, RecursionError):
        records = None
    if records is None:
        _first_bad_line(lines, path)
    return _records_frame(records or [], path, "line")


def _first_bad_line(lines: list[str], path: Path) -> None:
    """DataError naming the first line of ``lines`` that is not one JSON value."""
    for number, line in enumerate(lines, start=1):
        try:
            json.loads(line)
        except json.JSONDecodeError as err:
            found = "an empty line" if not line.strip() else f"invalid JSON ({err.msg})"
            raise DataError(f"line {number}: {found}", where=str(path)) from None
        except RecursionError:
            raise DataError(f"line {number}: nested too deeply", where=str(path)) from None
    raise DataError("cannot read it as JSON lines", where=str(path))


def _write_json(frame: pd.DataFrame) -> bytes:
    return json.dumps(_records_json(frame), allow_nan=False).encode("utf-8")


@reads(".json", name="JSON", write=_write_json)
def json_records(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """A JSON array of objects, one a row -> frame; any other JSON is refused with what it is."""
    try:
        found = json.loads(_text(path))
    except json.JSONDecodeError as err:
        raise DataError(
            f"line {err.lineno}, column {err.colno}: invalid JSON ({err.msg})", where=str(path)
        ) from None
    except RecursionError:
        raise DataError("the JSON is nested too deeply", where=str(path)) from None
    if not isinstance(found, list):
        raise DataError(
            'expected a list of records ([{"column": value, ...}, ...]), found a JSON '
            f"{type(found).__name__ if found is not None else 'null'}",
            where=str(path),
        )
    return _records_frame(found, path, "record")


# -- Excel -----------------------------------------------------------------------------------


def _write_xlsx(frame: pd.DataFrame) -> bytes:
    return _to_bytes(lambda buffer: frame.to_excel(buffer, index=False, engine="openpyxl"))


@reads(".xlsx", ".xlsm", name="Excel", write=_write_xlsx, needs=("openpyxl",), first_row=2)
def excel(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """A workbook's sheet (``sheet``, else the first) -> frame: its first row the header,
    the rows below the data (rows are numbered as the sheet numbers them)."""
    import openpyxl
    import pandas as pd

    try:
        with zipfile.ZipFile(path) as archive:  # a small file may unpack to gigabytes
            unpacked = sum(info.file_size for info in archive.infolist())
        _within_memory(path, unpacked * SHEET_BYTES, "its sheets")
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as err:
        raise DataError(f"cannot read it as an Excel workbook: {err}", where=str(path)) from None
    try:
        rows = _sheet_rows(book, sheet, path)
    finally:
        book.close()
    header = ["" if name is None else str(name).strip() for name in rows[0]]
    check_header(header, path)
    return pd.DataFrame(rows[1:], columns=header)


def _sheet_rows(book: Any, sheet: str | None, path: Path) -> list[tuple]:
    """The sheet's rows of values, empty rows and columns at its end left out; DataError for
    a sheet the book lacks (with a did-you-mean) or one without a header and a row."""
    if sheet is not None and sheet not in book.sheetnames:
        from nncli.engine.registry import did_you_mean

        raise DataError(
            f"no sheet {sheet!r} in the workbook (it has {', '.join(map(repr, book.sheetnames))})"
            f"{did_you_mean(sheet, book.sheetnames)}",
            where=str(path),
            field="data.sheet",
        )
    name = sheet if sheet is not None else book.sheetnames[0]
    rows = [tuple(row) for row in book[name].iter_rows(values_only=True)]
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    width = max((i + 1 for row in rows for i, v in enumerate(row) if v is not None), default=0)
    if len(rows) < 2 or width == 0:
        found = "empty" if not rows else "only a header"
        raise DataError(
            f"sheet {name!r} is {found}; expected a header row and data rows", where=str(path)
        )
    return [row[:width] + (None,) * (width - len(row)) for row in rows]
