"""``data.streaming``: a table read chunk by chunk (nncli/data/streaming.py, chunks.py,
moments.py). The statistics of the one pass before training equal the in-memory ones, the
shuffle holds a bounded number of rows and covers every training row once an epoch, the
validation rows come from a seeded hash of the row number, and CSV chunks split at record
boundaries (quoted line breaks included); Parquet is read by row groups."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import csv_cfg

from nncli.data import table
from nncli.data.chunks import CsvChunks, record_offsets
from nncli.data.columns import CategoricalColumn, NumericColumn
from nncli.data.csv_reader import record_lines
from nncli.data.moments import Moments
from nncli.data.streaming import TRAIN, VALIDATION, row_parts
from nncli.errors import DataError, SpecError

ROWS = 1000


def frame(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.float64),
            "big": rng.normal(1e6, 3.0, rows),  # a large mean: a naive sum of squares loses it
            "small": rng.uniform(-1.0, 1.0, rows),
            "colour": rng.choice(["red", "green", "blue", "2007", "2007.0"], rows),
        }
    )
    data["species"] = np.where(data["small"] > 0.2, "b", np.where(data["small"] < -0.5, "a", "c"))
    return data


def streaming_cfg(path: Path, **settings):
    base = dict(streaming=True, chunk_rows=97, buffer_chunks=3, delimiter=",", validation_split=0.2)
    return csv_cfg(path, **{**base, **settings})


def load(path: Path, **settings):
    return table.load(streaming_cfg(path, **settings), path.parent, 7, "cross_entropy")


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    frame().to_csv(path, index=False)
    return path


def rounding(values: np.ndarray, result: float) -> float:
    """How far two float64 computations of a mean or deviation of ``values`` may lie: each
    deviation from the mean rounds by eps times the values' magnitude, and a sum of n terms
    by n * eps of its result."""
    eps = np.finfo(np.float64).eps
    return 4 * eps * np.abs(values).max() + len(values) * eps * abs(result)


def test_chan_moments_equal_the_in_memory_mean_and_deviation():
    rng = np.random.default_rng(3)
    values = rng.normal(1e6, 3.0, (5000, 2))
    values[rng.random((5000, 2)) < 0.1] = np.nan  # missing values count per column
    moments = Moments(["a", "b"])
    for chunk in np.array_split(values, [1, 2, 700, 701, 3000]):  # uneven, one empty
        moments.add(chunk)
    for j in range(2):
        present = values[:, j][~np.isnan(values[:, j])]
        assert abs(moments.mean[j] - present.mean()) <= rounding(present, present.mean())
        assert abs(moments.std()[j] - present.std()) <= rounding(present, present.std())
        assert moments.count[j] == len(present)


def test_the_encoder_equals_the_in_memory_fit_on_the_same_training_rows(table_csv: Path):
    ds = load(table_csv)
    data = frame()
    train = data.iloc[np.flatnonzero(row_parts(np.arange(ROWS), 7, 0.2, 0.0) == TRAIN)]
    columns = {c.name: c for c in ds.encoder.columns}
    for name in ("id", "big", "small"):
        fitted = NumericColumn.fit(name, train[name].to_numpy(), "standard")
        got, values = columns[name], train[name].to_numpy()
        assert abs(got.offset - fitted.offset) <= rounding(values, fitted.offset)
        assert abs(got.scale - fitted.scale) <= rounding(values, fitted.scale)
    colour = CategoricalColumn.fit("colour", train["colour"].astype(str).to_numpy(dtype=object))
    assert columns["colour"] == colour  # "2007" and "2007.0" one category, by value
    assert ds.labels == ["a", "b", "c"]
    assert ds.rows("train") == len(train)


def test_validation_rows_come_from_a_hash_of_the_row_number(table_csv: Path):
    parts = row_parts(np.arange(20000), 7, 0.2, 0.1)
    # the fractions of 20,000 independent draws: within 5 standard deviations
    for part, fraction in ((VALIDATION, 0.2), (2, 0.1)):
        share = (parts == part).mean()
        assert abs(share - fraction) < 5 * np.sqrt(fraction * (1 - fraction) / 20000)
    np.testing.assert_array_equal(parts[500:600], row_parts(np.arange(500, 600), 7, 0.2, 0.1))
    assert (row_parts(np.arange(20000), 8, 0.2, 0.1) != parts).any()  # the seed decides
    # the validation rows are the same whatever the chunk size, every time they are read
    ids = []
    for chunk_rows in (97, 1000, 13):
        stream = load(table_csv, chunk_rows=chunk_rows).parts["validation"].x.stream
        ids.append(np.sort(np.concatenate([x[:, 0] for x, _ in stream.batches(64)])))
    np.testing.assert_array_equal(ids[0], ids[1])
    np.testing.assert_array_equal(ids[0], ids[2])


def _ids(stream, epoch: int, size: int = 32) -> np.ndarray:
    column = stream.encoder.columns[0]  # "id", scaled: back to the row number
    batches = list(stream.batches(size, seed=7, epoch=epoch, shuffle=True))
    assert all(len(x) == size for x, _ in batches[:-1])
    ids = np.concatenate([x[:, 0] for x, _ in batches]).astype(np.float64)
    return np.rint(ids * column.scale + column.offset).astype(np.int64)


def test_the_shuffle_covers_each_training_row_once_holding_a_bounded_number(table_csv: Path):
    stream = load(table_csv).parts["train"].x.stream
    train = np.flatnonzero(row_parts(np.arange(ROWS), 7, 0.2, 0.0) == TRAIN)
    first, second = _ids(stream, 1), _ids(stream, 2)
    np.testing.assert_array_equal(np.sort(first), train)
    np.testing.assert_array_equal(np.sort(second), train)
    assert (first != second).any()  # reshuffled every epoch
    np.testing.assert_array_equal(first, _ids(stream, 1))  # and the same for the same epoch
    # never more than buffer_chunks chunks' rows plus one batch's leftover, counted, not measured
    assert 0 < stream.held_peak <= 3 * 97 + 32 - 1 < len(train)
    # rows travel far: not only within their chunk
    assert np.abs(first - np.sort(first)).max() > 97


def test_csv_chunks_split_at_records_even_with_quoted_line_breaks(tmp_path: Path):
    path = tmp_path / "q.csv"
    notes = ['say "hi"\nthere', "plain", "a,b", "line\nbreak\n", ""] * 7
    data = pd.DataFrame({"n": np.arange(len(notes)), "note": notes})
    data.to_csv(path, index=False)
    for every in (1, 2, 5, 100):
        chunks = CsvChunks(path, every)
        read = []
        for k in range(len(chunks)):
            part = chunks.read(k)
            chunks.counted(k, len(part))
            assert len(part) <= every
            read.append(part)
        whole = pd.concat(read)
        assert whole["n"].astype(int).tolist() == list(range(len(notes)))
        assert whole["note"].fillna("").tolist() == notes
        assert whole.index.tolist() == list(range(len(notes)))
    offsets, lines = record_offsets(path, 5)
    assert len(offsets) - 1 == 7  # 35 records in chunks of 5
    np.testing.assert_array_equal(lines, record_lines(path)[::5])  # where each chunk starts


def test_a_row_with_a_field_too_many_names_its_line_in_the_file(tmp_path: Path):
    path = tmp_path / "t.csv"
    frame(300).to_csv(path, index=False)
    text = path.read_text().splitlines()
    text[251] += ",9"  # the file's line 252: its 251st record
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"line 252: expected 5 fields \(the header's\), found 6"):
        load(path, validation_split=0.0)


def test_parquet_row_groups_stream_as_the_csv_does(tmp_path: Path, table_csv: Path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(frame(), preserve_index=False), path, row_group_size=97)
    streamed, from_csv = load(path), load(table_csv)
    assert streamed.rows("train") == from_csv.rows("train")
    assert streamed.encoder.columns[3] == from_csv.encoder.columns[3]
    pairs = zip(streamed.encoder.columns[:3], from_csv.encoder.columns[:3], strict=True)
    for got, expected in pairs:
        assert got.offset == pytest.approx(expected.offset, rel=1e-12, abs=1e-12)
    x, _ = next(streamed.parts["train"].x.stream.batches(50))
    assert x.shape == (50, len(streamed.feature_names))


def test_a_stray_text_in_a_later_chunk_names_its_line(tmp_path: Path):
    data = frame(300).astype({"small": object})
    data.loc[250, "small"] = "oops"
    path = tmp_path / "t.csv"
    data.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'small'.*'oops'.*line 252"):
        load(path, validation_split=0.0)


def test_streaming_refuses_a_split_column(table_csv: Path):
    with pytest.raises(SpecError, match="split_column"):
        load(table_csv, split_column="colour")


def test_a_truncated_parquet_file_is_one_data_error_naming_it(tmp_path: Path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(frame(50), preserve_index=False), path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="cannot read it as Parquet") as raised:
        load(path)
    assert raised.value.where == str(path)


def test_parquet_without_pyarrow_says_how_to_install(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if absent
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else found(name, *a)
    )
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    # a missing extra is a spec-side refusal (exit 2), as the table formats' reader gives it
    with pytest.raises(SpecError, match=r'pip install -e "\.\[formats\]"'):
        load(path)
