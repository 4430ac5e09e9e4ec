"""``trainable: false`` (nncli/engine/layer.py, network.py, training/loop.py): a frozen layer's
parameters come out of training byte for byte as they went in, hold no optimizer state, and a
frozen batchnorm runs on its running statistics, which stay as they are; the spec, ``inspect``
and the checkpoint know it."""

import h5py
import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line

from nncli.engine import OPTIMIZERS
from nncli.engine.losses import make_loss
from nncli.engine.network import Network
from nncli.training.loop import fit

X = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[np.random.default_rng(1).integers(0, 3, 32)]


def trained(layers, optimizer="adam", backend=None, **settings):
    net = Network(layers, (6,), backend=backend, seed=0)
    before = net.get_weights()
    opt = OPTIMIZERS.create(optimizer, {"learning_rate": 0.05, **settings})
    fit(net, make_loss("cross_entropy"), opt, X, Y, epochs=3, batch_size=8)
    return net, before, net.get_weights(), opt


def test_a_frozen_layer_keeps_its_weights_byte_for_byte_and_has_no_optimizer_state():
    layers = [
        {"type": "dense", "units": 8, "activation": "relu", "trainable": False},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    net, before, after, opt = trained(layers, weight_decay=0.1, clip_norm=0.5)
    for name in ("0.dense.weight", "0.dense.bias"):
        assert after[name].tobytes() == before[name].tobytes(), name
    assert not np.array_equal(after["1.dense.weight"], before["1.dense.weight"])
    assert set(opt.export_state()) == {"1.dense.weight", "1.dense.bias"}
    assert net.config()[0]["trainable"] is False and "trainable" not in net.config()[1]


def test_a_frozen_layer_behind_a_trainable_one_still_passes_the_gradient_through():
    layers = [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 8, "activation": "tanh", "trainable": False},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    _, before, after, _ = trained(layers, "sgd", momentum=0.9)
    assert after["1.dense.weight"].tobytes() == before["1.dense.weight"].tobytes()
    assert not np.array_equal(after["0.dense.weight"], before["0.dense.weight"])


def test_a_frozen_batchnorm_keeps_its_running_statistics_and_uses_them_in_training():
    layers = [
        {"type": "dense", "units": 4},
        {"type": "batchnorm", "trainable": False},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    net, before, after, _ = trained(layers)
    for name in ("running_mean", "running_var", "weight", "bias"):
        key = f"1.batchnorm.{name}"
        assert after[key].tobytes() == before[key].tobytes(), key
    x = X[:5]
    np.testing.assert_array_equal(net.forward(x, training=True), net.forward(x))


def test_a_frozen_residual_block_freezes_its_parts_and_their_batchnorm():
    block = {"type": "residual", "trainable": False,
             "layers": [{"type": "dense", "units": 6}, "batchnorm", "relu"]}  # fmt: skip
    layers = [block, {"type": "dense", "units": 3, "activation": "softmax"}]
    net, before, after, opt = trained(layers)
    frozen = [k for k in before if k.startswith("0.")]
    assert len(frozen) == 6  # dense weight, bias; batchnorm weight, bias, running mean, var
    for key in frozen:
        assert after[key].tobytes() == before[key].tobytes(), key
    assert all(not k.startswith("0.") for k in opt.export_state())
    rebuilt = Network(net.config(), (6,))
    assert rebuilt.layers[0].frozen_names() == set(net.layers[0].params)


def test_a_part_of_a_residual_block_may_be_frozen_alone():
    block = {"type": "residual",
             "layers": [{"type": "dense", "units": 6, "trainable": False}, "tanh"]}  # fmt: skip
    layers = [block, {"type": "dense", "units": 3, "activation": "softmax"}]
    net, before, after, _ = trained(layers)
    key = "0.residual.0.dense.weight"
    assert after[key].tobytes() == before[key].tobytes()
    rebuilt = Network(net.config(), (6,)).layers[0]
    assert rebuilt.frozen_names() == {"0.dense.weight", "0.dense.bias"}


def test_the_spec_inspect_and_checkpoint_know_frozen_layers(tmp_path):
    spec = tmp_path / "spec.yaml"
    text = iris_spec("{epochs: 2, batch_size: 16}")
    spec.write_text(text.replace("relu}", "relu, trainable: false}"))
    (tmp_path / "iris.csv").write_text(IRIS.read_text())
    shown = invoke("inspect", spec)
    assert shown.exit_code == 0, shown.output
    assert "frozen: 40" in shown.stdout.replace("\n", " ") and "trainable: 27" in shown.stdout
    result = invoke("train", spec)
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "out" / "model.h5") as f:
        assert b'"trainable": false' in bytes(f["model/0.dense"].attrs["config"])
        assert "0.dense" not in f["optimizer"]
    again = invoke("inspect", tmp_path / "out" / "model.h5")
    assert "frozen: 40" in again.stdout.replace("\n", " ")


def test_a_checkpoint_of_an_earlier_release_loads_as_all_trainable():
    from helpers import ROOT

    from nncli.checkpoint import model as model_io

    net = model_io.load(ROOT / "tests" / "fixtures" / "v0.1.0" / "iris.h5").net
    assert all(layer.trainable for layer in net.layers)
    assert net.trainable(net.named_parameters()).keys() == net.named_parameters().keys()


@pytest.mark.parametrize("value", ["no", 0])
def test_trainable_takes_a_boolean(tmp_path, value):
    spec = tmp_path / "spec.yaml"
    spec.write_text(iris_spec("{epochs: 1}").replace("relu}", f"relu, trainable: {value}}}"))
    (tmp_path / "iris.csv").write_text(IRIS.read_text())
    result = invoke("validate", spec)
    one_error_line(result, 2, "model.layers[0].trainable", "expected true or false")


def test_a_layer_frozen_after_the_build_is_still_left_alone():
    net = Network([{"type": "dense", "units": 4}, {"type": "dense", "units": 3}], (6,), seed=0)
    net.layers[0].trainable = False  # the flat buffer was laid out with it trainable
    before = net.get_weights()
    fit(net, make_loss("cross_entropy"), OPTIMIZERS.create("adam", {}), X, Y, epochs=1)
    after = net.get_weights()
    assert after["0.dense.weight"].tobytes() == before["0.dense.weight"].tobytes()
    assert not np.array_equal(after["1.dense.weight"], before["1.dense.weight"])


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_frozen_layers_on_the_gpu_stand_in(monkeypatch, optimizer):
    """The device path (one kernel an update over the buffer's trainable slice, the clipping's
    device norm) leaves a frozen layer and a frozen batchnorm's statistics alone too."""
    from nncli.backend import get_backend

    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    layers = [
        {"type": "dense", "units": 8, "activation": "relu", "trainable": False},
        {"type": "batchnorm", "trainable": False},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    momentum = {"momentum": 0.9} if optimizer == "sgd" else {"clip_norm": 0.5}
    _, before, after, _ = trained(layers, optimizer, get_backend("gpu"), **momentum)
    for key in before:
        assert (after[key].tobytes() == before[key].tobytes()) == (not key.startswith("2.")), key
