"""``Predictor``: a checkpoint read once, applied to files, frames and records alike."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import DATASETS, ROOT, assert_close_float32, invoke, iris_spec, text_spec

import nncli.checkpoint
from nncli.commands.evaluate import evaluate_file
from nncli.commands.predict import predict_files
from nncli.commands.predictor import Predictor
from nncli.errors import DataError

SPECS = {  # name -> (spec in models/, data set, epochs)
    "penguins": ("penguins.yaml", "penguins.csv", 1),
    "walks": ("walks-gru.yaml", "walks.csv", 1),
    "sunspots": ("sunspots-lstm.yaml", "sunspots_yearly.csv", 1),
}
SAMPLE = {"iris": 12, "penguins": 40, "walks": 90, "sunspots": 30}  # data rows predicted from


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (checkpoint, a sample of its data set's rows as a CSV file)."""
    root = tmp_path_factory.mktemp("predictor")
    (root / "iris.csv").write_bytes((DATASETS / "iris.csv").read_bytes())
    (root / "iris.yaml").write_text(iris_spec("{epochs: 2, batch_size: 16}"))
    found = {"iris": (root / "iris.yaml", root / "out" / "model.h5", "iris.csv")}
    for name, (spec, data, epochs) in SPECS.items():
        text = (ROOT / "models" / spec).read_text().replace("../datasets/", "")
        (root / f"{name}.yaml").write_text(text.replace("epochs:", f"epochs: {epochs} #"))
        (root / data).write_bytes((DATASETS / data).read_bytes())
        found[name] = (root / f"{name}.yaml", root / f"{name}.h5", data)
    out = {}
    for name, (spec, checkpoint, data) in found.items():
        result = invoke("train", spec, "--quiet", "--output", checkpoint)
        assert result.exit_code == 0, result.stderr
        lines = (root / data).read_text().splitlines(keepends=True)
        sample = root / f"{name}.sample.csv"
        sample.write_text("".join(lines[: SAMPLE[name] + 1]))
        out[name] = (checkpoint, sample)
    return out


@pytest.fixture
def loads(monkeypatch) -> list[Path]:
    """Every checkpoint file read from here on (``nncli.checkpoint.load``), in order."""
    read, real = [], nncli.checkpoint.load

    def counted(path, *args, **kwargs):
        read.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(nncli.checkpoint, "load", counted)
    return read


