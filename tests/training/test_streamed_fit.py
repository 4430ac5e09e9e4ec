"""Training on ``data.streaming`` (nncli/training/streamed.py): reproducible to the byte, a run
interrupted and resumed equals the uninterrupted one, and the checkpoint is every other run's
(predict and evaluate read it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import FLOAT32_EPS, IMAGE_SPEC, image_folder, invoke, one_error_line
from test_determinism import datasets

from nncli.data.image_stream import LazyImages

SPEC = """\
seed: 5
data:
  kind: csv
  path: t.csv
  target: species
  streaming: true
  chunk_rows: 50
  buffer_chunks: 2
  validation_split: 0.2
metrics: [f1]
training: {epochs: 3, batch_size: 16, class_weight: balanced}
optimizer: {type: adam, learning_rate: 0.01}
loss: cross_entropy
model:
  layers: [{type: dense, units: 8, activation: relu}, {type: dropout, rate: 0.2},
           {type: dense, units: auto, activation: softmax}]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = 400
    data = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(5.0, 2.0, rows)})
    data["colour"] = rng.choice(["red", "green"], rows)
    data["species"] = np.where(data["a"] + (data["colour"] == "red") > 0.5, "x", "y")
    data.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def train(folder: Path, out: str, *more: str):
    result = invoke("train", folder / "spec.yaml", "--output", folder / out, "--quiet", *more)
    assert result.exit_code == 0, result.stderr
    return datasets(folder / out)


def test_the_same_seed_gives_byte_identical_arrays_and_a_resume_continues_exactly(folder: Path):
    straight = train(folder, "a/model.h5")
    again = train(folder, "b/model.h5")
    train(folder, "c/model.h5", "--set", "training.epochs=2")
    resumed = train(folder, "d/model.h5", "--resume", folder / "c" / "model.h5")
    assert straight.keys() == again.keys() == resumed.keys()
    assert any(key.startswith("optimizer/") for key in straight)
    for key in straight:
        np.testing.assert_array_equal(straight[key], again[key], err_msg=key)
        np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)
    # the streamed run is not the in-memory one: another shuffle, other validation rows
    memory = train(folder, "e/model.h5", "--set", "data.streaming=false")
    assert not np.array_equal(memory["model/0.dense/weight"], straight["model/0.dense/weight"])


def test_predict_and_evaluate_read_a_streamed_run_checkpoint(folder: Path):
    train(folder, "a/model.h5")
    model, data = folder / "a" / "model.h5", folder / "t.csv"
    predicted = invoke("predict", model, data, "--output", folder / "p.csv")
    assert predicted.exit_code == 0, predicted.stderr
    assert set(pd.read_csv(folder / "p.csv")["prediction"]) <= {"x", "y"}
    scored = invoke("evaluate", model, data, "--part", "all")
    assert scored.exit_code == 0, scored.stderr
    assert "accuracy" in scored.stdout
    held = invoke("evaluate", model, data, "--json")  # the validation part, drawn again
    assert held.exit_code == 0, held.stderr
    rows = json.loads(held.stdout)["rows"]
    assert 0.1 * 400 < rows < 0.3 * 400


@pytest.fixture
def image_run(tmp_path: Path) -> Path:
    image_folder(tmp_path / "d")
    spec = IMAGE_SPEC.replace("validation_split: 0.0", "validation_split: 0.25, streaming: true")
    (tmp_path / "spec.yaml").write_text(spec.replace("epochs: 1", "epochs: 2"))
    return tmp_path


def test_a_streamed_folder_trains_a_batch_decoded_at_a_time(image_run: Path, monkeypatch):
    peaks = []
    decode = LazyImages.__getitem__

    def counted(self, rows):
        pixels = decode(self, rows)
        peaks.append(len(pixels))
        return pixels

    monkeypatch.setattr(LazyImages, "__getitem__", counted)
    spec, out = image_run / "spec.yaml", image_run / "a" / "model.h5"
    result = invoke("train", spec, "--output", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    # every batch decodes training.batch_size images (4, of the folder's 9 training images);
    # only the first-loss check (commands/stopping.py) reads once more, at most 1,024 rows
    assert len(peaks) > 4 and sorted(peaks)[-2] <= 4 and max(peaks) <= 1024
    again = invoke("train", spec, "--output", image_run / "b" / "model.h5", "--quiet")
    assert again.exit_code == 0, again.stderr
    first, second = datasets(out), datasets(image_run / "b" / "model.h5")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    predicted = invoke("predict", out, image_run / "d", "--output", image_run / "p.csv")
    assert predicted.exit_code == 0, predicted.stderr


def test_cross_validation_refuses_a_streamed_spec_by_its_line(folder: Path):
    result = invoke("cv", folder / "spec.yaml", "--folds", "3")
    one_error_line(result, 2, "spec.yaml:6:", "data.streaming", "in memory")


def test_a_streamed_run_takes_the_gpu_path_on_the_strict_stand_in(folder: Path, monkeypatch):
    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")  # refuses implicit host conversions, as CuPy does
    on_cpu = train(folder, "cpu/model.h5", "--device", "cpu")
    on_gpu = train(folder, "gpu/model.h5", "--device", "gpu")
    weight = "model/0.dense/weight"
    scale = float(np.abs(on_cpu[weight]).max())
    np.testing.assert_allclose(on_gpu[weight], on_cpu[weight], atol=64 * FLOAT32_EPS * scale)
