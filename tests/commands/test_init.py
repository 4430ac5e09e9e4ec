"""``nncli init DATA``: a starter spec for every data set in datasets/ that validates and trains;
on iris, penguins and digits, trained as written, at least scikit-learn's MLP on the same split
minus 0.02; the target, the columns, missing values and the output rules."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import DATASETS, IRIS, PENGUINS, invoke, iris_spec, one_error_line, sha

from nncli import spec as spec_module
from nncli.commands.init import init
from nncli.commands.train import TrainingRun, fit_arrays
from nncli.data import KINDS
from nncli.data.profile import profile
from nncli.spec import document
from nncli.spec.resolve import resolve
from nncli.spec.starter import STARTERS
from nncli.spec.yaml_text import scalar
from nncli.training.loop import evaluate

KIND_OF = {  # what init must find in the shipped data sets; a new one only has to train
    "digits.csv": "csv",
    "iris.csv": "csv",
    "neuron.csv": "csv",
    "penguins.csv": "csv",
    "xor.csv": "csv",
    "sunspots_yearly.csv": "timeseries",
    "walks.csv": "sequences",
    "digits_png": "images",
    "shakespeare.txt": "text",
}
DATA_SETS = sorted(
    p.name
    for p in DATASETS.iterdir()
    if (p.is_dir() or p.suffix in (".csv", ".txt")) and not p.name.startswith((".", "_"))
)
SLOW = {"shakespeare.txt"}  # reads 1.1 MB of text twice (init, then the smoke run)


def _marked(name: str):
    return pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name


@pytest.mark.parametrize("name", [_marked(n) for n in DATA_SETS])
def test_every_data_set_gets_a_spec_that_validates_and_smoke_trains(name, tmp_path):
    spec = tmp_path / "starter.yaml"
    result = invoke("init", DATASETS / name, "--output", spec)
    assert result.exit_code == 0, result.stderr
    assert f"wrote {spec}" in result.stdout
    text = spec.read_text()
    assert f"kind: {KIND_OF.get(name, '')}" in text
    assert text.count("#") > 10  # every choice has its reason beside it
    result = invoke("validate", spec)
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stdout + result.stderr  # a starter fits its data
    result = invoke("train", spec, "--smoke", "--quiet")
    assert result.exit_code == 0, result.stderr


def test_every_data_kind_has_a_starter():
    assert set(STARTERS) == set(KINDS)


def test_the_data_path_is_relative_to_the_spec_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "specs").mkdir()
    shutil.copy(IRIS, tmp_path / "data" / "flowers.csv")
    monkeypatch.chdir(tmp_path / "specs")
    result = invoke("init", "../data/flowers.csv")
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "specs" / "flowers.yaml").read_text()
    assert "path: ../data/flowers.csv" in text and "name: flowers" in text
    monkeypatch.chdir(tmp_path)  # a spec's paths do not depend on the current folder
    assert invoke("validate", "specs/flowers.yaml").exit_code == 0


# -- the quality bar: the spec as written against scikit-learn's MLP on nncli's own split ------


def _accuracies(spec_path: Path) -> tuple[float, float]:
    """(nncli's validation accuracy after training the spec, scikit-learn MLPClassifier's with
    its defaults on the identical encoded training and validation rows)."""
    neural = pytest.importorskip("sklearn.neural_network")
    spec = spec_module.load(spec_path)
    ready = resolve(spec)
    ds = ready.ds
    x, y, config = fit_arrays(spec, ds, smoke=False)
    run = TrainingRun(spec, ready, spec_path.with_suffix(".h5"))
    run.fit(x, y, config, [], periodic=False, overrides=(), device=None)
    ours = evaluate(ready.net, ready.loss, ds.parts["validation"].x, ds.parts["validation"].y)[
        "accuracy"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its note that 200 iterations did not converge
        mlp = neural.MLPClassifier(random_state=0).fit(
            ds.parts["train"].x, ds.parts["train"].y.argmax(axis=1)
        )
    theirs = float(
        np.mean(mlp.predict(ds.parts["validation"].x) == ds.parts["validation"].y.argmax(axis=1))
    )
    return float(ours), theirs


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("iris.csv", None),
        ("penguins.csv", "species"),
        pytest.param("digits.csv", None, marks=pytest.mark.slow),
    ],
)
def test_the_starter_reaches_scikit_learns_mlp(name, target, tmp_path):
    spec = tmp_path / "starter.yaml"
    init(DATASETS / name, target=target, output=spec)
    ours, theirs = _accuracies(spec)
    assert ours >= theirs - 0.02, (name, ours, theirs)


# -- target, task, columns --------------------------------------------------------------------


def test_the_last_column_is_the_target_and_the_note_says_so(tmp_path):
    result = invoke("init", PENGUINS, "--output", tmp_path / "p.yaml")
    assert result.exit_code == 0, result.stderr
    assert "the target is the last column, 'year'; pass --target" in result.stderr
    text = (tmp_path / "p.yaml").read_text()
    assert "target: year" in text and "the last column" in text


def test_target_picks_the_column_and_the_task(tmp_path):
    result = invoke("init", PENGUINS, "--target", "species", "--output", tmp_path / "p.yaml")
    assert result.exit_code == 0, result.stderr
    assert "last column" not in result.stderr
    assert "classify 'species' into 3 classes" in result.stdout
    text = (tmp_path / "p.yaml").read_text()
    assert "target: species" in text and "given with --target" in text
    assert "categorical: [island, sex]" in text and "missing: fill" in text
    assert "loss: cross_entropy" in text and "units: auto, activation: softmax" in text
    assert "year: few whole numbers, kept as numbers" in text
    # 5 numbers, island (3 values) and sex (2) one-hot: 10 inputs, 10*64+64 + 64*3+3 parameters
    assert "# input [10]: 10 numbers a row, text columns one-hot; 899 parameters to learn" in text
    spec = spec_module.load(tmp_path / "p.yaml")
    assert spec.data.target == "species" and spec.data.missing == "fill"


def test_a_bad_target_is_one_line_with_a_close_match(tmp_path):
    result = invoke("init", IRIS, "--target", "specis", "--output", tmp_path / "i.yaml")
    one_error_line(result, 2, "--target", "'specis' not in iris.csv", "did you mean 'species'?")
    assert not (tmp_path / "i.yaml").exists()


def test_images_and_text_refuse_a_target(tmp_path):
    for data in (DATASETS / "digits_png", DATASETS / "shakespeare.txt"):
        result = invoke("init", data, "--target", "label", "--output", tmp_path / "x.yaml")
        one_error_line(result, 2, "--target", "leave --target out")


def _table(tmp_path: Path, header: str, rows: list[str], name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_id_like_columns_are_left_out_and_odd_names_quoted(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=60).round(3)
    rows = [f"{i + 1},p{i:04d},{'abc'[i % 3]},{x[i]},{1.5 * x[i] + 0.1 * i:.4f}" for i in range(60)]
    path = _table(tmp_path, "row,name,group,x,price: usd", rows)
    started = init(path, output=tmp_path / "t.yaml")
    text = started.output.read_text()
    assert "exclude: [row, name]" in text and "categorical: [group]" in text
    assert 'target: "price: usd"' in text and "loss: mse" in text
    assert started.profile.task == "regression"
    assert any("left out like an id" in note for note in started.notes)
    assert spec_module.load(started.output).data.target == "price: usd"


def test_a_semicolon_file_gets_its_delimiter(tmp_path):
    rows = [f"{i % 7};{(i * 3) % 5};{'ab'[i % 2]}" for i in range(40)]
    started = init(_table(tmp_path, "a;b;label", rows), output=tmp_path / "s.yaml")
    assert 'delimiter: ";"' in started.output.read_text()
    assert started.profile.classes == ["a", "b"]


def test_a_dated_series_is_a_time_series_with_its_cycle_as_window(tmp_path):
    days = np.arange(200)
    dates = np.datetime_as_string(np.datetime64("2020-01-01") + days)
    rows = [f"{d},{np.sin(2 * np.pi * i / 7):.4f}" for i, d in enumerate(dates)]
    found = profile(_table(tmp_path, "date,visits", rows))
    assert (found.kind, found.time_column, found.cycle) == ("timeseries", "date", 7)
    started = init(found.path, output=tmp_path / "d.yaml")
    assert "window: 8" in started.output.read_text()


def test_a_per_step_target_reads_with_return_sequences(tmp_path):
    rows = [f"s{s},{t},{(s * t) % 5},{'lh'[(s + t) % 2]}" for s in range(12) for t in range(6)]
    started = init(_table(tmp_path, "seq,step,x,state", rows), output=tmp_path / "q.yaml")
    found = started.profile
    assert (found.kind, found.id_column, found.order_column) == ("sequences", "seq", "step")
    assert found.target_per == "step"
    assert "return_sequences: true" in started.output.read_text()


def test_a_folder_without_class_folders_is_a_data_error(tmp_path):
    (tmp_path / "imgs").mkdir()
    shutil.copy(next((DATASETS / "digits_png" / "0").iterdir()), tmp_path / "imgs" / "a.png")
    result = invoke("init", tmp_path / "imgs", "--output", tmp_path / "x.yaml")
    one_error_line(result, 3, "no class sub-folders")


# -- outputs --------------------------------------------------------------------------------


def test_an_existing_spec_is_kept_without_force(tmp_path):
    spec = tmp_path / "iris.yaml"
    spec.write_text("mine\n")
    result = invoke("init", IRIS, "--output", spec)
    one_error_line(result, 2, "exists; pass --force")
    assert spec.read_text() == "mine\n"
    result = invoke("init", IRIS, "--output", spec, "--force")
    assert result.exit_code == 0 and f"replaced {spec}" in result.stdout
    assert "kind: csv" in spec.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["iris.yaml"]  # no temporary file left


def test_never_onto_the_data(tmp_path):
    data = tmp_path / "iris.csv"
    shutil.copy(IRIS, data)
    before = sha(data)
    result = invoke("init", data, "--output", data, "--force")
    one_error_line(result, 2, "would overwrite the input file")
    assert sha(data) == before


def test_the_default_output_is_the_data_stem_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("init", IRIS)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "iris.yaml").exists()


@pytest.mark.parametrize("name", ["iris", "yes", "1e3", "a: b", "x#1", "null", " pad", "[x]"])
def test_names_read_back_as_written(name):
    for text in (f"k: {scalar(name)}", f"k: [{scalar(name)}]"):
        value = document.parse(text, "<test>").data["k"]
        assert (value[0] if isinstance(value, list) else value) == name


def test_a_starter_that_would_not_validate_is_caught_as_a_bug(tmp_path, monkeypatch):
    from nncli.spec import starter

    csv_template = starter.STARTERS["csv"]

    def broken(found, path):  # the csv template with a layer type that does not exist
        body, training = csv_template(found, path)
        return [line.replace("type: dense, units: 64", "type: dense2") for line in body], training

    monkeypatch.setitem(starter.STARTERS, "csv", broken)
    result = invoke("init", IRIS, "--output", tmp_path / "i.yaml")
    one_error_line(result, 1, "internal error", "does not validate", "dense2")
    assert list(tmp_path.iterdir()) == []  # neither the spec nor its temporary file


# -- starters validate without warnings ------------------------------------------------------


def _warnings(started) -> list[str]:
    return [line for line in started.checked if line.startswith("warning")] + started.warnings


BLOCKS = {  # image size -> conv + pool blocks: each halves the sides (rounding up), down to 2 or 3
    (3, 3): 0,
    (4, 4): 1,
    (5, 5): 1,
    (7, 7): 2,
    (8, 8): 2,
    (9, 9): 2,
    (12, 12): 2,
    (28, 28): 3,
    (7, 12): 2,
    (30, 21): 3,
}


@pytest.mark.parametrize("size", sorted(BLOCKS))
def test_the_image_starter_fits_its_image_size_without_warnings(size, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for k in range(3):
            pixels = rng.integers(0, 255, size).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{k}.png")
    started = init(tmp_path / "imgs", output=tmp_path / "s.yaml")
    assert started.profile.image_size == size
    assert not _warnings(started), _warnings(started)
    text = started.output.read_text()
    assert text.count("type: conv2d") == text.count("type: maxpool2d") == BLOCKS[size]


# -- text among numbers: the loader's rule ---------------------------------------------------


def _iris_with(tmp_path: Path, cells: dict[tuple[int, int], str], name: str = "iris.csv") -> Path:
    """iris.csv with some cells replaced: (line, column) -> text (line 1 is the header)."""
    lines = IRIS.read_text().splitlines()
    for (line, col), text in cells.items():
        fields = lines[line - 1].split(",")
        fields[col] = text
        lines[line - 1] = ",".join(fields)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_typo_among_numbers_stops_init_with_the_loaders_line(tmp_path):
    data = _iris_with(tmp_path, {(6, 1): "abc"})
    expected = (
        f"{data}: column 'sepal_width_cm' holds numbers except 'abc' on line 6 (1 of 150 rows); "
        "fix those values, list placeholders in data.na_values, or name the column in "
        "data.categorical"
    )
    line = one_error_line(invoke("init", data, "--output", tmp_path / "i.yaml"), 3, expected)
    assert not (tmp_path / "i.yaml").exists()
    spec = tmp_path / "spec.yaml"
    spec.write_text(iris_spec("{epochs: 1}"))
    assert one_error_line(invoke("validate", spec), 3) == line  # the loader says the same


def test_a_typo_in_a_number_target_is_named_too(tmp_path):
    data = _iris_with(tmp_path, {(9, 3): "2x"})  # petal_length_cm
    header = IRIS.read_text().splitlines()[0].split(",")
    result = invoke("init", data, "--target", header[3], "--output", tmp_path / "i.yaml")
    one_error_line(result, 3, f"column '{header[3]}' holds numbers except '2x' on line 9")
    assert "data.categorical" not in result.stderr  # no remedy for a target


def test_placeholders_among_numbers_become_na_values(tmp_path):
    data = _iris_with(tmp_path, {(6, 1): "?", (9, 2): "?", (12, 0): "NA"})
    result = invoke("init", data, "--output", tmp_path / "i.yaml")
    assert result.exit_code == 0, result.stderr
    assert "3 empty cells are filled (data.missing: fill, counting ?, NA as empty)" in result.stderr
    text = (tmp_path / "i.yaml").read_text()
    assert 'na_values: ["?", NA]' in text and "missing: fill" in text
    assert "categorical" not in text  # the number columns stay numbers
    assert "# input [4]:" in text
    trained = invoke("train", tmp_path / "i.yaml", "--smoke", "--quiet")
    assert trained.exit_code == 0, trained.stderr


# -- text columns of too many distinct values (one rule: table.too_distinct) -------------------


def _names_table(tmp_path: Path, distinct: int, rows: int = 80) -> Path:
    """Columns name (``distinct`` values over ``rows`` rows), x and y (from x)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=rows).round(3)
    lines = [f"car {i % distinct},{x[i]},{2 * x[i] + 0.1 * (i % 3):.4f}" for i in range(rows)]
    return _table(tmp_path, "name,x,y", lines)


def test_a_mostly_distinct_text_column_is_left_out_with_its_reason(tmp_path):
    started = init(_names_table(tmp_path, distinct=61), output=tmp_path / "t.yaml")  # 76%
    text = started.output.read_text()
    assert "exclude: [name]" in text and "categorical" not in text
    assert "#   name: 61 distinct values in 80 rows (1.3 a value): too few rows to learn" in text
    assert not started.warnings


def test_a_text_column_between_the_levels_is_kept_and_train_warns(tmp_path):
    started = init(_names_table(tmp_path, distinct=40), output=tmp_path / "t.yaml")  # 50%
    text = started.output.read_text()
    assert "categorical: [name]" in text and "exclude" not in text
    assert len(started.warnings) == 1 and "'name' has 40 distinct values" in started.warnings[0]
    result = invoke("train", started.output, "--smoke", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "nncli: warning: " in result.stderr and "data.exclude: [name]" in result.stderr