def rows_of(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows as records of text, as a JSON client that copies cells would send."""
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def typed(records: list[dict[str, str]]) -> list[dict[str, object]]:
    """The same records as JSON types them: numbers as numbers, empty cells as null."""

    def value(text: str) -> object:
        if text == "":
            return None
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in text else number

    return [{key: value(text) for key, text in record.items()} for record in records]


def test_one_read_of_the_checkpoint_serves_every_call(models, loads):
    checkpoint, sample = models["iris"]
    predictor = Predictor.load(checkpoint)
    assert loads == [checkpoint]
    first = predictor.predict_files([sample], proba=True)
    second = predictor.predict_files([sample, sample])
    predictor.predict_records(rows_of(sample))
    predictor.predict_frame(pd.read_csv(sample))
    predictor.read_labelled(sample)
    assert loads == [checkpoint]  # five calls, the file read once
    assert len(second) == 2 * len(first) == 2 * SAMPLE["iris"]
    # each command reads its checkpoint once
    for command in (
        lambda: predict_files(checkpoint, [sample, sample]),
        lambda: evaluate_file(checkpoint, sample, part=None),
        lambda: evaluate_file(checkpoint, checkpoint.parents[1] / "iris.csv", part="validation"),
    ):
        loads.clear()
        command()
        assert loads == [checkpoint]


def test_plot_reads_the_checkpoint_once_for_its_confusion_matrix(models, loads, tmp_path):
    """It read it twice: once to plot, again inside evaluate for the confusion matrix."""
    pytest.importorskip("matplotlib")
    checkpoint, sample = models["iris"]
    result = invoke("plot", checkpoint, "--data", sample, "--output", tmp_path / "p.png")
    assert result.exit_code == 0, result.stderr
    assert loads == [checkpoint]


@pytest.mark.parametrize("name", ["iris", "penguins", "walks", "sunspots"])
def test_records_and_frames_predict_what_the_file_does(models, name):
    """Text records, typed (JSON) records and a pandas frame of the rows of a file give the
    file's predictions exactly: tables with missing values and categories, sequences, a
    series."""
    checkpoint, sample = models[name]
    predictor = Predictor.load(checkpoint)
    expected = predictor.predict_files([sample], proba=True)
    assert len(expected) and "prediction" in "".join(expected.columns)
    for given in (rows_of(sample), typed(rows_of(sample))):
        done = predictor.predict_records(given)
        pd.testing.assert_frame_equal(done.table(proba=True), expected)
    frame = pd.read_csv(sample)  # pandas' own types: numbers, NaN for an empty cell
    pd.testing.assert_frame_equal(predictor.predict_frame(frame).table(proba=True), expected)
    assert frame.attrs == {}  # the caller's frame is left as it was


def test_predictions_hold_outputs_and_probabilities_summing_to_one(models):
    checkpoint, sample = models["iris"]
    predictor = Predictor.load(checkpoint)
    records = rows_of(sample)
    done = predictor.predict_records(records, keep=["species"])
    labels = predictor.labels
    assert list(done.probabilities) == [f"proba_{label}" for label in labels]
    p = np.stack(list(done.probabilities.values()), axis=1)
    np.testing.assert_array_equal(p, done.outputs)  # softmax outputs, decoded in order
    assert_close_float32(p.sum(axis=1), np.ones(len(p)), terms=len(labels) + 1)
    np.testing.assert_array_equal(
        done.columns["prediction"], np.array(labels, dtype=object)[p.argmax(axis=1)]
    )
    assert list(done.table()) == ["species", "prediction"]  # --proba's columns only asked for
    sent = json.loads(json.dumps(done.records()))  # plain values, as a server would send them
    assert [r["species"] for r in sent] == [r["species"] for r in records]
    assert sent[0] == {
        "species": records[0]["species"],
        "prediction": done.columns["prediction"][0],
        **{k: float(v[0]) for k, v in done.probabilities.items()},
    }


@pytest.mark.parametrize(
    "name, column, bad, piece",
    [
        ("iris", "sepal_length_cm", "abc", "expects numbers, found 'abc'"),
        ("penguins", "island", "Atlantis", "values not seen in training: 'Atlantis'"),
    ],
)
def test_a_bad_record_gets_the_error_of_a_bad_file_row(models, tmp_path, name, column, bad, piece):
    """The file's one line, its place the records and its row ``records[i]`` (counted from 0)
    rather than the file and its line (the header is line 1)."""
    checkpoint, sample = models[name]
    predictor = Predictor.load(checkpoint)
    records = rows_of(sample)[:4]
    records[2][column] = bad
    broken = tmp_path / "broken.csv"
    with open(broken, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    with pytest.raises(DataError) as from_file:
        predictor.predict_files([broken])
    with pytest.raises(DataError) as from_records:
        predictor.predict_records(records)
    assert piece in str(from_file.value) and "line 4 (1 of 4 rows)" in str(from_file.value)
    expected = str(from_file.value).replace(str(broken), "records")
    assert str(from_records.value) == expected.replace("line 4", "records[2]")
    assert from_records.value.exit_code == from_file.value.exit_code == 3
    assert from_records.value.hint == from_file.value.hint
    frame = pd.DataFrame(records).set_index(pd.Index([10, 11, 12, 13]))
    with pytest.raises(DataError, match=r"^frame: .* on frame\[12\] \(1 of 4 rows\)"):
        predictor.predict_frame(frame)


def test_records_that_are_no_table_are_refused_by_name(models, tmp_path):
    checkpoint, _ = models["iris"]
    predictor = Predictor.load(checkpoint)
    for records, message in [
        ({"sepal_length_cm": 5.1}, "records: expected a list of {column: value} records, got dict"),
        ([], "records: expected at least one record, got none"),
        ([{"a": 1}, [5.1, 3.5]], "records[1]: expected a {column: value} record, got list"),
        ([{"species": "setosa"}], "missing feature columns 'sepal_length_cm'"),
        ([{"sepal_length_cm": 5.1}], "missing feature columns 'sepal_width_cm'"),
    ]:
        with pytest.raises(DataError) as info:
            predictor.predict_records(records)
        assert message in str(info.value)
    with pytest.raises(DataError, match="--keep column 'id' is not in the records"):
        predictor.predict_records(rows_of(models["iris"][1]), keep=["id"])
    with pytest.raises(DataError, match="expected a pandas DataFrame, got list"):
        predictor.predict_frame([{"sepal_length_cm": 5.1}])


def test_a_model_of_text_takes_no_records(tmp_path):
    layers = "[{type: lstm, units: 4, return_sequences: true}, {type: dense, units: auto}]"
    spec = text_spec(tmp_path, "level: char, sequence_length: 8", layers)
    result = invoke("train", spec, "--quiet")
    assert result.exit_code == 0, result.stderr
    predictor = Predictor.load(tmp_path / "out" / "model.h5")
    trained = f"(trained on {tmp_path.name}/text.txt)"
    for call, what in [
        (lambda: predictor.predict_records([{"text": "the cat"}]), "records"),
        (lambda: predictor.predict_frame(pd.DataFrame({"text": ["the cat"]})), "a data frame"),
    ]:
        with pytest.raises(DataError) as info:
            call()
        assert str(info.value) == (
            f"predicting from {what} takes a model of tables; this model reads text files {trained}"
        )
        assert info.value.exit_code == 3
