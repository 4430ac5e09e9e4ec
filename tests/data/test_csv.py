"""CSV loading: reading, column checks, missing values, splits, and the arrays load() returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, PENGUINS, assert_close_float32, csv_cfg

from nncli.data import load
from nncli.data.csv_reader import read_table
from nncli.data.split import split_rows
from nncli.errors import DataError, SpecError


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# -- iris and penguins ---------------------------------------------------------------------------


def test_iris_loads_with_one_hot_species_and_stratified_split():
    ds = load(csv_cfg(IRIS, validation_split=0.2), Path("."), seed=0, loss="cross_entropy")
    assert ds.task == "classification"
    assert ds.labels == ["setosa", "versicolor", "virginica"]
    assert ds.parts["train"].x.shape == (120, 4) and ds.parts["validation"].x.shape == (30, 4)
    assert ds.parts["train"].x.dtype == np.float32 and ds.parts["train"].y.dtype == np.float32
    assert ds.input_shape == (4,) and ds.output_width == 3
    assert "test" not in ds.parts
    np.testing.assert_array_equal(ds.parts["train"].y.sum(axis=1), 1.0)
    # 50 per class: 10 of each go to validation, 40 stay for training
    np.testing.assert_array_equal(ds.parts["validation"].y.sum(axis=0), [10, 10, 10])
    np.testing.assert_array_equal(ds.parts["train"].y.sum(axis=0), [40, 40, 40])
    assert ds.feature_names == [
        "sepal_length_cm",
        "sepal_width_cm",
        "petal_length_cm",
        "petal_width_cm",
    ]


def test_standardisation_uses_the_training_rows_only():
    ds = load(csv_cfg(IRIS, validation_split=0.3), Path("."), seed=3, loss="cross_entropy")
    # standardised in float64, stored as float32 (one rounding each), summed over the rows
    rows, reach = len(ds.parts["train"].x), np.abs(ds.parts["train"].x).max()
    assert_close_float32(ds.parts["train"].x.mean(axis=0), np.zeros(4), rows + 1, magnitude=reach)
    assert_close_float32(
        ds.parts["train"].x.std(axis=0), np.ones(4), 2 * rows + 4, magnitude=reach**2
    )
    # the validation rows were not used
    assert np.abs(ds.parts["validation"].x.mean(axis=0)).max() > 1e-3
    state = ds.encoder.to_state()["numeric"]
    raw_train = ds.parts["train"].x * state["scale"] + state["offset"]
    raw_val = ds.parts["validation"].x * state["scale"] + state["offset"]
    full = read_table(IRIS)["sepal_length_cm"].astype(float).to_numpy()
    # the two parts are the file's rows; the statistics are the training rows' own
    # a float32 rounding of x, times the scale: within eps of |x| * scale + |offset|
    reach = np.abs(ds.parts["train"].x[:, 0]).max() * state["scale"][0] + abs(state["offset"][0])
    assert_close_float32(np.sort(np.r_[raw_train[:, 0], raw_val[:, 0]]), np.sort(full), 2, reach)
    assert_close_float32(raw_train[:, 0].mean(), state["offset"][0], 2, reach)
    assert_close_float32(raw_train[:, 0].std(), state["scale"][0], 4, reach)
    assert abs(state["offset"][0] - full.mean()) > 1e-4


def test_minmax_and_none_normalisation():
    mm = load(csv_cfg(IRIS, normalize="minmax"), Path("."), 0, "cross_entropy")
    assert_close_float32(mm.parts["train"].x.min(axis=0), np.zeros(4), magnitude=1.0)
    assert_close_float32(mm.parts["train"].x.max(axis=0), np.ones(4))
    raw = load(csv_cfg(IRIS, normalize="none"), Path("."), 0, "cross_entropy")
    first = [5.1, 3.5, 1.4, 0.2]
    assert_close_float32(raw.parts["train"].x[0], first, magnitude=first)  # one rounding each


def test_penguins_text_features_are_one_hot_with_sorted_categories():
    cfg = csv_cfg(PENGUINS, missing="drop", categorical=["year"], validation_split=0.25)
    ds = load(cfg, Path("."), seed=0, loss="cross_entropy")
    assert ds.labels == ["Adelie", "Chinstrap", "Gentoo"]
    assert ds.feature_names == [
        "island=Biscoe",
        "island=Dream",
        "island=Torgersen",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex=female",
        "sex=male",
        "year=2007",
        "year=2008",
        "year=2009",
    ]
    # 11 rows with a missing value dropped
    assert len(ds.parts["train"].x) + len(ds.parts["validation"].x) == 333
    onehot = ds.parts["train"].x[:, [0, 1, 2]]
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)


def test_categories_sort_numbers_as_numbers(tmp_path):
    rows = "".join(f"{c},{i % 2}\n" for i, c in enumerate(["10", "9", "2", "10.0", "2", "9"] * 2))
    path = write(tmp_path, "code,label\n" + rows)
    ds = load(csv_cfg(path, target="label", categorical=["code"]), tmp_path, 0, "cross_entropy")
    assert ds.feature_names == ["code=2", "code=9", "code=10"]  # and "10.0" is "10"
    assert ds.labels == ["0", "1"]
    np.testing.assert_array_equal(ds.parts["train"].x[[0, 3]], [[0, 0, 1], [0, 0, 1]])


# -- splits --------------------------------------------------------------------------------------


def test_same_seed_same_split_other_seed_other_split_global_seed_ignored():
    cfg = csv_cfg(IRIS, validation_split=0.2, test_split=0.1)
    np.random.seed(1)
    a = load(cfg, Path("."), seed=5, loss="cross_entropy")
    np.random.seed(2)
    b = load(cfg, Path("."), seed=5, loss="cross_entropy")
    c = load(cfg, Path("."), seed=6, loss="cross_entropy")
    np.testing.assert_array_equal(a.parts["validation"].x, b.parts["validation"].x)
    np.testing.assert_array_equal(a.parts["test"].x, b.parts["test"].x)
    assert a.parts["validation"].x.shape == c.parts["validation"].x.shape and not np.array_equal(
        a.parts["validation"].x, c.parts["validation"].x
    )
    # test: 15 of 150, stratified
    np.testing.assert_array_equal(a.parts["test"].y.sum(axis=0), [5, 5, 5])


def test_split_is_not_the_last_rows():
    train, val, _ = split_rows(100, seed=0, validation_split=0.2)
    assert len(val) == 20 and not np.array_equal(val, np.arange(80, 100))
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100


def test_stratified_split_keeps_every_class_in_training():
    strata = np.array([0] * 90 + [1] * 8 + [2] * 2 + [3])
    for seed in range(5):
        train, val, test = split_rows(len(strata), seed, 0.3, 0.2, strata)
        assert sorted(np.r_[train, val, test]) == list(range(len(strata)))
        assert set(strata[train]) == {0, 1, 2, 3}  # the singleton class stays in training
        counts = np.bincount(strata[val], minlength=4)
        assert 25 <= counts[0] <= 29 and 1 <= counts[1] <= 4


def test_split_fractions_that_leave_nothing_are_errors(tmp_path):
    with pytest.raises(SpecError, match="validation_split"):
        load(csv_cfg(IRIS, validation_split=0.6, test_split=0.4), Path("."), 0, "cross_entropy")
    path = write(tmp_path, "x,species\n1,a\n2,b\n")
    with pytest.raises(DataError, match="no validation rows"):
        load(csv_cfg(path, validation_split=0.5), tmp_path, 0, "cross_entropy")


def test_separate_validation_and_test_files_use_the_training_encoder(tmp_path):
    train = write(tmp_path, "x,colour,species\n1,red,a\n2,blue,b\n3,red,a\n5,blue,b\n", "t.csv")
    write(tmp_path, "species,colour,x\nb,blue,4\n", "v.csv")
    test = write(tmp_path, "x,colour,species\n0,green,a\n", "s.csv")
    cfg = csv_cfg(train, validation="v.csv", validation_split=0.5, normalize="none")
    ds = load(cfg, tmp_path, 0, "cross_entropy")
    assert len(ds.parts["train"].x) == 4  # validation_split is not used with a validation file
    # x, colour=blue, colour=red
    np.testing.assert_array_equal(ds.parts["validation"].x, [[4, 1, 0]])
    np.testing.assert_array_equal(ds.parts["validation"].y, [[0, 1]])
    with pytest.raises(DataError, match=r"'green'.*line 2"):
        load(csv_cfg(train, test=str(test)), tmp_path, 0, "cross_entropy")


# -- missing values ------------------------------------------------------------------------------


def test_missing_error_names_the_file_column_and_lines():
    with pytest.raises(DataError) as err:
        load(csv_cfg(PENGUINS), Path("."), 0, "cross_entropy")
    message = str(err.value)
    assert "penguins.csv" in message and "'bill_length_mm'" in message
    assert "lines 5, 273 (2 of 344 rows)" in message  # header = line 1, rows 3 and 271


def test_missing_drop_and_fill(tmp_path):
    path = write(tmp_path, "a,b,species\n1,x,p\n,y,q\n3,,p\n5,y,\n7,y,q\n9,y,p\n")
    dropped = load(csv_cfg(path, missing="drop", normalize="none"), tmp_path, 0, "cross_entropy")
    np.testing.assert_array_equal(dropped.parts["train"].x[:, 0], [1, 7, 9])
    filled = load(csv_cfg(path, missing="fill", normalize="none"), tmp_path, 0, "cross_entropy")
    # the row without a target goes; a -> training mean (1+3+7+9)/4, b -> most frequent 'y'
    np.testing.assert_array_equal(filled.parts["train"].x[:, 0], [1, 5, 3, 7, 9])
    np.testing.assert_array_equal(filled.parts["train"].x[2, 1:], [0, 1])  # b=x, b=y
    state = filled.encoder.to_state()
    assert state["numeric"]["fill"][0] == 5.0 and state["categorical"]["fill"] == ["y"]
    with pytest.raises(DataError, match=r"'species'.*line 5"):
        load(csv_cfg(path), tmp_path, 0, "cross_entropy")


def test_na_in_a_text_column_is_a_category_unless_listed(tmp_path):
    path = write(tmp_path, "x,grade,species\n1,NA,a\n2,B,b\n3,A,a\n4,NA,b\n")
    ds = load(csv_cfg(path), tmp_path, 0, "cross_entropy")
    assert ds.feature_names == ["x", "grade=A", "grade=B", "grade=NA"]
    with pytest.raises(DataError, match=r"'grade'.*lines 2, 5"):
        load(csv_cfg(path, na_values=["NA"]), tmp_path, 0, "cross_entropy")
    listed = load(csv_cfg(path, na_values=["NA"], missing="drop"), tmp_path, 0, "cross_entropy")
    assert listed.feature_names == ["x", "grade=A", "grade=B"] and len(listed.parts["train"].x) == 2


def test_a_typo_in_a_numeric_column_is_an_error_a_text_column_is_not(tmp_path):
    rows = [f"{'abc' if i == 7 else i},{'ab'[i % 2]}\n" for i in range(20)]
    path = write(tmp_path, "x,species\n" + "".join(rows))
    with pytest.raises(DataError, match=r"'x' holds numbers except 'abc' on line 9 "):
        load(csv_cfg(path), tmp_path, 0, "cross_entropy")
    ds = load(csv_cfg(path, categorical=["x"]), tmp_path, 0, "cross_entropy")
    assert "x=abc" in ds.feature_names and ds.feature_names[0] == "x=0"


# -- columns -------------------------------------------------------------------------------------


def test_unknown_target_or_feature_gets_did_you_mean():
    with pytest.raises(DataError) as err:
        load(csv_cfg(IRIS, target="specis"), Path("."), 0, "cross_entropy")
    assert str(err.value) == (
        "data.target: column 'specis' not in iris.csv (did you mean 'species'?)"
    )
    with pytest.raises(DataError, match=r"data.features: .*did you mean 'petal_width_cm'"):
        load(csv_cfg(IRIS, features=["petal_widht_cm"]), Path("."), 0, "cross_entropy")
    with pytest.raises(DataError, match="data.categorical"):
        load(csv_cfg(IRIS, categorical=["species"]), Path("."), 0, "cross_entropy")


def test_explicit_features_keep_their_order():
    cfg = csv_cfg(IRIS, features=["petal_width_cm", "sepal_length_cm"])
    ds = load(cfg, Path("."), 0, "cross_entropy")
    assert ds.feature_names == ["petal_width_cm", "sepal_length_cm"] and ds.input_shape == (2,)


# -- targets -------------------------------------------------------------------------------------


def test_binary_cross_entropy_gives_one_zero_one_column(tmp_path):
    path = write(tmp_path, "x,species\n1,yes\n2,no\n3,yes\n4,no\n")
    ds = load(csv_cfg(path), tmp_path, 0, "binary_cross_entropy")
    assert ds.labels == ["no", "yes"] and ds.output_width == 1
    np.testing.assert_array_equal(ds.parts["train"].y, [[1], [0], [1], [0]])
    with pytest.raises(DataError, match="exactly 2 classes.*3"):
        load(csv_cfg(IRIS), Path("."), 0, "binary_cross_entropy")


def test_classification_needs_one_target_column():
    cfg = csv_cfg(IRIS, target=["species", "petal_width_cm"])
    with pytest.raises(DataError, match="one target column"):
        load(cfg, Path("."), 0, "cross_entropy")


def test_regression_multi_target_is_unscaled():
    cfg = csv_cfg(IRIS, target=["petal_length_cm", "petal_width_cm"], validation_split=0.2)
    ds = load(cfg, Path("."), 0, "mse")
    assert ds.task == "regression" and ds.labels is None and ds.output_width == 2
    assert ds.feature_names[-3:] == ["species=setosa", "species=versicolor", "species=virginica"]
    both = np.r_[ds.parts["train"].y, ds.parts["validation"].y]
    expected = read_table(IRIS)[["petal_length_cm", "petal_width_cm"]].astype(float).to_numpy()
    expected = np.sort(expected, axis=0)
    assert_close_float32(np.sort(both, axis=0), expected, magnitude=expected)  # one rounding
    with pytest.raises(DataError, match=r"needs numbers; column 'species' has 'setosa'"):
        load(csv_cfg(IRIS), Path("."), 0, "mse")


# -- reading -------------------------------------------------------------------------------------


def test_bom_crlf_and_quoted_commas(tmp_path):
    text = '\ufeffname,x,species\r\n"Smith, John",1.5,a\r\nDoe,2.5,b\r\n"Q ""R""",3,a\r\n'
    path = write(tmp_path, text)
    frame = read_table(path)
    assert list(frame.columns) == ["name", "x", "species"]
    assert list(frame["name"]) == ["Smith, John", "Doe", 'Q "R"']
    ds = load(csv_cfg(path, normalize="none"), tmp_path, 0, "cross_entropy")
    assert ds.feature_names == ["name=Doe", 'name=Q "R"', "name=Smith, John", "x"]
    np.testing.assert_array_equal(
        ds.parts["train"].x, [[0, 0, 1, 1.5], [1, 0, 0, 2.5], [0, 1, 0, 3]]
    )


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"", "empty"),
        (b"a,species\n", "header but no data rows"),
        (b"a,species\n1,x\n2\n3,y\n", "line 3 has 1 fields, expected 2"),
        (b"a,species\n1,x\n2,y,9\n", "line 3 has 3 fields, expected 2"),
        (b"a,species\n1,x\n2,caf\xe9\n", "line 3: byte 0xe9 is not UTF-8"),
        (b"a,a\n1,2\n", "appears twice"),
    ],
)
def test_unreadable_files_give_one_clear_data_error(tmp_path, content, pattern):
    path = write(tmp_path, content, "bad.csv")
    with pytest.raises(DataError, match=pattern) as err:
        load(csv_cfg(path), tmp_path, 0, "cross_entropy")
    assert "bad.csv" in str(err.value)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="data.path: file not found: .*nothere.csv"):
        load(csv_cfg(Path("nothere.csv")), tmp_path, 0, "cross_entropy")


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(tmp_path):
    path = write(tmp_path, 'x,note,species\n\n1,"two\nlines",a\n,b,b\n')
    with pytest.raises(DataError, match=r"'x' has missing values on line 5 "):
        load(csv_cfg(path), tmp_path, 0, "cross_entropy")


