"""``kind: arrays`` (``nncli/data/arrays.py``, ``array_files.py``): x and y of an HDF5 or ``.npz``
file train, predict and evaluate in any shape, the task from the loss; the file is read under a
checkpoint's rules (no links, no data in other files, numbers only, no pickle, memory bounded)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import IRIS, assert_network_close, invoke, one_error_line

from nncli.checkpoint import model as model_io

SPEC = """\
version: 1
seed: 0
data: {{kind: arrays, path: {path}{extra}}}
model:
  layers: [flatten, {{type: dense, units: 8, activation: relu}}, {{type: dense, units: auto{top}}}]
loss: {loss}
optimizer: {{type: adam, learning_rate: 0.01}}
training: {{epochs: 2, batch_size: 16}}
output: out/model.h5
"""


def iris_arrays() -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(IRIS)
    x = frame.iloc[:, :4].to_numpy(np.float32).reshape(-1, 2, 2)  # any shape (N, ...)
    return x, pd.Categorical(frame["species"]).codes.astype(np.int64)


def train(folder: Path, path: str, extra: str = "", loss: str = "cross_entropy") -> Path:
    top = ", activation: softmax" if loss == "cross_entropy" else ""
    spec = SPEC.format(path=path, extra=extra, loss=loss, top=top)
    (folder / "spec.yaml").write_text(spec)
    result = invoke("train", folder / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    return folder / "out" / "model.h5"


def test_hdf5_and_npz_arrays_train_alike_and_predict_and_evaluate(tmp_path):
    x, y = iris_arrays()
    with h5py.File(tmp_path / "iris.h5", "w") as f:
        f["x"], f["y"] = x, y
    np.savez(tmp_path / "iris.npz", features=x, species=y)
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "iris.npz", features=x, species=y)
    from_h5 = model_io.load(train(tmp_path, "iris.h5"))
    from_npz = model_io.load(train(tmp_path / "npz", "iris.npz", ", x: features, y: species"))
    assert from_h5.data["input_shape"] == [2, 2] and from_h5.data["labels"] == ["0", "1", "2"]
    weights, other = from_h5.net.get_weights(), from_npz.net.get_weights()
    assert weights.keys() == other.keys()
    for name, array in weights.items():
        np.testing.assert_array_equal(array, other[name])
    result = invoke("predict", tmp_path / "out" / "model.h5", tmp_path / "iris.h5", "--proba")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "prediction,proba_0,proba_1,proba_2" and len(lines) == 151
    evaluated = invoke("evaluate", tmp_path / "npz" / "out" / "model.h5", tmp_path / "iris.npz")
    assert evaluated.exit_code == 0 and "accuracy" in evaluated.stdout, evaluated.stderr


def test_regression_targets_of_any_shape_and_one_hot_classes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3, 2)).astype(np.float32)
    y = x.reshape(40, 6) @ rng.normal(size=(6, 6))
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["x"], f["y"] = x, y.reshape(40, 2, 3)
    model = model_io.load(train(tmp_path, "r.h5", loss="mse"))
    assert model.data["task"] == "regression" and model.net.layers[-1].units == 6
    result = invoke("predict", tmp_path / "out" / "model.h5", tmp_path / "r.h5")
    assert result.stdout.splitlines()[0] == ",".join(f"prediction_{j}" for j in range(6))
    (tmp_path / "c").mkdir()
    np.savez(tmp_path / "c" / "c.npz", x=x, y=np.eye(3)[np.arange(40) % 3])
    assert model_io.load(train(tmp_path / "c", "c.npz")).data["labels"] == ["0", "1", "2"]


def hostile(path: Path, name: str) -> None:
    x, y = iris_arrays()
    if name == "objects.npz":
        np.savez(path, x=np.array([[1, "a"]] * 150, dtype=object), y=y)
        return
    with h5py.File(path, "w") as f:
        f["y"] = y
        if name == "external.h5":
            f["x"] = h5py.ExternalLink("other.h5", "/x")
        elif name == "soft.h5":
            f["data"], f["x"] = x, h5py.SoftLink("/data")
        elif name == "text.h5":
            f["x"] = np.array([b"a"] * 150)
        elif name == "misspelt.h5":
            f["inputs"] = x
        elif name == "rows.h5":
            f["x"] = x[:100]


HOSTILE = {
    "external.h5": "array 'x' is an external link; nncli follows no links",
    "soft.h5": "array 'x' is a link; nncli follows no links",
    "text.h5": "array 'x' holds |S1 values; expected numbers",
    "objects.npz": "cannot read it as a numpy .npz archive: Object arrays cannot be loaded",
    "misspelt.h5": "no array 'x' in the file (it has 'inputs', 'y')",
    "rows.h5": "array 'x' has 100 rows and 'y' 150",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_or_wrong_arrays_file_is_one_line_exit_3(tmp_path, name):
    hostile(tmp_path / name, name)
    (tmp_path / "spec.yaml").write_text(
        SPEC.format(path=name, extra="", loss="cross_entropy", top=", activation: softmax")
    )
    one_error_line(invoke("train", tmp_path / "spec.yaml"), 3, name, HOSTILE[name])


def test_an_array_over_the_memory_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    hostile(tmp_path / "rows.h5", "big")
    x, y = iris_arrays()
    with h5py.File(tmp_path / "big.h5", "w") as f:
        f["x"], f["y"] = x, y
    monkeypatch.setenv("NNCLI_MAX_MEMORY", "1000")
    (tmp_path / "spec.yaml").write_text(
        SPEC.format(path="big.h5", extra="", loss="cross_entropy", top=", activation: softmax")
    )
    one_error_line(invoke("train", tmp_path / "spec.yaml"), 3, "array 'x' of shape (150, 2, 2)")


def test_init_writes_a_starter_for_an_arrays_file_that_validates(tmp_path):
    x, y = iris_arrays()
    np.savez(tmp_path / "iris.npz", x=x, species=y)
    spec = tmp_path / "iris.yaml"
    result = invoke("init", tmp_path / "iris.npz", "--target", "species", "--output", spec)
    assert result.exit_code == 0, result.stderr
    text = spec.read_text()
    assert "kind: arrays" in text and "y: species" in text and "- flatten" in text


def test_an_arrays_model_exports_to_onnx_and_predicts_alike(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    x, y = iris_arrays()
    with h5py.File(tmp_path / "iris.h5", "w") as f:
        f["x"], f["y"] = x, y
    model = train(tmp_path, "iris.h5")
    assert invoke("export", model, "--output", tmp_path / "m.onnx").exit_code == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x})
    from nncli.training.loop import predict

    net = model_io.load(model).net
    assert_network_close(onnx_out, predict(net, x), net, x, more=4)
