"""Data hints where users go wrong: id-like columns, classification on a regression target, other
delimiters, a file of the wrong kind, --skip-bad leaving nothing, a missing data file named by its
spec key, and data that ends up empty. Each error is one line with exit 3 (or 2 for spec keys).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import IMAGE_SPEC, IRIS, csv_cfg, image_folder, invoke, iris_spec, one_error_line

from nncli import data
from nncli.data.table_encoder import TabularEncoder
from nncli.errors import DataError, SpecError


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def regression_table(tmp_path: Path, rows: int = 60) -> Path:
    """Columns id (p0000, p0001, ...: all distinct), colour (3 values), x (numbers), y (floats)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=rows).round(3)
    y = (2 * x + rng.normal(size=rows)).round(4)
    colours = np.array(["red", "green", "blue"])[np.arange(rows) % 3]
    lines = [f"p{i:04d},{colours[i]},{x[i]},{y[i]}" for i in range(rows)]
    return write(tmp_path, "id,colour,x,y\n" + "\n".join(lines) + "\n")


# -- 1. id-like text columns ---------------------------------------------------------------------


def test_an_id_like_text_column_is_warned_about_and_exclude_leaves_it_out(tmp_path: Path):
    path = regression_table(tmp_path)
    ds = data.load(csv_cfg(path, target="y"), tmp_path, 0, "mse")
    assert len(ds.warnings) == 1  # id, not colour (3 values) nor x (numbers)
    assert "column 'id' has 60 distinct values in 60 rows" in ds.warnings[0]
    assert "data.exclude: [id]" in ds.warnings[0] and str(path) in ds.warnings[0]
    assert any(name.startswith("id=") for name in ds.feature_names)
    ds = data.load(csv_cfg(path, target="y", exclude=["id"]), tmp_path, 0, "mse")
    assert ds.warnings == []
    assert ds.encoder.feature_columns == ["colour", "x"]


def test_a_short_or_repetitive_text_column_is_not_warned_about(tmp_path: Path):
    # 20 rows (not over 20) all distinct, and 60 rows with 12 distinct values (exactly 20%)
    for rows, distinct in ((20, 20), (60, 12)):
        names = [f"n{i % distinct}" for i in range(rows)]
        lines = [f"{name},{i % 2},{i}" for i, name in enumerate(names)]
        path = write(tmp_path, "name,label,x\n" + "\n".join(lines) + "\n")
        ds = data.load(csv_cfg(path, target="label"), tmp_path, 0, "cross_entropy")
        assert ds.warnings == [], (rows, distinct)


@pytest.mark.parametrize("categorical", [[], ["name"]])
def test_a_text_column_of_few_rows_a_value_is_warned_about(tmp_path: Path, categorical):
    # 60 rows, 13 names (over 20%: under 5 rows a name), text or listed in data.categorical
    lines = [f"n{i % 13},{i % 2},{i}" for i in range(60)]
    path = write(tmp_path, "name,label,x\n" + "\n".join(lines) + "\n")
    cfg = csv_cfg(path, target="label", categorical=categorical)
    ds = data.load(cfg, tmp_path, 0, "cross_entropy")
    assert len(ds.warnings) == 1
    assert "column 'name' has 13 distinct values in 60 rows (4.6 rows a value)" in ds.warnings[0]
    assert ds.warnings[0].endswith("Leave it out with data.exclude: [name]")


def test_exclude_names_are_checked_against_the_header_and_the_features(tmp_path: Path):
    path = regression_table(tmp_path)
    with pytest.raises(SpecError, match=r"column 'idd' not in data.csv \(did you mean 'id'\?\)"):
        data.load(csv_cfg(path, target="y", exclude=["idd"]), tmp_path, 0, "mse")
    with pytest.raises(SpecError, match="'x' is in both data.features and data.exclude"):
        data.load(csv_cfg(path, target="y", features=["x"], exclude=["x"]), tmp_path, 0, "mse")
    with pytest.raises(DataError, match="column 'y' is also the target"):
        data.load(csv_cfg(path, target="y", exclude=["y"]), tmp_path, 0, "mse")


