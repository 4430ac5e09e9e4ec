"""A table file as numbered chunks read one at a time: ``data.streaming`` (``streaming.py``).

A CSV file's chunks are byte ranges of at most ``chunk_rows`` records, found by one scan of the
file's bytes for the line breaks that end a record (a line break inside a quoted field does not:
the count of quotes before it is odd); a Parquet file's chunks are its row groups (pyarrow, the
``formats`` extra). Either reads chunk ``k`` alone, in any order, as a frame whose index holds
the file's record numbers (0 for the first row after the header), so a message names its line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.bounds.files import require_regular
from nncli.data import readers
from nncli.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

SCAN_BYTES = 1 << 24  # the bytes the record scan holds at once
NEWLINE, QUOTE = 10, 34
PARQUET = (".parquet", ".pq")


class CsvChunks:
    """A CSV file as byte ranges of at most ``chunk_rows`` records each (blank lines count)."""

    def __init__(self, path: Path, chunk_rows: int, delimiter: str = ",", na_values=()):
        require_regular(path, DataError)
        self.path, self.delimiter, self.na_values = Path(path), delimiter, list(na_values)
        self.header = _header(self.path, delimiter)
        self.offsets, self.lines = record_offsets(self.path, chunk_rows)
        self.max_rows = chunk_rows
        self.first_row = np.zeros(len(self) + 1, dtype=np.int64)  # filled by ``counted``
        self.text: set[str] = set()  # columns read as text (categories, labels)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def read(self, k: int) -> pd.DataFrame:
        """Chunk ``k``'s records as ``read_table(numbers=True)`` gives a file: a column of clean
        numbers as numbers, the ``text`` columns and any other as text cells; indexed by record
        number once ``counted`` has been told the rows of every chunk before it."""
        with open(self.path, "rb") as file:
            file.seek(int(self.offsets[k]))
            raw = file.read(int(self.offsets[k + 1] - self.offsets[k]))
        try:
            frame = self._parse(raw, {name: object for name in self.text})
        except DataError as err:  # pandas counts lines from the chunk: name the file's own
            raise self._ragged(k, raw) or err from None
        # a numbers column with a gap is read again as text, as read_table does: its cells'
        # text must come from this chunk, never from the whole file (``cell_text``)
        again = self._unclean(frame)
        if again:
            cells = self._parse(raw, object, usecols=again)
            for name in again:
                frame[name] = cells[name]
        frame.index = np.arange(len(frame), dtype=np.int64) + self.first_row[k]
        frame.attrs["nncli_path"] = str(self.path)
        frame.attrs["nncli_delimiter"] = self.delimiter
        return frame

    def _unclean(self, frame: pd.DataFrame) -> list[str]:
        """The numbers columns with a gap (NaN) or a number ``na_values`` names, in one pass."""
        import pandas as pd

        numbers = [j for j, dtype in enumerate(frame.dtypes) if dtype.kind in "iuf"]
        if not numbers:
            return []
        values = frame.iloc[:, numbers].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values).all(axis=0)
        if self.na_values:
            named = pd.to_numeric(pd.Series(self.na_values, dtype=object), errors="coerce")
            bad |= np.isin(values, np.asarray(named, dtype=np.float64)).any(axis=0)
        return [str(frame.columns[numbers[j]]) for j in np.flatnonzero(bad)]

    def _ragged(self, k: int, raw: bytes) -> DataError | None:
        """The first record of chunk ``k`` whose fields are not the header's, named by its line
        in the file (the csv module over this chunk alone: an error path)."""
        reader = csv.reader(io.StringIO(raw.decode("utf-8", "replace")), delimiter=self.delimiter)
        before = 0
        for fields in reader:
            if fields and len(fields) != len(self.header):
                return DataError(
                    f"line {self.lines[k] + before}: expected {len(self.header)} fields (the "
                    f"header's), found {len(fields)}",
                    where=str(self.path),
                )
            before = reader.line_num
        return None

    def _parse(self, raw: bytes, dtype: Any, usecols: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        try:
            return pd.read_csv(
                io.BytesIO(raw),
                header=None,
                names=self.header,
                usecols=usecols,
                dtype=dtype,
                keep_default_na=False,
                na_values=["", *self.na_values],
                index_col=False,
                sep=self.delimiter,
                encoding="utf-8",
                low_memory=False,
            )
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise DataError(f"cannot read it as CSV: {err}", where=str(self.path)) from err

    def counted(self, k: int, rows: int) -> None:
        """Chunk ``k`` holds ``rows`` records (the first pass reads the chunks in order)."""
        self.first_row[k + 1] = self.first_row[k] + rows


class ParquetChunks:
    """A Parquet file as its row groups (the writer chose their size)."""

    def __init__(self, path: Path, na_values=()):
        require_regular(path, DataError)
        readers.require_libraries(readers.format_of(Path(path)), Path(path))  # exit 2, the line
        import pyarrow.parquet as pq

        self.path = Path(path)
        try:
            self.file = pq.ParquetFile(self.path)
        except Exception as err:  # pyarrow's ArrowInvalid and OSError for a broken file
            raise DataError(f"cannot read it as Parquet: {err}", where=str(self.path)) from err
        meta = self.file.metadata
        rows = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
        self.header = [str(name) for name in self.file.schema_arrow.names]
        self.text: set[str] = set()  # pyarrow's types decide
        self.max_rows = max(rows, default=0)
        self.first_row = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.first_row)

    def read(self, k: int) -> pd.DataFrame:
        """Row group ``k`` as a frame (pyarrow's types), indexed by row number."""
        try:
            frame = self.file.read_row_group(k).to_pandas()
        except Exception as err:
            raise DataError(f"cannot read row group {k}: {err}", where=str(self.path)) from err
        frame.index = np.arange(len(frame), dtype=np.int64) + self.first_row[k]
        frame.attrs["nncli_rows"] = f"{self.path} row"  # messages: "data.parquet row[12]"
        return frame

    def counted(self, k: int, rows: int) -> None:
        """Row groups know their rows from the file's footer."""


def open_chunks(path: Path, chunk_rows: int, delimiter: str, na_values: Any) -> Any:
    """A table file -> its chunks: Parquet by its suffix, anything else as CSV."""
    if Path(path).suffix.lower() in PARQUET:
        return ParquetChunks(path, na_values)
    return CsvChunks(path, chunk_rows, delimiter, na_values)


def _header(path: Path, delimiter: str) -> list[str]:
    """The header record's names, stripped (the csv module: a quoted name may hold anything)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            names = next(csv.reader(file, delimiter=delimiter), None)
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text ({err.reason})", where=str(path)) from None
    if not names:
        raise DataError("the file is empty: expected a header line", where=str(path))
    return [name.strip() for name in names]


def record_offsets(path: Path, every: int) -> tuple[np.ndarray, np.ndarray]:
    """(byte offsets where chunks of ``every`` records start, the first right after the header,
    and the file's size last; the line each chunk starts on): one pass over the bytes,
    SCAN_BYTES at a time, a line break ending a record when an even count of quotes comes
    before it."""
    starts: list[int] = []
    lines: list[int] = []
    base, ends, quotes, breaks_before = 0, 0, 0, 0
    with open(path, "rb") as file:
        while block := file.read(SCAN_BYTES):
            data = np.frombuffer(block, dtype=np.uint8)
            breaks, marks = np.flatnonzero(data == NEWLINE), np.flatnonzero(data == QUOTE)
            closing = np.flatnonzero((quotes + np.searchsorted(marks, breaks)) % 2 == 0)
            number = ends + np.arange(len(closing))  # record 0 is the header
            chosen = closing[number % every == 0]  # positions among this block's line breaks
            starts += (base + breaks[chosen] + 1).tolist()
            lines += (breaks_before + chosen + 2).tolist()  # the line after that break
            ends, quotes, base = ends + len(closing), quotes + len(marks), base + len(data)
            breaks_before += len(breaks)
    if not starts:  # a header alone, without a line break: no chunk
        return np.array([base], dtype=np.int64), np.zeros(0, dtype=np.int64)
    tail = [] if starts[-1] == base else [base]  # the last record may lack its line break
    offsets = np.array(starts + tail, dtype=np.int64)
    return offsets, np.array(lines[: len(offsets) - 1], dtype=np.int64)
