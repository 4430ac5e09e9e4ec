"""Layers with settings and state from a spec (batchnorm, layernorm, conv1d, the pools, embedding;
huber, label smoothing, adamw) through train, inspect and the checkpoint: each reloads to the
same predictions, batchnorm's running statistics are saved, and a resumed run equals a straight
one."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import DATASETS, assert_network_close, invoke

from nncli import spec as spec_module
from nncli.checkpoint import model as model_io
from nncli.engine.history import History
from nncli.spec import build
from nncli.training.loop import predict

IRIS = """\
version: 1
seed: 0
data: {kind: csv, path: iris.csv, target: species, validation_split: 0.2}
model:
  layers:
    - {type: dense, units: 8}
    - {type: batchnorm, momentum: 0.2}
    - {type: layernorm}
    - {type: dense, units: 8, activation: gelu}
    - silu
    - {type: dense, units: 8, activation: swish}
    - {type: dense, units: auto, activation: softmax}
loss: {type: cross_entropy, label_smoothing: 0.1}
optimizer: {type: adamw, learning_rate: 0.01, weight_decay: 0.05}
training: {epochs: 4, batch_size: 16}
output: out/model.h5
"""

SUNSPOTS = """\
version: 1
seed: 0
data: {kind: timeseries, path: sunspots_yearly.csv, columns: [sunactivity],
       target: sunactivity, window: 12}
model:
  layers:
    - {type: conv1d, filters: 4, kernel_size: 3, padding: same, activation: relu}
    - {type: maxpool1d, pool_size: 2}
    - {type: batchnorm}
    - {type: conv1d, filters: 4, kernel_size: 2, dilation: 2, strides: 1, padding: 1}
    - {type: avgpool1d, pool_size: 2, strides: 1}
    - POOL
    - {type: dense, units: 1}
loss: {type: huber, delta: 0.5}
optimizer: {type: adamw}
training: {epochs: 2, batch_size: 32}
output: out/model.h5
"""

WALKS = """\
version: 1
seed: 0
data: {kind: sequences, path: walks.csv, id: walk, order: t, features: [value],
       target: drift, target_per: sequence}
model:
  layers:
    - {type: conv1d, filters: 4, kernel_size: 3, padding: same, activation: relu}
    - {type: batchnorm}
    - {type: global_avgpool}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
training: {epochs: 2, batch_size: 16}
output: out/model.h5
"""


def train(tmp_path: Path, spec: str, data: str, *extra: object) -> Path:
    shutil.copy(DATASETS / data, tmp_path / data)
    (tmp_path / "spec.yaml").write_text(spec)
    result = invoke("train", tmp_path / "spec.yaml", "--quiet", *extra)
    assert result.exit_code == 0, result.stderr
    return tmp_path / "out" / "model.h5"


def reloads_identically(path: Path, x: np.ndarray, mask=None) -> model_io.Model:
    model = model_io.load(path)
    first = predict(model.net, x, mask=mask)
    np.testing.assert_array_equal(first, predict(model_io.load(path).net, x, mask=mask))
    return model


def test_dense_stack_with_normalisation_trains_saves_and_inspects(tmp_path):
    path = train(tmp_path, IRIS, "iris.csv")
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    model = reloads_identically(path, x)
    norm = model.net.layers[1]
    assert norm.type_name == "batchnorm" and norm.momentum == 0.2
    assert not np.allclose(model_io.load(path).net.layers[1].state["running_var"], 1.0)
    with h5py.File(path, "r") as f:  # the running statistics as trained, saved beside weight
        np.testing.assert_array_equal(f["model/1.batchnorm/state/running_var"][()],
                                      norm.state["running_var"])  # fmt: skip
    assert model.loss.label_smoothing == 0.1
    result = invoke("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    row = summary["layers"][1]
    assert (row["type"], row["params"], row["non_trainable"]) == ("batchnorm", 16, 16)
    assert summary["non_trainable_params"] == 16
    assert summary["total_params"] == summary["trainable_params"] + 16
    assert "non-trainable" in invoke("inspect", path).stdout


def test_resume_restores_running_statistics_exactly(tmp_path):
    a, b, c = (tmp_path / name / "m.h5" for name in "abc")
    train(tmp_path, IRIS, "iris.csv", "--epochs", "4", "--output", a)
    train(tmp_path, IRIS, "iris.csv", "--epochs", "2", "--output", b)
    train(tmp_path, IRIS, "iris.csv", "--epochs", "4", "--resume", b, "--output", c)
    straight, resumed = model_io.load(a).net.get_weights(), model_io.load(c).net.get_weights()
    assert "1.batchnorm.running_mean" in straight and straight.keys() == resumed.keys()
    for k in straight:
        np.testing.assert_array_equal(straight[k], resumed[k])


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["global_avgpool", "global_maxpool"])
def test_conv1d_and_pools_on_a_time_series(tmp_path, pool):
    path = train(tmp_path, SUNSPOTS.replace("POOL", pool), "sunspots_yearly.csv")
    model = reloads_identically(path, np.random.default_rng(0).normal(size=(5, 12, 1)))
    assert [la.type_name for la in model.net.layers][-2] == pool
    assert model.loss.delta == 0.5
    assert model.net.layers[0].params["weight"].shape == (4, 1, 3)


@pytest.mark.slow
def test_masked_sequences_through_conv1d_batchnorm_and_global_pool(tmp_path):
    path = train(tmp_path, WALKS, "walks.csv")
    x = np.random.default_rng(0).normal(size=(3, 10, 1)).astype(np.float32)
    mask = np.arange(10)[None, :] < np.array([10, 6, 3])[:, None]
    model = reloads_identically(path, x, mask)
    changed = x.copy()
    changed[~mask] = 99.0  # padded steps do not reach the prediction
    padded = predict(model.net, changed, mask=mask)
    assert_network_close(padded, predict(model.net, x, mask=mask), model.net, x, 10, mask)


def test_embedding_from_a_spec_inspects_and_round_trips(tmp_path):
    spec = IRIS.replace("model:\n", "model:\n  input: [5]\n").split("  layers:")[0] + (
        "  layers:\n"
        "    - {type: embedding, input_dim: 7, output_dim: 3}\n"
        "    - {type: global_avgpool}\n"
        "    - {type: dense, units: 2, activation: softmax}\n"
        "loss: cross_entropy\n"
    )
    (tmp_path / "spec.yaml").write_text(spec)
    result = invoke("inspect", tmp_path / "spec.yaml", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["layers"]
    assert [r["output_shape"] for r in rows] == [["N", 5, 3], ["N", 3], ["N", 2]]
    assert rows[0]["params"] == 21
    loaded = spec_module.load(tmp_path / "spec.yaml")
    net = build.network(loaded, (5,), None, build.backend_for(loaded))
    path = tmp_path / "embedding.h5"
    model_io.save(
        path, net=net, loss=build.loss(loaded), data={"input_shape": [5], "dtype": "float32"},
        spec_yaml=spec, optimizer=None, history=History(), seed=0,
    )  # fmt: skip
    ids = np.array([[0, 6, 2, 2, 1], [3, 3, 3, 3, 3]], dtype=np.float32)
    reloaded = reloads_identically(path, ids)
    np.testing.assert_array_equal(predict(reloaded.net, ids), predict(net, ids))
