"""How a graph is stored (issue 26): each layer's config keeps its ``name``/``inputs`` and a
residual its parts' configs, so a checkpoint rebuilds its graph and predicts the same; a stack
written as an explicit graph stores byte for byte the arrays it stores as a stack; a resumed
graph run ends on the weights of an uninterrupted one; a damaged wiring is refused (exit 4)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, invoke, one_error_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncli import checkpoint
from nncli.checkpoint import model as model_io
from nncli.engine import LOSSES, OPTIMIZERS
from nncli.engine.network import Network
from nncli.training.callbacks import History
from nncli.training.loop import fit

GRAPH = [
    {"type": "dense", "units": 6, "activation": "relu", "name": "stem"},
    {"type": "residual", "name": "deep",
     "layers": [{"type": "dense", "units": 6, "activation": "tanh"}, "batchnorm",
                {"type": "dropout", "rate": 0.2}]},
    {"type": "dense", "units": 3, "inputs": "input", "name": "wide"},
    {"type": "concat", "inputs": ["deep", "wide"]},
    {"type": "dense", "units": 3, "activation": "softmax"},
]  # fmt: skip


def saved(path: Path, net: Network, optimizer=None) -> Path:
    data = {"kind": "csv", "input_shape": list(net.input_shape), "dtype": "float32"}
    model_io.save(path, net=net, loss=LOSSES.create("cross_entropy"), data=data, spec_yaml="",
                  optimizer=optimizer, history=History(), seed=0)  # fmt: skip
    return path


def test_the_configs_keep_the_wiring_and_the_parts(tmp_path):
    net = Network(GRAPH, (4,), seed=1)
    stored = checkpoint.load(saved(tmp_path / "m.h5", net))
    configs = [layer.config for layer in stored.layers]
    assert configs[0]["name"] == "stem" and "inputs" not in configs[0]
    assert configs[2]["inputs"] == "input" and configs[3]["inputs"] == ["deep", "wide"]
    assert [part["type"] for part in configs[1]["layers"]] == ["dense", "batchnorm", "dropout"]
    assert configs[1]["layers"][2]["rate"] == 0.2
    assert sorted(stored.layers[1].state) == [
        "1.batchnorm.running_mean", "1.batchnorm.running_var"
    ]  # fmt: skip
    loaded = model_io.load(tmp_path / "m.h5").net
    assert loaded.config() == net.config() and not loaded.is_stack
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def test_a_stacks_configs_are_what_they_always_were(tmp_path):
    layers = [{"type": "dense", "units": 3, "activation": "relu"}, {"type": "dense", "units": 2}]
    stored = checkpoint.load(saved(tmp_path / "m.h5", Network(layers, (4,))))
    assert [sorted(layer.config) for layer in stored.layers] == [
        ["activation", "type", "units"], ["type", "units"]
    ]  # fmt: skip
    assert model_io.load(tmp_path / "m.h5").net.is_stack


# -- a stack written as a graph ------------------------------------------------------------------
VECTOR_LAYERS = st.one_of(
    st.builds(lambda u, a: {"type": "dense", "units": u, "activation": a},
              st.integers(1, 6), st.sampled_from(["relu", "tanh", "sigmoid", "linear"])),
    st.just({"type": "dropout", "rate": 0.3}),
    st.just("batchnorm"),
    st.just("layernorm"),
    st.sampled_from(["relu", "elu", "tanh"]),
)  # fmt: skip
IMAGE_LAYERS = st.one_of(
    st.builds(lambda f, k: {"type": "conv2d", "filters": f, "kernel_size": k, "padding": "same",
                            "activation": "relu"}, st.integers(1, 3), st.sampled_from([1, 3])),
    st.just({"type": "maxpool2d", "pool_size": 2, "padding": "same"}),
    st.just("batchnorm"),
)  # fmt: skip
STACKS = st.one_of(
    st.tuples(st.just((5,)), st.lists(VECTOR_LAYERS, max_size=5).map(
        lambda layers: [*layers, {"type": "dense", "units": 2}])),
    st.tuples(st.just((1, 6, 6)), st.lists(IMAGE_LAYERS, min_size=1, max_size=3).map(
        lambda layers: [*layers, "flatten", {"type": "dense", "units": 3}])),
)  # fmt: skip


def explicit(layers: list) -> list[dict]:
    """Every layer named, and given the layer before it (the first the input) as its input."""
    entries = [{"type": layer} if isinstance(layer, str) else dict(layer) for layer in layers]
    for i, entry in enumerate(entries):
        entry |= {"name": f"layer_{i}", "inputs": f"layer_{i - 1}" if i else "input"}
    return entries


def trained_arrays(layers: list, shape: tuple[int, ...], folder: Path) -> dict[str, bytes]:
    net = Network(layers, shape, seed=7)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, *shape)).astype(np.float32)
    y = rng.normal(size=(12, *net.output_shape)).astype(np.float32)
    optimizer = OPTIMIZERS.create("adam", {"learning_rate": 0.01})
    fit(net, LOSSES.create("mse"), optimizer, x, y, epochs=2, batch_size=5, seed=3)
    stored = checkpoint.load(saved(folder / "m.h5", net, optimizer))
    arrays = {
        f"{layer.index}/{kind}/{name}": a.tobytes()
        for layer in stored.layers
        for kind, held in (("params", layer.params), ("state", layer.state))
        for name, a in held.items()
    }
    arrays |= {
        f"optimizer/{name}/{slot}": a.tobytes()
        for name, slots in stored.optimizer.state.items()
        for slot, a in slots.items()
    }
    return arrays


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack=STACKS)
def test_a_stack_written_as_a_graph_stores_the_same_bytes(stack):
    shape, layers = stack
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "a").mkdir()
        (Path(folder) / "b").mkdir()
        plain = trained_arrays(layers, shape, Path(folder) / "a")
        graph = trained_arrays(explicit(layers), shape, Path(folder) / "b")
    assert plain.keys() == graph.keys() and plain
    assert all(plain[name] == graph[name] for name in plain)


# -- a graph spec through the command line -------------------------------------------------------
SPEC = """\
version: 1
seed: 0
data: {kind: csv, path: iris.csv, target: species, validation_split: 0.2}
model:
  layers:
    - {type: dense, units: 8, activation: relu, name: stem}
    - {type: residual, name: block, layers: [{type: dense, units: 8, activation: relu},
                                             batchnorm, {type: dropout, rate: 0.2},
                                             {type: dense, units: 8}]}
    - {type: dense, units: 4, inputs: input, name: wide}
    - {type: concat, inputs: [block, wide]}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 4, batch_size: 16}
