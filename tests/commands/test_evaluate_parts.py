"""``nncli evaluate`` on the file a model was trained on (issue 23): the rows training left
out, ``--unknown``, and ``--part train|validation|test|all`` (default: the held-out part of the
training file), reproduced exactly as training split it for every data kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import DATASETS, invoke, one_error_line

from nncli import checkpoint
from nncli.checkpoint import model as model_io

ROWS, EMPTY = 60, (4, 17, 33, 50)  # rows of the table, rows with no target (0-based)
# the same evaluation of the same arrays: equal up to a few roundings of float32 sums
TOLERANCE = 64 * float(np.finfo(np.float32).eps)


def auto_rows(rows: int = ROWS, seed: int = 0) -> list[str]:
    """An auto_mpg-like table: numbers, a text column, a name unique to each row, mpg."""
    rng = np.random.default_rng(seed)
    lines = ["cylinders,weight,origin,name,mpg"]
    for i in range(rows):
        cylinders, weight = int(rng.choice([4, 6, 8])), float(rng.uniform(1.5, 4.5))
        origin = str(rng.choice(["usa", "europe", "japan"]))
        mpg = f"{45 - 3 * cylinders - 4 * weight + rng.normal():.1f}"
        lines.append(f"{cylinders},{weight:.3f},{origin},car {i},{'' if i in EMPTY else mpg}")
    return lines


def auto_spec(training: str = "{epochs: 4, batch_size: 8}", data: str = "") -> str:
    return f"""\
seed: 0
data: {{kind: csv, path: auto.csv, target: mpg, missing: fill, validation_split: 0.25{data}}}
model:
  layers:
    - {{type: dense, units: 8, activation: relu}}
    - {{type: dense, units: auto}}