def test_train_prints_the_id_warning_and_exclude_is_a_spec_key(tmp_path: Path):
    regression_table(tmp_path, rows=40)
    spec = write(
        tmp_path,
        "data: {kind: csv, path: data.csv, target: y}\n"
        "model: {layers: [{type: dense, units: auto}]}\n"
        "loss: mse\ntraining: {epochs: 1}\noutput: out/model.h5\n",
        "spec.yaml",
    )
    result = invoke("train", spec, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "nncli: warning: " in result.stderr and "data.exclude: [id]" in result.stderr
    result = invoke("train", spec, "--quiet", "--force", "--set", "data.exclude=[id]")
    assert result.exit_code == 0 and result.stderr == ""
    result = invoke("train", spec, "--quiet", "--force", "--set", "data.exclude=[idd]")
    one_error_line(result, 2, "data.exclude: column 'idd' not in data.csv (did you mean 'id'?)")


# -- 2. a classification loss on a regression target ---------------------------------------------


def test_cross_entropy_on_many_distinct_numbers_suggests_mse(tmp_path: Path):
    path = regression_table(tmp_path, rows=120)
    with pytest.raises(DataError) as err:
        data.load(csv_cfg(path, target="y", exclude=["id"]), tmp_path, 0, "cross_entropy")
    message = str(err.value)
    assert message.startswith(f"{path}: data.target: ")
    assert "target column 'y'" in message and "120 distinct numbers" in message
    assert "loss: mse" in message and "validation" not in message


def test_a_few_numeric_classes_are_still_classes(tmp_path: Path):
    lines = [f"{i},{i % 50}" for i in range(200)]  # 50 distinct numbers: the limit
    path = write(tmp_path, "x,label\n" + "\n".join(lines) + "\n")
    cfg = csv_cfg(path, target="label")
    assert data.load(cfg, tmp_path, 0, "cross_entropy").output_width == 50


# -- 3. other delimiters -------------------------------------------------------------------------


@pytest.mark.parametrize(("sep", "written"), [(";", ";"), ("\t", "\\t"), ("|", "|")])
def test_a_one_column_header_names_the_delimiter_it_seems_to_use(tmp_path, sep, written):
    path = write(tmp_path, IRIS.read_text().replace(",", sep))
    with pytest.raises(DataError) as err:
        data.load(csv_cfg(path), tmp_path, 0, "cross_entropy")
    message = str(err.value)
    assert "column 'species' not in data.csv" in message
    assert f"seems to use {written!r}" in message and f'data.delimiter: "{written}"' in message
    ds = data.load(csv_cfg(path, delimiter=sep), tmp_path, 0, "cross_entropy")
    plain = data.load(csv_cfg(IRIS), tmp_path, 0, "cross_entropy")
    np.testing.assert_array_equal(ds.parts["train"].x, plain.parts["train"].x)


def test_predict_and_evaluate_read_the_training_delimiter(tmp_path: Path):
    write(tmp_path, IRIS.read_text().replace(",", ";"), "iris.csv")
    spec = write(tmp_path, iris_spec("{epochs: 2}"), "spec.yaml")
    one_error_line(invoke("train", spec, "--quiet"), 3, 'data.delimiter: ";"', "spec.yaml:3:")
    result = invoke("train", spec, "--quiet", "--set", "data.delimiter=;")
    assert result.exit_code == 0, result.stderr
    model = tmp_path / "out" / "model.h5"
    result = invoke("predict", model, tmp_path / "iris.csv")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 151
    result = invoke("evaluate", model, tmp_path / "iris.csv", "--part", "all")
    assert result.exit_code == 0 and "(150 rows)" in result.stdout


def test_the_delimiter_is_stored_only_when_not_a_comma(tmp_path: Path):
    path = write(tmp_path, IRIS.read_text().replace(",", "|"))
    encoder = data.load(csv_cfg(path, delimiter="|"), tmp_path, 0, "cross_entropy").encoder
    state = encoder.to_state()
    assert state["delimiter"] == "|"
    assert TabularEncoder.from_state(state).read_frame(path).shape == (150, 5)
    # a checkpoint from before data.delimiter has no such key: it reads commas, as then
    del state["delimiter"]
    assert TabularEncoder.from_state(state).delimiter == ","
    comma = data.load(csv_cfg(IRIS), tmp_path, 0, "cross_entropy").encoder.to_state()
    assert "delimiter" not in comma  # so --resume of an older checkpoint sees no difference


@pytest.mark.parametrize("value", ["';;'", "'\"'", "''", "1"])
def test_a_delimiter_is_one_character(tmp_path: Path, value: str):
    shutil.copy(IRIS, tmp_path / "iris.csv")
    spec = write(tmp_path, iris_spec("{epochs: 1}"), "spec.yaml")
    result = invoke("validate", spec, "--set", f"data.delimiter={value}")
    assert result.exit_code == 2 and "data.delimiter: expected one character" in result.stderr


# -- 4. a file of the wrong kind -----------------------------------------------------------------


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    """A CSV model trained on iris.csv and an image model trained on the folder d."""
    shutil.copy(IRIS, tmp_path / "iris.csv")
    image_folder(tmp_path / "d")
    csv_spec = write(tmp_path, iris_spec("{epochs: 1}").replace("out/", "csv/"), "csv.yaml")
    image_spec = write(tmp_path, IMAGE_SPEC, "images.yaml")
    for spec in (csv_spec, image_spec):
        result = invoke("train", spec, "--quiet")
        assert result.exit_code == 0, result.stderr
    return {"csv": tmp_path / "csv" / "model.h5", "images": tmp_path / "out" / "model.h5"}


def test_an_image_or_a_folder_given_to_a_csv_model_is_named_as_such(models, tmp_path: Path):
    image = tmp_path / "d" / "dark" / "0.png"
    for command in ("predict", "evaluate"):
        one_error_line(
            invoke(command, models["csv"], image),
            3,
            f"{image} is an image, but this model reads CSV tables (trained on ",
            "iris.csv)",
        )
        one_error_line(invoke(command, models["csv"], tmp_path / "d"), 3, "is a folder, but")
    # an image without its extension is still recognised by its first bytes
    shutil.copy(image, tmp_path / "photo")
    one_error_line(invoke("predict", models["csv"], tmp_path / "photo"), 3, "is an image")


def test_a_csv_file_given_to_an_image_model_is_named_as_such(models, tmp_path: Path):
    table = tmp_path / "iris.csv"
    for command in ("predict", "evaluate"):
        one_error_line(
            invoke(command, models["images"], table),
            3,
            f"{table} is a CSV table, but this model reads images (trained on ",
        )
    # a damaged image keeps its own message, which names --skip-bad
    broken = write(tmp_path, b"\x89PNG\r\n\x1a\nbroken", "broken.png")
    one_error_line(invoke("predict", models["images"], broken), 3, "--skip-bad")


# -- 5. --skip-bad that leaves nothing -----------------------------------------------------------


def test_skip_bad_that_skips_every_file_is_a_data_error(models, tmp_path: Path):
    bad = tmp_path / "bad"
    for label in ("dark", "light"):
        write(tmp_path, b"\x89PNG\r\n\x1a\nbroken", "x.png")
        (bad / label).mkdir(parents=True)
        shutil.move(tmp_path / "x.png", bad / label / "x.png")
    expected = "--skip-bad left out every image: all 2 images unreadable (the first: "
    for command in ("predict", "evaluate"):
        result = invoke(command, models["images"], bad, "--skip-bad")
        assert result.stdout == ""
        one_error_line(result, 3, expected)
    spec = write(tmp_path, IMAGE_SPEC.replace("path: d", "path: bad"), "bad.yaml")
    result = invoke("train", spec, "--skip-bad", "--quiet", "--output", tmp_path / "b" / "m.h5")
    one_error_line(result, 3, expected)
    assert not (tmp_path / "b").exists()


# -- 6. a missing data file names its spec key ---------------------------------------------------


def test_a_missing_data_file_names_the_spec_key_and_a_close_match(tmp_path: Path):
    shutil.copy(IRIS, tmp_path / "iris.csv")
    spec = write(tmp_path, iris_spec("{epochs: 1}").replace("iris.csv", "iriss.csv"), "spec.yaml")
    for command in ("train", "validate"):
        one_error_line(
            invoke(command, spec),
            3,
            "spec.yaml:3:25: data.path: file not found: ",
            "iriss.csv (did you mean 'iris.csv'?)",
        )
    spec.write_text(iris_spec("{epochs: 1}").replace("0.2}", "0.2, validation: nope/v.csv}"))
    one_error_line(invoke("train", spec), 3, "spec.yaml:3:", "data.validation: file not found: ")


# -- 7. data that ends up empty ------------------------------------------------------------------


def test_nothing_left_after_missing_drop_names_the_file_and_the_count(tmp_path: Path):
    path = write(tmp_path, "x,note,species\n1,,a\n2,,b\n3,,a\n")
    with pytest.raises(DataError) as err:
        data.load(csv_cfg(path, missing="drop"), tmp_path, 0, "cross_entropy")
    assert str(err.value).startswith(f"{path}: no rows left after dropping all 3 rows")
    assert "'note'" in str(err.value)


def test_an_empty_text_file_and_a_short_series_name_the_file(tmp_path: Path):
    empty = write(tmp_path, "", "empty.txt")
    text = dict(kind="text", level="char", sequence_length=4, stride=4)
    text.update(validation_split=0.1, max_chars=None)
    with pytest.raises(DataError, match=f"{empty}: the file holds no text"):
        data.load(csv_cfg(empty, **text), tmp_path, 0, "cross_entropy")
    short = write(tmp_path, "t,a\n1,1.0\n2,2.0\n", "short.csv")
    series = dict(kind="timeseries", columns=["a"], target="a", window=5, horizon=1, stride=1)
    with pytest.raises(DataError, match=f"{short}: data.window: .* the series has 2"):
        data.load(csv_cfg(short, **series), tmp_path, 0, "mse")


def test_sequences_take_exclude_and_delimiter(tmp_path: Path):
    rows = [f"s{i // 3};{i % 3};{i * 0.5};{i // 3 % 2};n{i}" for i in range(18)]
    path = write(tmp_path, "id;t;x;label;note\n" + "\n".join(rows) + "\n")
    cfg = dict(kind="sequences", id="id", order="t", target="label", target_per="sequence")
    cfg.update(exclude=["note"], delimiter=";")
    ds = data.load(csv_cfg(path, **cfg), tmp_path, 0, "cross_entropy")
    assert ds.feature_names == ["x"] and ds.parts["train"].x.shape == (6, 3, 1)
    state = ds.encoder.to_state()
    assert data.encoder_from_state(state).read_frame(path).shape == (18, 5)