output: out/model.h5
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    (tmp_path / "graph.yaml").write_text(SPEC)
    return tmp_path


def test_a_resumed_graph_run_ends_on_the_uninterrupted_runs_weights(work: Path):
    spec = work / "graph.yaml"
    straight, half, resumed = work / "a" / "m.h5", work / "b" / "m.h5", work / "c" / "m.h5"
    assert invoke("train", spec, "--output", straight, "--quiet").exit_code == 0
    assert invoke("train", spec, "--epochs", 2, "--output", half, "--quiet").exit_code == 0
    result = invoke("train", spec, "--resume", half, "--output", resumed, "--quiet")
    assert result.exit_code == 0, result.stderr
    a, c = model_io.load(straight).net.get_weights(), model_io.load(resumed).net.get_weights()
    assert a.keys() == c.keys() and "1.residual.1.batchnorm.running_var" in a
    for name in a:
        np.testing.assert_array_equal(a[name], c[name], err_msg=name)


def test_a_damaged_wiring_is_refused_naming_it(work: Path):
    spec = work / "graph.yaml"
    assert invoke("train", spec, "--epochs", 1, "--quiet").exit_code == 0
    path = work / "out" / "model.h5"
    stored = checkpoint.load(path)
    stored.layers[3].config["inputs"] = ["block", "wid"]
    checkpoint.save(path, stored)
    one_error_line(invoke("predict", path, work / "iris.csv"), 4, "cannot be rebuilt",
                   "layers[3].inputs[1]", "got 'wid' (did you mean 'wide'?)")  # fmt: skip
