"""The table encoder (nncli/data/table_encoder.py): fitting, the predict-side transform,
decoding outputs, and the checkpoint state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, PENGUINS, assert_close_float32, csv_cfg

from nncli.data import encoder_from_state, load
from nncli.data.table_encoder import CategoricalColumn, NumericColumn, TabularEncoder
from nncli.errors import CheckpointError, DataError, ShapeError, SpecError

IRIS_HEADER = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm"


def write(tmp_path: Path, text: str, name: str = "new.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def iris():
    return load(csv_cfg(IRIS, validation_split=0.2), Path("."), 0, "cross_entropy")


@pytest.fixture(scope="module")
def penguins():
    cfg = csv_cfg(PENGUINS, missing="fill", categorical=["year"], validation_split=0.2)
    return load(cfg, Path("."), 0, "cross_entropy")


# -- columns -------------------------------------------------------------------------------------


def test_numeric_column_scaling_and_constant_columns():
    values = np.array([1.0, 2.0, 3.0, 6.0])
    standard = NumericColumn.fit("a", values, "standard")
    assert (standard.offset, standard.scale, standard.fill) == (3.0, values.std(), 3.0)
    minmax = NumericColumn.fit("a", values, "minmax")
    np.testing.assert_allclose(minmax.encode(values)[:, 0], [0, 0.2, 0.4, 1.0])
    for normalize in ("standard", "minmax"):
        constant = NumericColumn.fit("c", np.full(4, 0.1), normalize)
        assert constant.scale == 1.0  # a zero spread would divide by zero
    with pytest.raises(DataError, match="no values in the training part"):
        NumericColumn.fit("e", np.array([]), "standard")


def test_categorical_column_sorts_spells_numbers_once_and_fills_with_the_mode():
    text = CategoricalColumn.fit("t", np.array(["b", "c", "a", "c", "b"], dtype=object))
    assert text.categories == ["a", "b", "c"] and text.fill == "b"  # tie b/c -> first sorted
    years = CategoricalColumn.fit("y", np.array(["2010", "2009.0", "1e3", "2009"], dtype=object))
    assert years.categories == ["1000", "2009", "2010"] and years.numeric
    codes = years.codes(np.array(["2009.00", "2010", "1999", "x"], dtype=object))
    np.testing.assert_array_equal(codes, [1, 2, -1, -1])
    np.testing.assert_array_equal(years.encode(codes), [[0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])


# -- predict side --------------------------------------------------------------------------------


def test_transform_of_a_file_without_the_target_matches_training(iris, tmp_path):
    path = write(tmp_path, IRIS_HEADER + "\n5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5\n")
    x = iris.encoder.transform(path)
    state = iris.encoder.to_state()["numeric"]
    expected = (np.array([[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]) - state["offset"]) / state[
        "scale"
    ]
    assert x.dtype == np.float32
    assert_close_float32(x, expected, magnitude=expected)  # float64, rounded to float32 once
    # columns in another order, and extra ones, are fine
    other = write(
        tmp_path,
        "id,petal_width_cm,petal_length_cm,sepal_width_cm,sepal_length_cm\n7,0.2,1.4,3.5,5.1\n",
        "other.csv",
    )
    np.testing.assert_array_equal(iris.encoder.transform(other), x[:1])


def test_missing_feature_columns_are_listed(iris, tmp_path):
    path = write(tmp_path, "sepal_length_cm,petal_length_cm\n5.1,1.4\n")
    with pytest.raises(
        DataError, match="missing feature columns 'sepal_width_cm', 'petal_width_cm'"
    ):
        iris.encoder.transform(path)


def test_text_in_a_numeric_column_names_value_line_and_column(iris, tmp_path):
    path = write(tmp_path, IRIS_HEADER + "\n5.1,3.5,1.4,0.2\n5.0,abc,1.4,0.2\n")
    with pytest.raises(DataError, match=r"'sepal_width_cm' expects numbers, found 'abc' on line 3"):
        iris.encoder.transform(path)


def test_unseen_categories_error_or_encode_as_zeros(penguins, tmp_path):
    header = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
    rows = [f"{island},40,18,190,3800,male,2008\n" for island in "ABCDEFG"] + [
        "Dream,40,18,190,3800,male,2007.0\n"
    ]
    path = write(tmp_path, header + "".join(rows))
    with pytest.raises(DataError) as err:
        penguins.encoder.transform(path)
    message = str(err.value)
    assert "'island'" in message and "'A', 'B', 'C', 'D', 'E', ..." in message
    assert "lines 2, 3, 4, 5, 6, ... (7 of 8 rows)" in message
    assert err.value.hint.text == "--unknown ignore encodes them as all zeros"
    x = penguins.encoder.transform(path, unknown="ignore")
    names = penguins.feature_names
    island = [names.index(f"island={i}") for i in ("Biscoe", "Dream", "Torgersen")]
    np.testing.assert_array_equal(x[:, island], [[0, 0, 0]] * 7 + [[0, 1, 0]])
    np.testing.assert_array_equal(x[-1, names.index("year=2007")], 1.0)  # "2007.0" is 2007
    with pytest.raises(SpecError, match="unknown"):
        penguins.encoder.transform(path, unknown="skip")


def test_missing_values_at_predict_follow_the_stored_policy(iris, penguins, tmp_path):
    path = write(tmp_path, IRIS_HEADER + "\n5.1,3.5,1.4,0.2\n5.0,,1.4,0.2\n")
    with pytest.raises(DataError, match=r"'sepal_width_cm' has missing values on line 3 .*error"):
        iris.encoder.transform(path)
    frame = iris.encoder.read_frame(path)
    np.testing.assert_array_equal(iris.encoder.complete_rows(frame), [True, False])
    header = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
    new = write(tmp_path, header + "Dream,,18,190,3800,,2008\n", "p.csv")
    x = penguins.encoder.transform(new)
    state = penguins.encoder.to_state()
    names = penguins.feature_names
    assert x[0, names.index("bill_length_mm")] == 0.0  # the training mean, standardised
    fill = state["categorical"]["fill"][state["categorical"]["columns"].index("sex")]
    assert x[0, names.index(f"sex={fill}")] == 1.0


def test_targets_encode_a_labelled_file(iris, tmp_path):
    path = write(tmp_path, IRIS_HEADER + ",species\n5.1,3.5,1.4,0.2,virginica\n5,3,1,0,setosa\n")
    frame = iris.encoder.read_frame(path)
    np.testing.assert_array_equal(iris.encoder.targets(frame), [[0, 0, 1], [1, 0, 0]])
    bad = write(tmp_path, IRIS_HEADER + ",species\n5.1,3.5,1.4,0.2,tulip\n", "bad.csv")
    with pytest.raises(DataError, match=r"'species' has values not seen in training: 'tulip'"):
        iris.encoder.targets(iris.encoder.read_frame(bad))
    with pytest.raises(DataError, match="missing target column 'species'"):
        iris.encoder.targets(iris.encoder.read_frame(path).drop(columns="species"))


def test_read_frame_keeps_rows_for_passthrough(iris, tmp_path):
    path = write(tmp_path, "id," + IRIS_HEADER + "\nA7,5.1,3.5,1.4,0.2\nB2,6,3,5,2\n")
    frame = iris.encoder.read_frame(path)
    assert list(frame["id"]) == ["A7", "B2"] and len(iris.encoder.transform(frame)) == 2


# -- decoding ------------------------------------------------------------------------------------


def test_decode_cross_entropy_gives_labels_and_probabilities(iris):
    proba = np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]])
    out = iris.encoder.decode(proba, proba=True)
    assert list(out) == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    assert list(out["prediction"]) == ["versicolor", "setosa"]
    np.testing.assert_array_equal(out["proba_virginica"], [0.2, 0.1])
    assert list(iris.encoder.decode(proba)) == ["prediction"]
    with pytest.raises(ShapeError, match=r"\(N, 3\)"):
        iris.encoder.decode(proba[:, :2])


def test_binary_cross_entropy_encodes_and_decodes(tmp_path):
    path = write(tmp_path, "x,species\n1,yes\n2,no\n3,yes\n4,no\n", "b.csv")
    encoder = load(csv_cfg(path), tmp_path, 0, "binary_cross_entropy").encoder
    frame = encoder.read_frame(path)
    np.testing.assert_array_equal(encoder.targets(frame), [[1], [0], [1], [0]])
    out = encoder.decode(np.array([[0.9], [0.2]]), proba=True)
    assert list(out["prediction"]) == ["yes", "no"]
    np.testing.assert_allclose(out["proba_no"], [0.1, 0.8])
    np.testing.assert_allclose(out["proba_yes"], [0.9, 0.2])


def test_regression_decode_names_one_column_per_target():
    one = load(csv_cfg(IRIS, target="petal_width_cm"), Path("."), 0, "mse").encoder
    assert list(one.decode(np.array([[0.3]]), proba=True)) == ["prediction"]
    targets = ["petal_length_cm", "petal_width_cm"]
    two = load(csv_cfg(IRIS, target=targets), Path("."), 0, "mae").encoder
    out = two.decode(np.array([[4.0, 1.5], [1.2, 0.2]]))
    assert list(out) == ["prediction_petal_length_cm", "prediction_petal_width_cm"]
    np.testing.assert_array_equal(out["prediction_petal_width_cm"], [1.5, 0.2])  # unscaled


# -- state ---------------------------------------------------------------------------------------


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(isinstance(v, (str, int, float)) for v in value)
    return isinstance(value, (str, int, float, np.ndarray))


def _as_checkpoint_gives_back(value):
    """What an HDF5 round trip may hand back: lists of strings as arrays of bytes."""
    if isinstance(value, dict):
        return {k: _as_checkpoint_gives_back(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], str):
        return np.array([v.encode() for v in value])
    if isinstance(value, str):
        return value.encode()
    return value


@pytest.mark.parametrize("checkpointed", [False, True])
def test_state_round_trip_gives_identical_transform(penguins, tmp_path, checkpointed):
    state = penguins.encoder.to_state()
    assert _plain(state)
    if checkpointed:
        state = _as_checkpoint_gives_back(state)
    rebuilt = encoder_from_state(state)
    assert isinstance(rebuilt, TabularEncoder)
    assert rebuilt.feature_names == penguins.feature_names and rebuilt.labels == penguins.labels
    assert rebuilt.missing == "fill" and rebuilt.to_state()["features"] == state_features(state)
    frame = penguins.encoder.read_frame(PENGUINS)
    np.testing.assert_array_equal(rebuilt.transform(frame), penguins.encoder.transform(frame))
    np.testing.assert_array_equal(rebuilt.targets(frame), penguins.encoder.targets(frame))
    proba = np.eye(3)[[2, 0]]
    assert list(rebuilt.decode(proba)["prediction"]) == ["Gentoo", "Adelie"]


def state_features(state) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else v for v in state["features"]]


def test_regression_state_round_trip():
    ds = load(csv_cfg(IRIS, target=["petal_length_cm", "petal_width_cm"]), Path("."), 0, "mse")
    rebuilt = encoder_from_state(_as_checkpoint_gives_back(ds.encoder.to_state()))
    frame = ds.encoder.read_frame(IRIS)
    np.testing.assert_array_equal(rebuilt.transform(frame), ds.parts["train"].x)
    np.testing.assert_array_equal(rebuilt.targets(frame), ds.parts["train"].y)
    assert rebuilt.labels is None and rebuilt.output_width == 2


def test_unknown_encoder_kind_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="'parquet'"):
        encoder_from_state({"kind": "parquet"})
