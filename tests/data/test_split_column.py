"""``data.split_column`` (issue 23): a table that ships its own split (GunPoint's train/test)
keeps it; the column is not a feature, its values are train, validation or test, and it takes
the place of the random split (``validation_split`` may draw validation rows from the rows it
marks train). ``evaluate --part`` and ``nncli init`` know it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import csv_cfg, invoke, iris_spec, one_error_line

from nncli import data
from nncli.checkpoint import model as model_io
from nncli.data.split import part_size
from nncli.errors import DataError

MARKS = ["train"] * 10 + ["test"] * 20  # GunPoint-like: a small official train part


def gun_point(folder: Path, marks: list[str] = MARKS, name: str = "gun.csv") -> Path:
    """A table of 30 rows: n (the row number), two signals, a class, and the split column."""
    rng = np.random.default_rng(0)
    lines = ["n,a,b,class,split"]
    for n, mark in enumerate(marks):
        label = "gun" if n % 2 else "point"
        a, b = rng.normal(size=2) + (1.5 if label == "gun" else 0.0)
        lines.append(f"{n},{a:.4f},{b:.4f},{label},{mark}")
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def loaded(path: Path, **settings) -> data.Dataset:
    cfg = csv_cfg(path, target="class", normalize="none", split_column="split", **settings)
    return data.load(cfg, path.parent, 0, "cross_entropy")


def rows(x: np.ndarray | None) -> list[int]:
    return [] if x is None else sorted(int(v) for v in x[:, 0])  # the n column, unscaled


def test_the_column_gives_each_row_its_part_and_is_no_feature(tmp_path: Path):
    ds = loaded(gun_point(tmp_path))
    assert rows(ds.parts["train"].x) == list(range(10)) and rows(ds.parts["test"].x) == list(
        range(10, 30)
    )
    assert "validation" not in ds.parts
    assert ds.feature_names == ["n", "a", "b"]  # not split=train, split=test


def test_validation_split_draws_from_the_rows_marked_train(tmp_path: Path):
    ds = loaded(gun_point(tmp_path), validation_split=0.2)
    assert len(ds.parts["validation"].x) == part_size(0.2, 10)
    assert sorted(rows(ds.parts["train"].x) + rows(ds.parts["validation"].x)) == list(range(10))
    assert rows(ds.parts["test"].x) == list(range(10, 30))
    again = loaded(gun_point(tmp_path), validation_split=0.2)  # seeded: the same rows
    assert rows(again.parts["validation"].x) == rows(ds.parts["validation"].x)


def test_any_case_is_read_and_a_bad_value_names_its_line(tmp_path: Path):
    marks = ["TRAIN"] * 10 + ["Validation"] * 5 + ["test"] * 15
    ds = loaded(gun_point(tmp_path, marks))
    assert (len(ds.parts["train"].x), len(ds.parts["validation"].x), len(ds.parts["test"].x)) == (
        10,
        5,
        15,
    )
    with pytest.raises(DataError) as caught:
        loaded(gun_point(tmp_path, [*MARKS[:3], "tset", *MARKS[4:]]))
    message = str(caught.value)
    assert "gun.csv" in message and "line 5" in message and "'tset'" in message
    assert "expected train, validation or test" in message
    with pytest.raises(DataError, match="marks no train rows"):
        loaded(gun_point(tmp_path, ["test"] * 30))
    with pytest.raises(DataError, match="marks 5 rows validation"):
        loaded(gun_point(tmp_path, marks), validation_split=0.2)


def spec(more: str) -> str:
    """The small iris spec of helpers.py on gun.csv, split by its column (and ``more``)."""
    data = "{kind: csv, path: iris.csv, target: species, validation_split: 0.2}"
    return iris_spec("{epochs: 3, batch_size: 4}").replace(
        data, f"{{kind: csv, path: gun.csv, target: class, split_column: split{more}}}"
    )


@pytest.mark.parametrize(
    "more, field",
    [(", test_split: 0.2", "data.test_split"), (", validation: other.csv", "data.validation")],
)
def test_a_spec_that_also_splits_otherwise_is_refused(tmp_path: Path, more: str, field: str):
    gun_point(tmp_path)
    gun_point(tmp_path, name="other.csv")
    (tmp_path / "spec.yaml").write_text(spec(more))
    one_error_line(invoke("validate", tmp_path / "spec.yaml"), 2, field, "split_column")


def test_trains_and_evaluate_scores_the_marked_test_rows(tmp_path: Path):
    gun_point(tmp_path)
    (tmp_path / "spec.yaml").write_text(spec(", validation_split: 0.2"))
    trained = invoke("train", tmp_path / "spec.yaml", "--quiet")
    assert trained.exit_code == 0, trained.stderr
    model = tmp_path / "out" / "model.h5"
    result = invoke("evaluate", model, tmp_path / "gun.csv", "--json")
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)
    assert (got["part"], got["rows"], got["rows_in_file"]) == ("test", 20, 30)
    tolerance = 64 * float(np.finfo(np.float32).eps)
    test_loss = model_io.load(model).training["test_loss"]
    assert got["metrics"]["loss"] == pytest.approx(test_loss, rel=tolerance)


def test_init_keeps_a_split_column(tmp_path: Path):
    gun_point(tmp_path)
    spec = tmp_path / "gun.yaml"
    result = invoke("init", tmp_path / "gun.csv", "--target", "class", "--output", spec)
    assert result.exit_code == 0, result.stderr
    text = spec.read_text()
    assert "split_column: split" in text and "categorical" not in text, text
    assert "validation_split: 0.2" in text  # none marked validation: drawn from train rows
    result = invoke("train", spec, "--smoke", "--quiet")
    assert result.exit_code == 0, result.stderr
