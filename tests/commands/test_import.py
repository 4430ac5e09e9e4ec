"""``nncli import`` (nncli/commands/import_weights.py, checkpoint/tensors.py): PyTorch weights
saved with safetensors become a checkpoint whose predictions equal PyTorch's within float32's
rounding: an MLP (through ``nncli predict``), a CNN and an LSTM; mismatches named."""

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    DATASETS,
    IRIS,
    assert_network_close,
    image_folder,
    invoke,
    one_error_line,
    sha,
    torch_reference,
)

from nncli.checkpoint import model as model_io

torch = torch_reference()
safetensors_torch = pytest.importorskip("safetensors.torch")

MLP_SPEC = """\
data: {kind: csv, path: iris.csv, target: species, normalize: none}
model:
  layers:
    - {type: dense, units: 16, activation: tanh}
    - {type: dense, units: 8, activation: relu}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
"""

CNN_SPEC = """\
data: {kind: images, path: d, validation_split: 0.0}
model:
  layers:
    - {type: conv2d, filters: 3, kernel_size: 3, activation: relu}
    - {type: maxpool2d, pool_size: 2}
    - flatten
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
training: {batch_size: 4}
"""

LSTM_SPEC = """\
data: {kind: timeseries, path: sunspots.csv, columns: [sunactivity], target: sunactivity,
       window: 12}
model:
  layers:
    - {type: lstm, units: 5}
    - {type: dense, units: 1}
loss: mse
"""


class LastStep(torch.nn.Module):
    """An LSTM read at its last step, then a linear head (nncli's lstm + dense)."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(1, 5, batch_first=True)
        self.head = torch.nn.Linear(5, 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


def imported(tmp_path: Path, module, spec_text: str, *args: str) -> Path:
    torch.manual_seed(0)
    safetensors_torch.save_file(module.state_dict(), tmp_path / "weights.safetensors")
    (tmp_path / "spec.yaml").write_text(spec_text)
    out = tmp_path / "model.h5"
    result = invoke("import", tmp_path / "weights.safetensors", "--spec", tmp_path / "spec.yaml",
                    "--output", out, *args)  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def outputs(module, x: np.ndarray, softmax: bool = False) -> np.ndarray:
    with torch.no_grad():
        y = module(torch.from_numpy(x))
        return (torch.softmax(y, dim=1) if softmax else y).numpy()


def test_an_mlp_predicts_as_pytorch_does_through_nncli_predict(tmp_path):
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8), torch.nn.ReLU(),
        torch.nn.Linear(8, 3),
    )  # fmt: skip
    (tmp_path / "iris.csv").write_text(IRIS.read_text())
    out = imported(tmp_path, mlp, MLP_SPEC)
    result = invoke("predict", out, tmp_path / "iris.csv", "--proba")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(result.stdout.splitlines()))
    labels = model_io.load(out).labels
    got = np.array([[float(r[f"proba_{label}"]) for label in labels] for r in rows])
    with open(tmp_path / "iris.csv") as f:
        x = np.array([[float(r[k]) for k in list(r)[:4]] for r in csv.DictReader(f)], np.float32)
    net = model_io.load(out).net
    assert_network_close(got, outputs(mlp, x, softmax=True), net, x, more=4)


def test_a_cnn_gives_pytorchs_outputs(tmp_path):
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(27, 2),
    )  # fmt: skip
    image_folder(tmp_path / "d")
    net = model_io.load(imported(tmp_path, cnn, CNN_SPEC)).net
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    assert_network_close(net.forward(x), outputs(cnn, x, softmax=True), net, x)


def test_an_lstm_gives_pytorchs_outputs_and_the_table_names_each_tensor(tmp_path):
    (tmp_path / "sunspots.csv").write_text((DATASETS / "sunspots_yearly.csv").read_text())
    torch.manual_seed(0)
    module = LastStep()
    safetensors_torch.save_file(module.state_dict(), tmp_path / "weights.safetensors")
    (tmp_path / "spec.yaml").write_text(LSTM_SPEC)
    result = invoke("import", tmp_path / "weights.safetensors", "--spec", tmp_path / "spec.yaml",
                    "--output", tmp_path / "model.h5")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0.lstm.weight_ih" in result.stdout and "lstm.weight_ih_l0" in result.stdout
    assert "1.dense.weight" in result.stdout and "head.weight" in result.stdout
    net = model_io.load(tmp_path / "model.h5").net
    x = np.random.default_rng(0).normal(size=(4, 12, 1)).astype(np.float32)
    assert_network_close(net.forward(x), outputs(module, x), net, x, steps=12)


def test_a_shape_mismatch_names_both_shapes_and_writes_nothing(tmp_path):
    mlp = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 7), torch.nn.ReLU(),
        torch.nn.Linear(7, 3),
    )  # fmt: skip
    safetensors_torch.save_file(mlp.state_dict(), tmp_path / "weights.safetensors")
    (tmp_path / "iris.csv").write_text(IRIS.read_text())
    (tmp_path / "spec.yaml").write_text(MLP_SPEC)
    result = invoke("import", tmp_path / "weights.safetensors", "--spec", tmp_path / "spec.yaml",
                    "--output", tmp_path / "model.h5")  # fmt: skip
    one_error_line(result, 2, "layers[1] (dense) weight is (8, 16)", "'2.weight' is (7, 16)")
    assert not (tmp_path / "model.h5").exists()


def test_a_file_that_is_not_safetensors_is_refused(tmp_path):
    (tmp_path / "iris.csv").write_text(IRIS.read_text())
    (tmp_path / "spec.yaml").write_text(MLP_SPEC)
    (tmp_path / "weights.safetensors").write_bytes(b"\x80\x04pickle, not safetensors")
    before = sha(tmp_path / "weights.safetensors")
    result = invoke("import", tmp_path / "weights.safetensors", "--spec", tmp_path / "spec.yaml",
                    "--output", tmp_path / "model.h5")  # fmt: skip
    one_error_line(result, 4, "weights.safetensors", "not a readable safetensors file")
    assert sha(tmp_path / "weights.safetensors") == before
