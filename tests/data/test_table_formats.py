"""Table formats beside CSV (``nncli/data/readers.py``, ``table_files.py``): Parquet, Feather,
JSON lines, JSON records and Excel train, predict, evaluate and profile as the same table in CSV
does; each format's damaged file is one line naming it (exit 3); a missing library is the
install line (exit 2); ``predict --output`` writes the format its suffix names; ``kind: table``
is ``kind: csv``; a new format is one entry in the reader registry."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import DATASETS, IRIS, invoke, iris_spec, one_error_line

from nncli import data
from nncli.checkpoint import model as model_io
from nncli.data import readers
from nncli.data.readers import Format, read_table
from nncli.errors import DataError

FORMATS = {  # suffix -> how pandas writes the iris frame in it
    "parquet": lambda frame, path: frame.to_parquet(path, index=False),
    "feather": lambda frame, path: frame.to_feather(path),
    "jsonl": lambda frame, path: path.write_text(
        "".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records"))
    ),
    "json": lambda frame, path: path.write_text(json.dumps(frame.to_dict(orient="records"))),
    "xlsx": lambda frame, path: frame.to_excel(path, index=False),
}


def write_as(frame: pd.DataFrame, folder: Path, stem: str, suffix: str) -> Path:
    path = folder / f"{stem}.{suffix}"
    FORMATS[suffix](frame, path)
    return path


def arrays(path: Path) -> dict[str, bytes]:
    """Every array of a checkpoint as raw bytes (the training times and the spec's text, which
    names the data file, aside)."""
    found: dict[str, bytes] = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset) and not name.endswith("history/time") and name != "spec":
            found[name] = np.asarray(obj[()]).tobytes()

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def train(folder: Path, data_file: str, kind: str = "csv", training: str = "") -> Path:
    spec = iris_spec(training or "{epochs: 2, batch_size: 16}")
    spec = spec.replace("kind: csv, path: iris.csv", f"kind: {kind}, path: {data_file}")
    (folder / "spec.yaml").write_text(spec)
    result = invoke("train", folder / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    return folder / "out" / "model.h5"


@pytest.fixture(scope="module")
def trained_csv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("csv")
    shutil.copy(IRIS, folder / "iris.csv")
    return train(folder, "iris.csv")


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_iris_in_each_format_trains_to_the_csv_checkpoint_arrays(tmp_path, trained_csv, suffix):
    write_as(pd.read_csv(IRIS), tmp_path, "iris", suffix)
    found, expected = arrays(train(tmp_path, f"iris.{suffix}")), arrays(trained_csv)
    assert found.keys() == expected.keys()
    assert [name for name in expected if found[name] != expected[name]] == []


@pytest.mark.parametrize("suffix", ["parquet", "jsonl", "xlsx"])
def test_sequences_and_time_series_read_every_format(tmp_path, suffix):
    frame = pd.read_csv(DATASETS / "sunspots_yearly.csv")
    path = write_as(frame, tmp_path, "sun", suffix)
    cfg = dict(columns=["sunactivity"], target="sunactivity", window=8, horizon=1, stride=1)
    cfg.update(kind="timeseries", normalize="standard", validation_split=0.2, test_split=0.0)
    other = data.load(types.SimpleNamespace(path=path, **cfg), tmp_path, 0, "mse")
    cfg["path"] = DATASETS / "sunspots_yearly.csv"
    csv = data.load(types.SimpleNamespace(**cfg), tmp_path, 0, "mse")
    for name, part in csv.parts.items():
        np.testing.assert_array_equal(other.parts[name].x, part.x)
        np.testing.assert_array_equal(other.parts[name].y, part.y)
    grouped = pd.DataFrame({"id": list("aabbbcc"), "t": [0, 1, 0, 1, 2, 0, 1]})
    grouped["x"], grouped["label"] = np.arange(7) / 2, list("uuddduu")
    cfg = dict(kind="sequences", id="id", order="t", features=None, target="label")
    cfg.update(target_per="sequence", categorical=[], normalize="none", missing="error")
    cfg.update(validation_split=0.0, test_split=0.0)
    seqs = data.load(
        types.SimpleNamespace(path=write_as(grouped, tmp_path, "g", suffix), **cfg),
        tmp_path,
        0,
        "cross_entropy",
    )
    assert seqs.parts["train"].x.shape == (3, 3, 1) and seqs.labels == ["d", "u"]


def test_predict_and_evaluate_take_every_format_and_output_writes_its_suffix(tmp_path, trained_csv):
    expected = invoke("predict", trained_csv, IRIS, "--proba")
    assert expected.exit_code == 0, expected.stderr
    table = pd.read_csv(IRIS)
    for suffix in FORMATS:
        path = write_as(table, tmp_path, "new", suffix)
        out = tmp_path / f"predictions.{suffix}"
        result = invoke("predict", trained_csv, path, "--proba", "--output", out)
        assert result.exit_code == 0, result.stderr
        written = read_table(out, numbers=True)
        shown = pd.read_csv(pd.io.common.StringIO(expected.stdout))
        assert list(written.columns) == list(shown.columns)
        assert list(written["prediction"]) == list(shown["prediction"])
        np.testing.assert_allclose(  # the printed CSV's digits, read back within float32's
            written["proba_setosa"], shown["proba_setosa"], rtol=np.finfo(np.float32).eps
        )
        result = invoke("evaluate", trained_csv, path)
        assert result.exit_code == 0 and "accuracy" in result.stdout, result.stderr
    result = invoke("predict", trained_csv, IRIS, "--proba", "--output", tmp_path / "p.tsv")
    assert result.exit_code == 0 and "\t" in (tmp_path / "p.tsv").read_text().splitlines()[0]


def test_predict_refuses_an_output_suffix_it_cannot_write_before_any_work(tmp_path, trained_csv):
    result = invoke("predict", trained_csv, IRIS, "--output", tmp_path / "p.xml")
    one_error_line(result, 2, "--output", "'.xml'", ".parquet")
    assert not (tmp_path / "p.xml").exists()


BAD = {  # name -> (bytes of the file, words the line names)
    "truncated.parquet": (None, "cannot read it as Parquet"),
    "truncated.feather": (None, "cannot read it as Feather"),
    "bad.jsonl": (b'{"a": 1, "y": 0}\n{"a": 2, "y": 1}\n{"a": 3, "y": \n', "line 3: invalid JSON"),
    "blank.jsonl": (b'{"a": 1, "y": 0}\n\n{"a": 2, "y": 1}\n', "line 2: an empty line"),
    "list.jsonl": (b'{"a": 1, "y": 0}\n[1, 2]\n', "line 2: expected an object"),
    "nested.json": (b'[{"a": 1, "y": 0}, {"a": [1, 2], "y": 1}]', "row 2, column 'a'"),
    "object.json": (b'{"a": [1, 2], "y": [0, 1]}', "expected a list of records"),
    "deep.json": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "empty.xlsx": (None, "sheet 'Sheet' is empty"),
    "notzip.xlsx": (b"a,y\n1,0\n", "cannot read it as an Excel workbook"),
}


def bad_file(folder: Path, name: str) -> Path:
    raw, _ = BAD[name]
    path = folder / name
    if name.startswith("truncated"):
        FORMATS[path.suffix[1:]](pd.read_csv(IRIS), path)
        raw = path.read_bytes()[: path.stat().st_size // 2]
    if name == "empty.xlsx":
        import openpyxl

        openpyxl.Workbook().save(path)
        return path
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_formats_damaged_file_is_one_line_naming_it_exit_3(tmp_path, name):
    bad_file(tmp_path, name)
    spec = iris_spec("{epochs: 1}").replace("path: iris.csv", f"path: {name}")
    (tmp_path / "spec.yaml").write_text(spec.replace("target: species", "target: y"))
    result = invoke("train", tmp_path / "spec.yaml")
    one_error_line(result, 3, name, BAD[name][1])


def test_a_missing_library_is_the_install_line_exit_2(tmp_path, monkeypatch):
    path = write_as(pd.read_csv(IRIS), tmp_path, "iris", "parquet")
    real = readers.importlib.util.find_spec
    monkeypatch.setattr(
        readers.importlib.util, "find_spec", lambda n: None if n == "pyarrow" else real(n)
    )
    (tmp_path / "spec.yaml").write_text(iris_spec("{epochs: 1}").replace("iris.csv", path.name))
    one_error_line(invoke("train", tmp_path / "spec.yaml"), 2, "pyarrow", '".[formats]"')


def test_a_sheet_is_chosen_by_name_with_a_did_you_mean(tmp_path, trained_csv):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"note": ["not the data"]}).to_excel(book, sheet_name="notes", index=False)
        pd.read_csv(IRIS).to_excel(book, sheet_name="flowers", index=False)
    spec = iris_spec("{epochs: 2, batch_size: 16}").replace("path: iris.csv", "path: book.xlsx")
    (tmp_path / "spec.yaml").write_text(
        spec.replace("target: species", "target: species, sheet: flowers")
    )
    assert invoke("train", tmp_path / "spec.yaml").exit_code == 0
    assert arrays(tmp_path / "out" / "model.h5") == arrays(trained_csv)
    shutil.rmtree(tmp_path / "out")
    (tmp_path / "spec.yaml").write_text(
        spec.replace("target: species", "target: species, sheet: flower")
    )
    one_error_line(invoke("train", tmp_path / "spec.yaml"), 3, "no sheet 'flower'", "'flowers'")


def test_rows_of_other_formats_are_named_as_they_number_them(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": ["p", "q", "p"]})
    frame.loc[1, "a"] = None
    for suffix, where in (("xlsx", "row 3 "), ("parquet", "row 2 "), ("jsonl", "line 2 ")):
        path = write_as(frame, tmp_path, "gap", suffix)
        spec = iris_spec("{epochs: 1}").replace(
            "path: iris.csv, target: species", f"path: {path.name}, target: y"
        )
        (tmp_path / "spec.yaml").write_text(spec)
        one_error_line(invoke("train", tmp_path / "spec.yaml"), 3, path.name, where)


def test_kind_table_is_kind_csv_and_checkpoints_still_say_csv(tmp_path, trained_csv):
    shutil.copy(IRIS, tmp_path / "iris.csv")
    model = train(tmp_path, "iris.csv", kind="table")
    assert arrays(model) == arrays(trained_csv)
    stored = model_io.load(model)
    assert stored.data["kind"] == "csv" and stored.encoder_state["kind"] == "csv"
    assert invoke("predict", model, IRIS).exit_code == 0


def test_init_profiles_a_parquet_table(tmp_path):
    path = write_as(pd.read_csv(IRIS), tmp_path, "iris", "parquet")
    result = invoke("init", path, "--output", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "spec.yaml").read_text()
    assert "path: iris.parquet" in text and "target: species" in text


def test_a_new_format_is_one_entry_in_the_reader_registry(tmp_path, monkeypatch, trained_csv):
    def read_pipes(path: Path, sheet: str | None) -> pd.DataFrame:
        return pd.read_csv(path, sep="|")

    monkeypatch.setitem(readers.READERS, ".pipes", Format("pipes", read_pipes))
    pd.read_csv(IRIS).to_csv(tmp_path / "iris.pipes", sep="|", index=False)
    assert arrays(train(tmp_path, "iris.pipes")) == arrays(trained_csv)


@pytest.mark.parametrize("suffix", ["parquet", "xlsx", "feather"])
def test_columns_and_unpacked_bytes_are_bounded_before_the_rows_are_read(
    tmp_path, monkeypatch, suffix
):
    path = write_as(pd.read_csv(IRIS), tmp_path, "iris", suffix)
    monkeypatch.setenv("NNCLI_MAX_COLUMNS", "3")
    with pytest.raises(DataError, match="has 5 columns; nncli reads at most 3"):
        read_table(path)
    monkeypatch.delenv("NNCLI_MAX_COLUMNS")
    monkeypatch.setenv("NNCLI_MAX_MEMORY", "1000")
    with pytest.raises(DataError, match="NNCLI_MAX_MEMORY=1000"):
        read_table(path)
