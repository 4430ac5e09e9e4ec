"""A data file in a format nncli does not read (gzip, pickle, ...), or in one it reads under a
suffix that does not name it (Parquet, Excel, Feather: issue 28), gets one line naming the format
it looks like and what nncli reads, from ``init``, ``validate``/``train`` and the readers alike,
instead of a byte that is not UTF-8 (issue 23, item 9)."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line

from nncli.data.csv_reader import read_table
from nncli.data.text import read_text
from nncli.errors import DataError

BINARY = b"\x00\x15\xb0\x9c\xff\x01" * 40  # column data: bytes that are not UTF-8


def _xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("iris.csv", IRIS.read_text())
    return out.getvalue()


FILES = {  # name -> (bytes, what the line says it looks like)
    "iris.dat": (b"PAR1" + BINARY + b"PAR1", "a Parquet file"),  # read by the suffix .parquet
    "iris.data": (b"ARROW1\x00\x00" + BINARY, "a Feather (Arrow IPC) file"),
    "iris.sheet": (_xlsx(), "an Excel workbook (.xlsx)"),
    "iris.xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + BINARY, "an Excel 97-2003 workbook (.xls)"),
    "iris.h5": (b"\x89HDF\r\n\x1a\n" + BINARY, "an HDF5 file"),
    "iris.csv.gz": (gzip.compress(IRIS.read_bytes()), "a gzip-compressed file"),
    "iris.zip": (_zip(), "a ZIP archive"),
    "iris.pkl": (b"\x80\x04\x95" + BINARY, "a Python pickle"),
    "iris.txt": ("species,x\n".encode("utf-16"), "UTF-16 text"),
}
READS = "nncli reads tables by their suffix (.csv/.tsv/.txt as CSV: UTF-8 text, comma, semicolon"


@pytest.mark.parametrize("name", sorted(FILES))
def test_init_names_the_format_and_what_nncli_reads(name, tmp_path):
    data = tmp_path / name
    data.write_bytes(FILES[name][0])
    result = invoke("init", data, "--output", tmp_path / "s.yaml")
    line = one_error_line(result, 3, f"{data} looks like {FILES[name][1]}; {READS}")
    assert "byte 0x" not in line
    assert not (tmp_path / "s.yaml").exists()


def test_a_spec_and_the_readers_say_the_same(tmp_path):
    data = tmp_path / "iris.dat"
    data.write_bytes(FILES["iris.dat"][0])
    spec = tmp_path / "spec.yaml"
    spec.write_text(iris_spec("{epochs: 1}").replace("iris.csv", "iris.dat"))
    expected = f"{data} looks like a Parquet file; {READS}"
    for command in ("validate", "train"):
        line = one_error_line(invoke(command, spec), 3, expected)
        assert line.endswith("name it iris.parquet: nncli reads a table by its suffix")
    for read in (read_table, read_text):
        with pytest.raises(DataError, match="looks like a Parquet file"):
            read(data)


def test_text_that_is_only_not_utf8_still_names_the_line_and_byte(tmp_path: Path):
    data = tmp_path / "latin.csv"
    data.write_bytes("species,x\nsetosa,1\ncaf\xe9,2\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 3: byte 0xe9 is not UTF-8 text; save the file"):
        read_table(data)