def test_unknown_data_kind_or_setting_is_a_spec_error():
    with pytest.raises(SpecError, match="data.kind"):
        load(csv_cfg(IRIS, kind="parquet"), Path("."), 0, "cross_entropy")
    with pytest.raises(SpecError, match="data.normalize: expected one of standard, minmax, none"):
        load(csv_cfg(IRIS, normalize="zscore"), Path("."), 0, "cross_entropy")


# -- reading numbers fast ------------------------------------------------------------------------


def test_numbers_columns_are_parsed_without_per_column_text(tmp_path, monkeypatch):
    """The parse helper runs for the label, not once per numeric feature per pass."""
    import nncli.data.csv_reader as csv_reader

    calls = []
    parse = csv_reader.parse_numbers
    monkeypatch.setattr(csv_reader, "parse_numbers", lambda *a: calls.append(1) or parse(*a))
    counts = []
    for width in (2, 30):
        rng = np.random.default_rng(width)
        rows = [
            ",".join(f"{v:.3f}" for v in rng.normal(size=width)) + f",{i % 3}" for i in range(40)
        ]
        header = ",".join(f"p{j}" for j in range(width)) + ",label\n"
        path = write(tmp_path, header + "\n".join(rows) + "\n", f"w{width}.csv")
        calls.clear()
        ds = load(
            csv_cfg(path, target="label", validation_split=0.25), tmp_path, 0, "cross_entropy"
        )
        assert ds.parts["train"].x.shape == (30, width) and ds.labels == ["0", "1", "2"]
        counts.append(len(calls))
    assert counts[0] == counts[1]


