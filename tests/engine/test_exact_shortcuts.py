"""The engine's shortcuts change no number (asserted exactly, no time measured): flat parameter
buffers behave like separate arrays, fused optimizer steps keep the per-name state format and
resume bit for bit, the Adam state is flushed before it turns subnormal, reused work arrays never
leak into outputs, the first layer's input gradient is skipped only when nobody can want it, and
a ReLU run behind a max pool gives the plain order's outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest

from nncli.backend import get_backend
from nncli.engine.losses import make_loss
from nncli.engine.network import Sequential
from nncli.engine.optimizers import FLUSH_EVERY, Adam, FlatParameters
from nncli.training.loop import fit

MLP = [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 3}]


def data(rows=40, features=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, rows)]


def test_parameters_and_gradients_are_views_into_flat_buffers():
    net = Sequential(MLP, (5,), seed=1)
    params, grads = net.named_parameters(), net.named_gradients()
    assert isinstance(params, FlatParameters) and isinstance(grads, FlatParameters)
    assert params.buffer.size == net.parameter_count() == grads.buffer.size
    params["1.dense.bias"][...] = 7.0  # a write through a view reaches the buffer
    assert (params.buffer[-3:] == 7.0).all()
    net.set_weights({k: np.ones_like(v) for k, v in net.get_weights().items()})
    assert (params.buffer == 1.0).all()


def test_a_replaced_gradient_array_is_copied_into_the_buffer():
    net = Sequential(MLP, (5,), seed=1)
    layer = net.layers[0]
    layer.grads["bias"] = np.full(8, 3.0, np.float32)  # a layer that assigns a new array
    grads = net.named_gradients()
    assert (grads["0.dense.bias"] == 3.0).all() and (grads.buffer[40:48] == 3.0).all()


def test_fused_steps_export_per_name_state_and_resume_bit_for_bit():
    x, y = data()

    def trained(epochs, start=None):
        net = Sequential(MLP, (5,), seed=1)
        opt = Adam(learning_rate=0.01)
        if start is not None:
            net.set_weights(start[0])
            opt.load_state(start[1], start[2], get_backend())
        fit(net, make_loss("cross_entropy"), opt, x, y, epochs=epochs[1],
            initial_epoch=epochs[0], batch_size=8)  # fmt: skip
        state = {n: {s: a.copy() for s, a in sl.items()} for n, sl in opt.export_state().items()}
        return net.get_weights(), state, opt.step_count

    straight = trained((0, 6))
    half = trained((0, 3))
    assert sorted(half[1]) == sorted(straight[1])  # by parameter name, as checkpoints store
    assert half[1]["0.dense.weight"]["m"].shape == (8, 5)
    resumed = trained((3, 6), start=half)
    for name in straight[0]:
        np.testing.assert_array_equal(resumed[0][name], straight[0][name])


def test_adam_state_is_flushed_before_it_becomes_subnormal():
    p = np.ones(4, np.float32)
    opt = Adam()
    opt.step({"w": p}, {"w": np.full(4, 1e-28, np.float32)})  # m = 1e-29: normal, tiny
    for _ in range(FLUSH_EVERY - 1):  # m decays by 0.9 a step with a zero gradient
        opt.step({"w": p}, {"w": np.zeros(4, np.float32)})
    m, v = opt.state["w"]["m"], opt.state["w"]["v"]
    tiny = np.finfo(np.float32).tiny
    assert not ((m != 0) & (abs(m) < tiny)).any() and not ((v != 0) & (abs(v) < tiny)).any()
    assert (m == 0).all()


@pytest.mark.parametrize("settings", [{"return_sequences": False}, {"return_sequences": True}])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_recurrent_outputs_survive_the_next_batch(kind, settings):
    """The time loop reuses its work arrays; an output handed out must be a copy (N = 1 too)."""
    net = Sequential([{"type": kind, "units": 4, **settings}], (3, 2), seed=0)
    rng = np.random.default_rng(0)
    first = net.forward(rng.standard_normal((1, 3, 2)).astype(np.float32))
    kept = first.copy()
    net.forward(rng.standard_normal((1, 3, 2)).astype(np.float32))
    np.testing.assert_array_equal(first, kept)


def test_first_layer_input_gradient_only_when_it_can_be_wanted():
    net = Sequential(MLP, (5,), seed=1)
    x, _ = data(rows=4)
    dy = np.ones((4, 3), np.float32)
    net.forward(x, training=True)
    assert net.backward(dy) is None  # training: nobody uses dL/dx
    assert net.backward(dy, input_grad=True).shape == x.shape
    net.forward(x, training=False)
    assert net.backward(dy).shape == x.shape


def test_training_backward_stops_at_the_first_layer_with_parameters(monkeypatch):
    """Behind a reshape the first conv computes no col2im (counted), and every gradient is the
    one a backward with the input gradient gives."""
    from nncli.engine.layers import windows

    layers = [
        {"type": "reshape", "shape": [1, 6, 6]},
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "same"},
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "activation": "relu"},
        {"type": "flatten"},
        {"type": "dense", "units": 3},
    ]
    net = Sequential(layers, (36,), seed=1)
    x = np.random.default_rng(0).standard_normal((4, 36)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    net.forward(x, training=True)
    net.backward(dy, input_grad=True)
    full = {k: v.copy() for k, v in net.named_gradients().items()}
    calls = []
    fold = windows.fold_columns
    monkeypatch.setattr(windows, "fold_columns", lambda *a: calls.append(1) or fold(*a))
    monkeypatch.setattr(net.layers[0], "backward", lambda dy: pytest.fail("reshape ran"))
    assert net.backward(dy) is None
    assert len(calls) == 1  # the second conv's dL/dx only
    for name, grad in net.named_gradients().items():
        np.testing.assert_array_equal(grad, full[name])


@pytest.mark.parametrize("kernels_on", [True, False])
def test_relu_runs_behind_the_max_pool_with_the_same_outputs_and_gradients(monkeypatch, kernels_on):
    """conv (relu) + maxpool: the ReLU moves into the pool (never on the conv's 4x larger
    output, counted), and outputs and every gradient equal the plain order's."""
    from nncli.engine import kernels
    from nncli.engine.activations import ReLU

    monkeypatch.delenv("NNCLI_KERNELS", raising=False)  # both paths, whatever the suite runs
    monkeypatch.setattr(kernels, "_kernels", None if kernels_on else False)
    layers = [
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "maxpool2d", "pool_size": 3, "strides": 1, "padding": 1},
        {"type": "flatten"},
        {"type": "dense", "units": 3},
    ]
    x = np.random.default_rng(0).standard_normal((32, 2, 16, 16)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((32, 3)).astype(np.float32)
    results, calls, forward = [], [], ReLU.forward
    monkeypatch.setattr(ReLU, "forward", lambda self, z: calls.append(1) or forward(self, z))
    for commute in (True, False):
        net = Sequential(layers, (2, 16, 16), seed=3)
        assert net.layers[1].relu and net.layers[3].relu
        if not commute:
            for layer in net.layers:
                layer.activation_deferred = False
                layer.relu = False
        calls.clear()
        y = net.forward(x, training=True)
        dx = net.backward(dy, input_grad=True)
        # the plain order's ReLU runs in the conv's own output pass where the kernels are on
        assert len(calls) == (0 if commute or kernels_on else 2)
        assert net.layers[0]._fused_relu() == (not commute)
        assert [layer.index for layer in net.layers] == list(range(len(layers)))  # untouched
        results.append([y, dx, *(g.copy() for g in net.named_gradients().values())])
    for ours, plain in zip(*results, strict=True):
        np.testing.assert_array_equal(ours, plain)
