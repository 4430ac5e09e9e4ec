"""Several inputs from one table (issue 27): a columns input and a text input, each with its own
encoder, trained, saved, and read back by predict and evaluate from the same kind of table."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nncli.data.text_column import UNKNOWN, TextColumn
from tests.helpers import IMAGE_SPEC, image_folder, invoke, one_error_line

FILLER = ["the", "order", "came", "today", "box", "was", "item", "ok", "ship", "with"]


def designed_table(path: Path, rows: int = 600, seed: int = 0) -> Path:
    """The label needs both inputs, and each alone says nothing about it.

    Each row has a number ``amount`` ~ N(0, 1), a distractor number ``noise`` ~ N(0, 1) and a
    ``review`` of 3 to 8 filler words (the same ten for every row, in random order) with one
    keyword, ``good`` or ``bad`` (a fair coin), at a random place. The label is ``yes`` when the
    keyword's sign agrees with the amount's (good and amount > 0, or bad and amount <= 0), else
    ``no``: an exclusive or. The keyword alone and the amount alone are each independent of the
    label (half of each keyword's rows are yes), so a model of either input alone is at chance
    (about 0.5), while one of both can be right on every row."""
    rng = np.random.default_rng(seed)
    amount, noise = rng.normal(size=rows), rng.normal(size=rows)
    good = rng.random(rows) < 0.5
    reviews = []
    for r in range(rows):  # building test data, not a hot path
        words = list(rng.choice(FILLER, size=rng.integers(3, 9)))
        words.insert(int(rng.integers(0, len(words) + 1)), "good" if good[r] else "bad")
        reviews.append(" ".join(words).capitalize())
    label = np.where(good == (amount > 0), "yes", "no")
    table = pd.DataFrame({"amount": amount, "noise": noise, "review": reviews, "label": label})
    table.to_csv(path, index=False)
    return path


HEAD = "seed: 1\ndata:\n  kind: csv\n  path: {path}\n  target: label\n"
TAIL = """\
    - {{type: dense, units: 16, activation: relu}}
    - {{type: dense, units: auto, activation: softmax}}
loss: cross_entropy
optimizer: {{type: adam, learning_rate: 0.03}}
training: {{epochs: 40, batch_size: 32}}
"""
TEXT = "    body: {{column: review, tokens: words, max_length: 12, vocabulary: 50}}\n"
TEXT_LAYERS = """\
    - {{type: embedding, inputs: body, input_dim: auto, output_dim: 8}}
    - {{type: global_avgpool, name: text_code}}
"""
BOTH = (
    HEAD
    + "  inputs:\n    fields: {{columns: [amount, noise]}}\n"
    + TEXT
    + "model:\n  layers:\n"
    + TEXT_LAYERS
    + "    - {{type: concat, inputs: [text_code, fields]}}\n"
    + TAIL
)
TEXT_ONLY = HEAD + "  inputs:\n" + TEXT + "model:\n  layers:\n" + TEXT_LAYERS + TAIL
NUMBERS_ONLY = HEAD + "  features: [amount, noise]\nmodel:\n  layers:\n" + TAIL


def _accuracy(tmp_path: Path, name: str, spec: str, data: Path) -> float:
    spec_path = tmp_path / f"{name}.yaml"
    spec_path.write_text(spec.format(path=data))
    out = tmp_path / f"{name}.h5"
    result = invoke("train", spec_path, "--output", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    from nncli.checkpoint import model as model_io

    history = model_io.load(out).training["history"]
    return float(np.asarray(history["val_accuracy"])[-1])


@pytest.mark.slow
def test_the_label_needs_both_inputs_and_only_the_two_input_model_learns_it(tmp_path):
    data = designed_table(tmp_path / "reviews.csv")
    assert _accuracy(tmp_path, "both", BOTH, data) >= 0.95
    assert _accuracy(tmp_path, "text", TEXT_ONLY, data) <= 0.6
    assert _accuracy(tmp_path, "numbers", NUMBERS_ONLY, data) <= 0.6


def test_predict_and_evaluate_read_the_same_kind_of_table(tmp_path):
    data = designed_table(tmp_path / "reviews.csv", rows=120)
    spec = tmp_path / "both.yaml"
    spec.write_text(BOTH.format(path=data).replace("epochs: 40", "epochs: 2"))
    out = tmp_path / "model.h5"
    assert invoke("train", spec, "--output", out, "--quiet").exit_code == 0
    new = pd.read_csv(data).head(4)[["review", "label", "noise", "amount"]]  # reordered
    new.loc[0, "review"] = "Zebra quantum marmalade"  # not one word the vocabulary holds
    new.loc[1, "review"] = ""  # an empty text: one unknown token
    new.to_csv(tmp_path / "new.csv", index=False)
    result = invoke("predict", out, tmp_path / "new.csv", "--output", tmp_path / "p.csv")
    assert result.exit_code == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "p.csv")) == 4
    result = invoke("evaluate", out, data)
    assert result.exit_code == 0, result.stderr
    assert "accuracy" in result.stdout


def test_text_column_ids_mask_and_unknown_words():
    column = TextColumn.fit(
        "review",
        np.array(["Good good bad", "bad item", None], dtype=object),
        {"tokens": "words", "lowercase": True, "max_length": 3, "vocabulary": 2},
    )
    assert column.vocabulary == ["bad", "good"]  # by count, ties by text; "item" left out
    ids, mask = column.encode(np.array(["GOOD bad item good", "", "unseen"], dtype=object))
    assert ids.tolist() == [[3, 2, UNKNOWN], [UNKNOWN, 0, 0], [UNKNOWN, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False], [True, False, False]]
    again = TextColumn.from_state(column.to_state())
    assert np.array_equal(again.encode(np.array(["bad good"], dtype=object))[0], [[2, 3, 0]])


def _refused(tmp_path: Path, inputs: str, layers: str, command: str, *needles: str) -> None:
    data = designed_table(tmp_path / "reviews.csv", rows=40)
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        f"data: {{kind: csv, path: {data}, target: label, inputs: {inputs}}}\n"
        f"model: {{layers: [{layers}]}}\nloss: cross_entropy\n"
    )
    one_error_line(invoke(command, spec, "--output", tmp_path / "m.h5"), 2, *needles)


@pytest.mark.parametrize(
    ("inputs", "needles"),
    [
        ("{a: {columns: [amount, amount]}, b: {column: review}}", ["'amount'", "one input"]),
        ("{a: {columns: [amount, label]}, b: {column: review}}", ["'label' is the target"]),
        ("{a: {columns: [amont]}, b: {column: review}}", ["amont", "did you mean 'amount'"]),
        ("{a: {columns: [amount]}, b: {colum: review}}", ["colum", "did you mean 'column'"]),
    ],
)
def test_bad_inputs_are_one_spec_line(tmp_path, inputs, needles):
    layers = (
        "{type: dense, units: 2, inputs: a, name: d},"
        " {type: embedding, input_dim: 60, output_dim: 2, inputs: b},"
        " {type: global_avgpool, name: t}, {type: concat, inputs: [d, t]},"
        " {type: dense, units: auto, activation: softmax}"
    )
    _refused(tmp_path, inputs, layers, "train", *needles)


def test_an_input_no_layer_reads_is_named(tmp_path):
    inputs = "{a: {columns: [amount]}, b: {column: review}}"
    layers = "{type: dense, units: auto, activation: softmax}"
    _refused(tmp_path, inputs, layers, "train", "no layer reads the data input 'b'")


def _image_table(tmp_path: Path) -> Path:
    """The image folder of ``image_folder`` as a table: one row a file, in the folder's order."""
    image_folder(tmp_path / "d")
    files = sorted((tmp_path / "d").glob("*/*.png"))
    table = pd.DataFrame(
        {
            "photo": [str(f.relative_to(tmp_path)) for f in files],
            "label": [f.parent.name for f in files],
        }
    )
    table.to_csv(tmp_path / "photos.csv", index=False)
    return tmp_path / "photos.csv"


def test_an_image_path_column_trains_as_the_image_folder_does(tmp_path):
    from nncli.checkpoint import model as model_io

    _image_table(tmp_path)
    (tmp_path / "folder.yaml").write_text(IMAGE_SPEC)
    (tmp_path / "table.yaml").write_text(
        IMAGE_SPEC.replace(
            "{kind: images, path: d, validation_split: 0.0}",
            "{kind: csv, path: photos.csv, target: label, validation_split: 0.0,"
            " inputs: {photo: {column: photo, image_size: [8, 8]}}}",
        ).replace("[flatten,", "[{type: flatten, inputs: photo},")
    )
    for name in ("folder", "table"):
        result = invoke("train", tmp_path / f"{name}.yaml", "--output", tmp_path / f"{name}.h5")
        assert result.exit_code == 0, result.stderr
    folder, table = (model_io.load(tmp_path / f"{n}.h5").net for n in ("folder", "table"))
    assert table.input_shape == {"photo": (1, 8, 8)}
    for name, value in folder.get_weights().items():
        assert np.array_equal(value, table.get_weights()[name]), name


def image_table_spec(tmp_path: Path) -> Path:
    """A spec of one image-path input, the table of ``_image_table`` (one epoch)."""
    data = _image_table(tmp_path)
    spec = tmp_path / "table.yaml"
    spec.write_text(
        f"data: {{kind: csv, path: {data}, target: label, validation_split: 0.0,"
        " inputs: {photo: {column: photo, image_size: [8, 8]}}}\n"
        "model: {layers: [{type: flatten, inputs: photo}, {type: dense, units: auto,"
        " activation: softmax}]}\nloss: cross_entropy\ntraining: {epochs: 1, batch_size: 4}\n"
    )
    return spec


def test_a_missing_image_is_named_with_its_row(tmp_path):
    spec = image_table_spec(tmp_path)
    data = tmp_path / "photos.csv"
    assert invoke("train", spec, "--output", tmp_path / "m.h5").exit_code == 0
    new = pd.read_csv(data).head(3)
    new.loc[2, "photo"] = "d/dark/gone.png"
    new.to_csv(tmp_path / "new.csv", index=False)
    result = invoke("predict", tmp_path / "m.h5", tmp_path / "new.csv")
    one_error_line(result, 3, "column 'photo' names no image on line 4", "gone.png")


def test_cross_validation_cuts_every_input_the_same_way(tmp_path):
    data = designed_table(tmp_path / "reviews.csv", rows=60)
    spec = tmp_path / "both.yaml"
    spec.write_text(
        BOTH.format(path=data).replace("epochs: 40, batch_size: 32", "epochs: 1, batch_size: 10")
    )
    result = invoke("cv", spec, "--folds", "2", "--output", tmp_path / "cv")
    assert result.exit_code == 0, result.stdout + result.stderr
    folds = pd.read_csv(tmp_path / "cv" / "cv.csv")
    assert folds["fold"].astype(str).tolist()[:2] == ["1", "2"]
    assert folds["val_accuracy"].notna().all()


def test_a_text_input_read_by_a_layer_that_takes_no_ids_is_refused(tmp_path):
    inputs = "{a: {columns: [amount]}, b: {column: review}}"
    layers = (
        "{type: dense, units: 2, inputs: b, name: t}, {type: concat, inputs: [a, t]},"
        " {type: dense, units: auto, activation: softmax}"
    )
    _refused(tmp_path, inputs, layers, "train", "input 'b' is a text column's token ids", "dense")


def _bad_images(tmp_path: Path) -> tuple[Path, Path]:
    """The image table of ``image_table_spec`` with row 3's file gone (line 4 of the file) and
    row 6's no image (line 7) -> (its spec, the same table without those two rows)."""
    spec = image_table_spec(tmp_path)
    table = pd.read_csv(tmp_path / "photos.csv")
    (tmp_path / "d" / "dark" / "junk.png").write_bytes(b"not an image at all")
    table.loc[2, "photo"] = "d/dark/gone.png"
    table.loc[5, "photo"] = "d/dark/junk.png"
    table.to_csv(tmp_path / "photos.csv", index=False)
    table.drop(index=[2, 5]).to_csv(tmp_path / "clean.csv", index=False)
    return spec, tmp_path / "clean.csv"


def test_skip_bad_leaves_out_the_rows_of_missing_or_unreadable_images(tmp_path):
    from nncli.checkpoint import model as model_io

    spec, clean = _bad_images(tmp_path)
    data = tmp_path / "photos.csv"
    refused = invoke("train", spec, "--output", tmp_path / "m.h5")
    one_error_line(refused, 3, "column 'photo' names no image on line 4", "gone.png")
    result = invoke("train", spec, "--output", tmp_path / "m.h5", "--skip-bad")
    assert result.exit_code == 0, result.stderr
    warning = "skipped 2 rows whose image is missing or unreadable (--skip-bad): lines 4, 7"
    assert warning in result.stderr and "gone.png" in result.stderr
    assert "junk.png" in result.stderr
    (tmp_path / "clean.yaml").write_text(spec.read_text().replace(str(data), str(clean)))
    assert invoke("train", tmp_path / "clean.yaml", "--output", tmp_path / "c.h5").exit_code == 0
    skipped, expected = (model_io.load(tmp_path / n).net for n in ("m.h5", "c.h5"))
    for name, value in expected.get_weights().items():  # the same rows, the same run
        assert np.array_equal(value, skipped.get_weights()[name]), name

    (tmp_path / "d" / "dark" / "gone.png").write_bytes(b"")  # there, but no image
    refused = invoke("predict", tmp_path / "m.h5", data)
    one_error_line(refused, 3, "gone.png", "column 'photo', line 4")
    kept = invoke("predict", tmp_path / "m.h5", data, "--skip-bad")
    assert kept.exit_code == 0, kept.stderr
    assert len(kept.stdout.strip().splitlines()) == 1 + 12 - 2  # a header and 10 rows
    assert "skipped 2 rows whose image is missing or unreadable" in kept.stderr
    scored = invoke("evaluate", tmp_path / "m.h5", data, "--skip-bad", "--part", "all")
    assert scored.exit_code == 0, scored.stderr
    assert "skipped 2 rows" in scored.stderr and "accuracy" in scored.stdout


def test_skip_bad_with_no_readable_image_left_is_one_error(tmp_path):
    spec = image_table_spec(tmp_path)
    table = pd.read_csv(tmp_path / "photos.csv")
    table["photo"] = "d/none.png"
    table.to_csv(tmp_path / "photos.csv", index=False)
    result = invoke("train", spec, "--output", tmp_path / "m.h5", "--skip-bad")
    one_error_line(result, 3, "--skip-bad left out every image", "none.png")
