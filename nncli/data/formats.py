"""A file that is not UTF-8 text: the one line that says so, naming the format its first bytes
look like (Parquet, Excel, Feather, HDF5, gzip, ...) and what nncli reads, instead of a byte.

The CSV reader and the text reader both end here (``not_utf8``), so a spec's data file, a file
given to ``predict`` or ``evaluate`` and a file given to ``nncli init`` get the same line.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from nncli.data.image_files import MAGIC as IMAGE_MAGIC
from nncli.errors import DataError

READS = (
    "nncli reads tables by their suffix (.csv/.tsv/.txt as CSV: UTF-8 text, comma, semicolon or "
    "tab separated; .parquet, .feather/.arrow, .jsonl/.ndjson, .json, .xlsx), arrays of HDF5 and "
    ".npz files (kind: arrays), folders of images and UTF-8 text files"
)
RENAME = "name it {stem}{suffix}: nncli reads a table by its suffix"
SPREADSHEET = (
    "save it as .xlsx or as CSV UTF-8 from the spreadsheet, or pandas.read_excel('{file}')"
    ".to_csv('{csv}', index=False)"
)
UNPACK = "unpack it first"

# first bytes -> (what the file looks like, what to do); checked in this order
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"PAR1", "a Parquet file", RENAME.replace("{suffix}", ".parquet")),
    (b"ARROW1", "a Feather (Arrow IPC) file", RENAME.replace("{suffix}", ".feather")),
    (b"FEA1", "a Feather file", RENAME.replace("{suffix}", ".feather")),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)", SPREADSHEET),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file", "a checkpoint goes to predict, evaluate or inspect"),
    (b"SQLite format 3\x00", "an SQLite database", "export a table as CSV"),
    (b"\x93NUMPY", "a numpy array (.npy)", "save it as CSV, e.g. numpy.savetxt"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first (gunzip)"),
    (b"BZh", "a bzip2-compressed file", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it first (unzstd)"),
    (b"%PDF-", "a PDF document", "nncli cannot read tables from a PDF"),
    (b"\xff\xfe", "UTF-16 text", "save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "save it as UTF-8"),
    *(
        (magic, "an image", "images go in a folder, one sub-folder per class")
        for magic in IMAGE_MAGIC
    ),
)
PICKLE = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # protocols 2-5


def looks_like(path: Path, head: bytes) -> tuple[str, str] | None:
    """(what ``path`` looks like, what to do) from its first bytes ``head``, or None."""
    for magic, name, advice in SIGNATURES:
        if head.startswith(magic):
            return name, advice
    if head.startswith(PICKLE):
        return "a Python pickle", "nncli never reads pickles; save the data as CSV"
    if head.startswith(b"PK\x03\x04"):
        return _zipped(path)
    return None


def _zipped(path: Path) -> tuple[str, str]:
    """A ZIP archive: an Excel or OpenDocument workbook (its directory says), or another."""
    try:
        with zipfile.ZipFile(path) as archive:  # reads the directory only
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        names = []
    if any(name.startswith("xl/") for name in names):
        return "an Excel workbook (.xlsx)", RENAME.replace("{suffix}", ".xlsx")
    if "content.xml" in names:
        return "an OpenDocument file (.ods)", SPREADSHEET
    return "a ZIP archive", UNPACK


def foreign(path: Path, head: bytes | None = None) -> DataError | None:
    """The error for a file whose first bytes (``head``, else read) name a format nncli does
    not read, or None."""
    if head is None:
        try:
            with open(path, "rb") as file:
                head = file.read(64)
        except OSError:
            return None  # the reader names what is wrong with it
    found = looks_like(path, head)
    if found is None:
        return None
    name, advice = found
    advice = advice.format(file=path.name, csv=f"{path.stem}.csv", stem=path.stem)
    return DataError(f"{path} looks like {name}; {READS}; {advice}")


def not_utf8(path: Path, raw: bytes, position: int) -> DataError:
    """The error for ``raw`` (the file's bytes) that stops being UTF-8 at ``position``: the
    format it looks like and what nncli reads, else the line and the byte."""
    found = foreign(path, raw[:64])
    if found is not None:
        return found
    line = raw.count(b"\n", 0, position) + 1
    return DataError(
        f"line {line}: byte 0x{raw[position]:02x} is not UTF-8 text; save the file as UTF-8",
        where=str(path),
    )
