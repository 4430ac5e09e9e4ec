"""``nncli evaluate --json`` and ``--output FILE``: the metrics, per-class table and confusion
matrix as data; ``--output`` never lands on an input or an HDF5 file and says when it replaces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line, sha


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    (tmp_path / "iris.yaml").write_text(iris_spec("{epochs: 3, batch_size: 16}"))
    result = invoke("train", tmp_path / "iris.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return tmp_path / "out" / "model.h5"


def test_json_holds_metrics_classes_and_confusion(trained: Path):
    data = trained.parents[1] / "iris.csv"
    result = invoke("evaluate", trained, data, "--json", "--part", "all")
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert got["rows"] == 150 and set(got["metrics"]) == {"loss", "accuracy"}
    assert got["labels"] == ["setosa", "versicolor", "virginica"]
    assert [r["class"] for r in got["per_class"]] == got["labels"]
    assert [r["support"] for r in got["per_class"]] == [50, 50, 50]
    confusion = got["confusion"]
    assert [sum(row) for row in confusion] == [50, 50, 50]
    correct = sum(confusion[i][i] for i in range(3))
    assert correct / 150 == pytest.approx(got["metrics"]["accuracy"])


def test_output_writes_the_same_json_and_says_when_it_replaces(trained: Path, tmp_path: Path):
    data, target = trained.parents[1] / "iris.csv", tmp_path / "eval.json"
    first = invoke("evaluate", trained, data, "--output", target)
    assert first.exit_code == 0, first.stderr
    assert f"wrote {target}" in first.stderr and "confusion" in first.stdout  # tables too
    printed = json.loads(invoke("evaluate", trained, data, "--json").stdout)
    assert json.loads(target.read_text()) == printed
    again = invoke("evaluate", trained, data, "--output", target)
    assert f"replaced {target}" in again.stderr


@pytest.mark.parametrize("which", ["data", "checkpoint"])
def test_output_refuses_an_input_or_a_checkpoint(trained: Path, which: str):
    data = trained.parents[1] / "iris.csv"
    target = data if which == "data" else trained
    before = sha(target)
    result = invoke("evaluate", trained, data, "--output", target)
    one_error_line(result, 2, str(target))
    assert sha(target) == before


def test_output_refuses_any_hdf5_file(trained: Path, tmp_path: Path):
    other = tmp_path / "other.h5"
    other.write_bytes(trained.read_bytes())
    result = invoke("evaluate", trained, trained.parents[1] / "iris.csv", "--output", other)
    one_error_line(result, 2, "HDF5")
