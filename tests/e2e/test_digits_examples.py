"""The digits examples: the PNG folder and the CSV hold the same images; the CNN on the folder
reaches 97% test accuracy; the CSV's pixel columns become images through a reshape layer; and
validate / inspect show the conv and pool layers' warnings."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from helpers import DATASETS, ROOT, invoke

from nncli import spec as spec_module
from nncli.cli import report
from nncli.commands import train as train_command
from nncli.data.image_files import read_frame

MODELS = ROOT / "models"


def test_png_folder_holds_the_csv_images():
    table = pd.read_csv(DATASETS / "digits.csv")
    frame = read_frame(DATASETS / "digits_png", None, "grayscale")
    assert len(frame) == len(table) == 1797 and frame.pixels.shape == (1797, 1, 8, 8)
    rows = np.array([int(Path(f).stem) for f in frame.files])
    pixels = table[[f"pixel_{i}" for i in range(64)]].to_numpy().reshape(-1, 1, 8, 8)
    np.testing.assert_array_equal(np.rint(frame.pixels * 16), pixels[rows])  # v -> v * 255 / 16
    assert frame.labels == table["label"].astype(str).to_numpy()[rows].tolist()


def test_digits_cnn_reaches_97_percent_on_the_held_out_test_part(tmp_path: Path):
    spec = spec_module.load(MODELS / "digits-cnn.yaml")
    assert spec.data.test_split == 0.2
    result = train_command.train(spec, output=tmp_path / "model.h5")
    assert result.test is not None and result.test["accuracy"] >= 0.97, result.test
    assert report.train_summary(result)[-1].startswith("test: loss ")


def test_digits_mlp_on_the_csv(tmp_path: Path):
    spec = spec_module.load(MODELS / "digits-mlp.yaml")
    result = train_command.train(spec, output=tmp_path / "model.h5")
    assert result.test is not None and result.test["accuracy"] >= 0.93, result.test


RESHAPE_SPEC = """\
version: 1
seed: 0
data: {kind: csv, path: digits.csv, target: label, normalize: none, validation_split: 0.2}
model:
  layers:
    - {type: reshape, shape: [1, 8, 8]}
    - {type: conv2d, filters: 8, kernel_size: 3, padding: same, activation: relu}
    - {type: maxpool2d, pool_size: 2}
    - flatten
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 4, batch_size: 64}
output: out/model.h5
"""


def test_csv_pixel_columns_become_images_through_reshape(tmp_path: Path):
    shutil.copy(DATASETS / "digits.csv", tmp_path / "digits.csv")
    (tmp_path / "spec.yaml").write_text(RESHAPE_SPEC)
    result = invoke("inspect", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    assert "(N, 1, 8, 8)" in result.stdout and "(N, 8, 4, 4)" in result.stdout
    result = invoke("train", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    last = [line for line in result.stdout.splitlines() if line.startswith("epoch 4/4")][0]
    assert float(last.split("val_accuracy ")[1].split()[0]) > 0.9, last
    result = invoke("predict", tmp_path / "out" / "model.h5", tmp_path / "digits.csv")
    assert result.exit_code == 0, result.stderr
    predicted = pd.read_csv(io.StringIO(result.stdout))["prediction"]
    truth = pd.read_csv(tmp_path / "digits.csv")["label"]
    assert len(predicted) == 1797 and (predicted == truth).mean() > 0.9


def test_validate_and_inspect_show_the_layers_warnings(tmp_path: Path):
    text = (MODELS / "digits-cnn.yaml").read_text()
    text = text.replace("../datasets/digits_png", str(DATASETS / "digits_png"))
    text = text.replace("kernel_size: 3, padding: same", "kernel_size: 3, strides: 2", 1)
    (tmp_path / "spec.yaml").write_text(text.replace("pool_size: 2}", "pool_size: 1}", 1))
    result = invoke("validate", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    assert "warning: layers[0] (conv2d): H: 8 + 2*0 - 3 = 5 is not a multiple of stride 2" in (
        result.stdout
    )
    assert result.stdout.strip().endswith("OK")
    result = invoke("inspect", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("nncli: warning:")]
    assert "layers[0] (conv2d): H:" in warnings[0] and "layers[0] (conv2d): W:" in warnings[1]
    assert len(warnings) == 4  # and the second pool's, on the 3x3 maps the stride leaves
    assert "H, W: O = 1 + (8 + 2*0 - 3)/2" in result.stdout  # the size formula with its numbers