def test_numbers_read_fast_match_the_text_path_and_messages_quote_the_file(tmp_path):
    from nncli.data.table_encoder import TabularEncoder

    # " -999 " strips to the missing "-999" though pandas reads it as a number
    text = "a,b,c,y\n 1.50 ,7,2007.0,p\n -999 ,8,2008,q\n1e3,+9,2007,p\n 2,10,2008,q\n"
    path = write(tmp_path, text)
    kwargs = dict(features=["a", "b", "c"], numeric=["a", "b"], targets=["y"])
    kwargs.update(loss="cross_entropy", missing="fill", na_values=["-999"])
    fast, slow = read_table(path, ["-999"], numbers=True), read_table(path, ["-999"])
    assert fast["b"].dtype.kind == "i" and fast["a"].dtype == slow["b"].dtype == object
    encoded = [TabularEncoder.fit(f, **kwargs).transform(f) for f in (fast, slow)]
    np.testing.assert_array_equal(*encoded)
    # a message quotes the cell as the file spells it, though the column was read as numbers
    wide = write(tmp_path, "a,y\n1e39,p\n2,q\n", "wide.csv")
    with pytest.raises(DataError, match=r"'1e39' on line 2.*float32"):
        load(csv_cfg(wide, target="y", normalize="none"), tmp_path, 0, "cross_entropy")