loss: mse
optimizer: {{type: adam, learning_rate: 0.01}}
training: {training}
metrics: [rmse]
output: out/model.h5
"""


@pytest.fixture(scope="module")
def auto(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("auto")
    (folder / "auto.csv").write_text("\n".join(auto_rows()) + "\n")
    (folder / "auto.yaml").write_text(auto_spec())
    result = invoke("train", folder / "auto.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    (folder / "train.stderr").write_text(result.stderr)
    return folder


def test_train_says_how_many_rows_it_left_out_and_why(auto: Path):
    said = (auto / "train.stderr").read_text()
    assert "left out the rows with no target ('mpg' empty)" in said, said
    assert "lines 6, 19, 35, 52 (4 of 60 rows)" in said
    assert "data.missing: fill" in said


def test_evaluate_takes_unknown_and_leaves_out_rows_without_a_target(auto: Path):
    lines = auto_rows(12, seed=1)
    lines[3] = lines[3].replace("car 2", "a car never seen")
    (auto / "new.csv").write_text("\n".join(lines) + "\n")  # line 6 (row 4) has no target
    refused = invoke("evaluate", auto / "out" / "model.h5", auto / "new.csv")
    assert refused.exit_code == 3, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]  # after the warning on the row left out
    assert "not seen in training" in last and "--unknown ignore encodes" in last, last
    result = invoke(
        "evaluate", auto / "out" / "model.h5", auto / "new.csv", "--unknown", "ignore", "--json"
    )
    assert result.exit_code == 0, result.stderr
    assert "left out the rows with no target ('mpg' empty): line 6 (1 of 12 rows)" in result.stderr
    got = json.loads(result.stdout)
    assert got["rows"] == 11 and got["part"] == "all"
    bad = invoke("evaluate", auto / "out" / "model.h5", auto / "new.csv", "--unknown", "skip")
    one_error_line(bad, 2, "--unknown", "error, ignore", "'skip'")


# -- --part -----------------------------------------------------------------------------------


def evaluated(model: Path, data: Path, *options: str) -> tuple[dict, str]:
    """``nncli evaluate MODEL DATA OPTIONS --json`` -> (the JSON, stderr)."""
    result = invoke("evaluate", model, data, *options, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_the_training_file_scores_its_held_out_part_by_default(auto: Path):
    model, data = auto / "out" / "model.h5", auto / "auto.csv"
    got, said = evaluated(model, data)
    assert (got["part"], got["rows"], got["rows_in_file"]) == ("validation", 14, 56)
    assert "scored the validation part: 14 of 56 rows of auto.csv, the file this model was " in said
    last_val = model_io.load(model).training["history"]["val_loss"][-1]  # the saved weights'
    assert got["metrics"]["loss"] == pytest.approx(last_val, rel=TOLERANCE)
    assert evaluated(model, data, "--part", "train")[0]["rows"] == 42
    everything, said = evaluated(model, data, "--part", "all")  # names unseen: zeros, as trained
    assert everything["rows"] == 56 and "(training rows included)" in said
    assert "left out the rows with no target" in said  # as training left them out


def test_a_part_training_did_not_make_or_of_another_file_is_refused(auto: Path):
    model = auto / "out" / "model.h5"
    missing = invoke("evaluate", model, auto / "auto.csv", "--part", "test")
    assert missing.exit_code == 2
    assert "training made no test part of auto.csv (its parts: train 42, validation 14 rows)" in (
        missing.stderr
    )
    other = auto / "other.csv"
    other.write_text("\n".join(auto_rows(20, seed=3)) + "\n")
    refused = invoke("evaluate", model, other, "--part", "validation", "--unknown", "ignore")
    assert refused.exit_code == 2
    assert "other.csv is not the file this model was trained on" in refused.stderr
    got, said = evaluated(model, other, "--unknown", "ignore")  # another file: all of it
    assert got["part"] == "all" and "scored all 18 rows of other.csv\n" in said


def test_a_checkpoint_without_a_digest_scores_all_and_says_why(auto: Path, tmp_path: Path):
    ckpt = checkpoint.load(auto / "out" / "model.h5")
    del ckpt.training["data_sha256"]  # as written before train recorded it
    old = tmp_path / "old.h5"
    checkpoint.save(old, ckpt)
    got, said = evaluated(old, auto / "auto.csv", "--unknown", "ignore")
    assert got["part"] == "all" and "records no digest of its training data" in said
    asked, said = evaluated(old, auto / "auto.csv", "--part", "validation")
    assert asked["rows"] == 14 and "split as training would split this file" in said
    other = tmp_path / "other.csv"  # on trust, but its training part fits another encoder
    other.write_text("\n".join(auto_rows(40, seed=5)) + "\n")
    refused = invoke("evaluate", old, other, "--part", "validation")
    assert refused.exit_code == 2 and "other.csv cannot be split as in training" in refused.stderr


KINDS = {  # data section, network, loss: small enough to train in a moment
    "csv": ("{kind: csv, path: iris.csv, target: species, SPLITS}", "", "cross_entropy"),
    "images": ("{kind: images, path: digits, SPLITS}", "- flatten\n    ", "cross_entropy"),
    "sequences": (
        "{kind: sequences, path: walks.csv, id: walk, order: t, target: drift, SPLITS}",
        "- {type: gru, units: 4}\n    ",
        "cross_entropy",
    ),
    "timeseries": (
        "{kind: timeseries, path: sunspots.csv, columns: [sunactivity], target: sunactivity, "
        "window: 6, SPLITS}",
        "- flatten\n    ",
        "mse",
    ),
    "text": (
        "{kind: text, path: text.txt, sequence_length: 12, max_chars: 3000, validation_split: 0.2}",
        "",
        "cross_entropy",
    ),
}


def kind_folder(root: Path) -> Path:
    """Small copies of the shipped data sets, one per data kind."""
    import shutil

    shutil.copy(DATASETS / "iris.csv", root / "iris.csv")
    for label in ("0", "1", "7"):
        (root / "digits" / label).mkdir(parents=True)
        for image in sorted((DATASETS / "digits_png" / label).iterdir())[:15]:
            shutil.copy(image, root / "digits" / label / image.name)
    walks = (DATASETS / "walks.csv").read_text().splitlines()
    (root / "walks.csv").write_text("\n".join(walks[:1201]) + "\n")
    shutil.copy(DATASETS / "sunspots_yearly.csv", root / "sunspots.csv")
    (root / "text.txt").write_text((DATASETS / "shakespeare.txt").read_text()[:3000])
    return root


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_splits_again_as_training_did(kind: str, tmp_path: Path):
    """The validation part scores as training's last val_loss, the test part as the test_loss
    it recorded: the same rows, encoded the same way."""
    section, first, loss = KINDS[kind]
    section = section.replace("SPLITS", "validation_split: 0.2, test_split: 0.2")
    last = "{type: dense, units: auto" + (", activation: softmax}" if loss != "mse" else "}")
    (kind_folder(tmp_path) / "spec.yaml").write_text(
        f"seed: 0\ndata: {section}\nmodel:\n  layers:\n    {first}- {last}\nloss: {loss}\n"
        "optimizer: {type: adam, learning_rate: 0.01}\ntraining: {epochs: 2, batch_size: 16}\n"
        "output: out/model.h5\n"
    )
    trained = invoke("train", tmp_path / "spec.yaml", "--quiet")
    assert trained.exit_code == 0, trained.stderr
    model = tmp_path / "out" / "model.h5"
    data = tmp_path / section.split("path: ")[1].split(",")[0]
    record = model_io.load(model).training
    validation, said = evaluated(model, data, "--part", "validation")
    assert "the file this model was trained on" in said
    assert validation["metrics"]["loss"] == pytest.approx(
        record["history"]["val_loss"][-1], rel=TOLERANCE
    )
    default = evaluated(model, data)[0]
    if kind == "text":  # text holds out no test part
        assert default == validation
        return
    assert default["part"] == "test"
    assert default["metrics"]["loss"] == pytest.approx(record["test_loss"], rel=TOLERANCE)
    parts = [evaluated(model, data, "--part", p)[0]["rows"] for p in ("train", "validation")]
    assert sum(parts) + default["rows"] == default["rows_in_file"]