AB = ["a", "b"]


@pytest.mark.parametrize(
    "text, quick_header, csv_outcome",
    [
        ("\ufeff a ,b\r\n1,2\r\n\r\n3,4\r\n", AB, AB),
        ("a,b\n\n1,2\n3,4", AB, AB),
        ("a,b\n1,2\n3\n", None, "line 3 has 1 fields, expected 2"),
        ("a,b\n1,2,3\n", None, "line 2 has 3 fields, expected 2"),
        ('a,b\n"1,5",2\n', None, AB),  # quotes: left to the csv module
        ("a,a\n1,2\n", None, "column 'a' appears twice"),
        ("a,b\n", None, "a header but no data rows"),
        ("a,b\r1,2\r", None, AB),  # lone CRs: left to the csv module
    ],
)
def test_the_quick_header_check_agrees_with_the_csv_pass(tmp_path, text, quick_header, csv_outcome):
    """The quick check answers only for plain well-formed files, with the csv pass's header;
    everything else it leaves to the csv pass, which reads or refuses it as the table says."""
    import nncli.data.csv_reader as csv_reader

    path = write(tmp_path, text)
    quick = csv_reader._plain_header(path)
    try:
        header = csv_reader._check_records(path)
    except DataError as err:
        header = None
        assert isinstance(csv_outcome, str) and csv_outcome in str(err), str(err)
    if quick is not None:
        assert quick == header
    assert quick == quick_header
    assert header == (csv_outcome if isinstance(csv_outcome, list) else None)


FINE = "x,y\n0.1,1.0000000001\n0.2,2.0000000002\n0.7,3.0000000003\n1.3,4.0000000004\n"


def test_float64_inputs_and_targets_are_never_rounded_through_float32(tmp_path: Path):
    path = write(tmp_path, FINE)
    cfg = csv_cfg(path, target="y", normalize="none")
    ds = load(cfg, tmp_path, 0, "mse", dtype="float64")
    assert ds.parts["train"].x.dtype == ds.parts["train"].y.dtype == np.float64
    # float32 would differ
    np.testing.assert_array_equal(ds.parts["train"].x[:, 0], [0.1, 0.2, 0.7, 1.3])
    np.testing.assert_array_equal(
        ds.parts["train"].y[:, 0], [1.0000000001, 2.0000000002, 3.0000000003, 4.0000000004]
    )
    again = type(ds.encoder).from_state(ds.encoder.to_state())  # predict reads float64 too
    assert again.transform(path).dtype == np.float64
    assert load(cfg, tmp_path, 0, "mse").parts["train"].x.dtype == np.float32  # the default
    assert "dtype" not in load(cfg, tmp_path, 0, "mse").encoder.to_state()  # old states unchanged


def test_float64_sequences_keep_their_values(tmp_path: Path):
    path = write(tmp_path, "id,t,v,label\na,0,0.1,p\na,1,0.2,p\nb,0,0.3,q\n")
    cfg = csv_cfg(path, kind="sequences", id="id", order="t", target="label")
    cfg.target_per, cfg.normalize, cfg.test_split = "sequence", "none", 0.0
    ds = load(cfg, tmp_path, 0, "cross_entropy", dtype="float64")
    assert ds.parts["train"].x.dtype == np.float64
    np.testing.assert_array_equal(ds.parts["train"].x[0, :, 0], [0.1, 0.2])


def test_a_clean_table_of_numbers_is_read_as_one_block():
    """``clean_block``: the numbers columns as one float64 array when ``cell_numbers`` would read
    each without text; None (each column read alone) as soon as one would not."""
    import pandas as pd

    from nncli.data.csv_reader import cell_numbers, clean_block

    frame = pd.DataFrame({"a": [1.5, 2.0], "b": [3, 4], "c": ["x", "y"]})
    block = clean_block(frame, ["a", "b"])
    np.testing.assert_array_equal(block, [[1.5, 3.0], [2.0, 4.0]])
    for j, name in enumerate(["a", "b"]):
        np.testing.assert_array_equal(block[:, j], cell_numbers(frame[name])[0])
    block[0, 0] = 9  # a copy: the encoder fills gaps in place
    assert frame["a"][0] == 1.5
    assert clean_block(frame, ["a", "c"]) is None  # text
    assert clean_block(frame.assign(a=[1.5, np.nan]), ["a", "b"]) is None  # a missing value
    assert clean_block(frame, ["a", "b"], na_values=["4"]) is None  # 4 means missing here
    assert clean_block(frame, []) is None
