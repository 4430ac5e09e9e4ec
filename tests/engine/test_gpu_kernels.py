"""Fused GPU kernels (``kernels.gpu_kernel``, declared beside their operations: the optimizers' in
nncli/engine/optimizer_kernels.py, the cells' in nncli/engine/layers/recurrent/lstm.py and gru.py):
the numpy references equal the engine's unfused math exactly, the stand-in goes through them, and
on a real GPU (skipped without one) each CuPy kernel matches its reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import LIBM_ULPS, assert_close_float32

from nncli.backend import get_backend, gpu_available, to_host
from nncli.engine import kernels, optimizer_kernels
from nncli.engine.layers.recurrent import gru, lstm
from nncli.engine.network import Sequential
from nncli.engine.registry import OPTIMIZERS
from nncli.testing import fakegpu

OPTIMIZER_CASES = [
    {"type": "adam", "learning_rate": 0.01},
    {"type": "adam", "learning_rate": 0.01, "weight_decay": 0.1},
    {"type": "adamw", "learning_rate": 0.01, "weight_decay": 0.05},
    {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
    {"type": "sgd", "learning_rate": 0.1, "momentum": 0.8, "nesterov": True},
    {"type": "rmsprop", "learning_rate": 0.01, "rho": 0.8},
]


def _optimizer(settings: dict):
    settings = dict(settings)
    return OPTIMIZERS.create(settings.pop("type"), settings)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("settings", OPTIMIZER_CASES, ids=lambda s: "-".join(map(str, s.values())))
def test_optimizer_references_equal_the_engine_update_exactly(monkeypatch, settings, dtype):
    """The engine's in-place numpy update on the host against optimizer_kernels.py's reference on
    the stand-in (which is what a GPU run without CuPy kernels computes), five steps."""
    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    device = get_backend("gpu", np.dtype(dtype).name)
    rng = np.random.default_rng(0)
    shapes = {"0.dense.weight": (5, 3), "0.dense.bias": (5,)}
    host = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
    on_device = {k: device.asarray(v) for k, v in host.items()}
    engine, reference = _optimizer(settings), _optimizer(settings)
    for _ in range(5):
        grads = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
        engine.step(host, grads)
        reference.step(on_device, {k: device.asarray(g) for k, g in grads.items()})
    for name, p in host.items():
        np.testing.assert_array_equal(p, to_host(on_device[name]))
        for slot, value in engine.state[name].items():
            np.testing.assert_array_equal(value, to_host(reference.state[name][slot]))


def _gates(rng, h: int, n: int, blocks: int) -> np.ndarray:
    return rng.normal(size=(blocks * h, n))


def test_lstm_reference_equals_the_cell_math_exactly():
    """h' = o tanh(c'), c' = f c + i g, the sigmoid gates as 0.5 tanh + 0.5 of halved sums."""
    rng, h, n = np.random.default_rng(1), 3, 4
    a, c = _gates(rng, h, n, 4), rng.normal(size=(h, n))
    t = np.tanh(a)
    i, f, g, o = (t[k * h : (k + 1) * h] for k in range(4))
    i, f, o = (s * 0.5 + 0.5 for s in (i, f, o))
    c_new = f * c + i * g
    (h_new, c_ref), (gates, _, tanh_c) = lstm.cell_forward(a.copy(), c, h)
    np.testing.assert_array_equal(c_ref, c_new)
    np.testing.assert_array_equal(h_new, o * np.tanh(c_new))
    dh, dc, dgi = rng.normal(size=(h, n)), rng.normal(size=(h, n)), np.empty((4 * h, n))
    dc_prev = lstm.cell_backward(dh, dc, (gates, c, tanh_c), dgi, h)
    d = (1 - tanh_c * tanh_c) * o * dh + dc
    expected = [(d * g) * ((1 - i) * i), (d * c) * ((1 - f) * f), (d * i) * (1 - g * g)]
    expected.append((dh * tanh_c) * ((1 - o) * o))
    np.testing.assert_array_equal(dgi, np.concatenate(expected))
    np.testing.assert_array_equal(dc_prev, d * f)


def test_gru_reference_equals_the_cell_math_exactly():
    """r, z = s(gi + gh); n = tanh(gi_n + r gh_n); h' = (1 - z) n + z h, as (h - n) z + n."""
    rng, h, n = np.random.default_rng(2), 3, 4
    gi, gh, h_prev = _gates(rng, h, n, 3), _gates(rng, h, n, 3), rng.normal(size=(h, n))
    rz = np.tanh(gh[: 2 * h] + gi[: 2 * h]) * 0.5 + 0.5
    r, z = rz[:h], rz[h:]
    new = np.tanh(r * gh[2 * h :] + gi[2 * h :])
    (h_new,), cache = gru.cell_forward(gi, gh.copy(), h_prev, h)
    np.testing.assert_array_equal(h_new, (h_prev - new) * z + new)
    dh, dgi, dgh = rng.normal(size=(h, n)), np.empty((3 * h, n)), np.empty((3 * h, n))
    dh_prev = gru.cell_backward(dh, cache, dgi, dgh, h)
    dn = (dh * (1 - z)) * (1 - new * new)
    dr = (dn * gh[2 * h :]) * (r * (1 - r))
    dz = (dh * (h_prev - new)) * (z * (1 - z))
    np.testing.assert_array_equal(dgi, np.concatenate([dr, dz, dn]))
    np.testing.assert_array_equal(dgh, np.concatenate([dr, dz, dn * r]))
    np.testing.assert_array_equal(dh_prev, dh * z)


def test_the_stand_in_goes_through_every_fused_step(monkeypatch):
    """A GPU run asks kernels.py for its kernels (the stand-in then runs the references): the
    dispatch a real GPU takes is the one CI exercises."""
    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    asked: list[str] = []
    monkeypatch.setattr(kernels, "gpu_kernel", lambda x, name: asked.append(name))
    device = get_backend("gpu", "float64")
    layers = [{"type": "lstm", "units": 3, "return_sequences": True}, {"type": "gru", "units": 2}]
    net = Sequential(layers, (4, 2), device, seed=0)
    x = device.asarray(np.random.default_rng(0).normal(size=(5, 4, 2)))
    for settings in OPTIMIZER_CASES[::2] + OPTIMIZER_CASES[-1:]:
        net.backward(net.forward(x, training=True))
        _optimizer(settings).step(net.named_parameters(), net.named_gradients())
    assert set(asked) == set(kernels.CUDA)
    fakegpu.COUNTS.clear()


def test_each_kernel_is_called_with_its_parameters(monkeypatch):
    """The GPU branch of every fused step hands its kernel one argument per declared parameter,
    of the declared shapes (checked here without CUDA), and no parameter takes a name CuPy
    reserves."""
    called: dict[str, int] = {}

    def fake(x, name):
        ins, outs, operation = kernels.CUDA[name]
        params = [p.split()[-1] for p in (ins + ", " + outs).split(", ")]
        assert not {"i", "n", "_ind"} & set(params), name
        assert all(p in operation for p in params), name

        def kernel(*args):
            assert len(args) == len(params), (name, len(args), params)
            shapes = {np.shape(a) for a in args if isinstance(a, np.ndarray)}
            assert len(shapes) == 1, (name, shapes)  # elementwise: one shape, no broadcasting
            called[name] = called.get(name, 0) + 1

        return kernel

    monkeypatch.setattr(kernels, "gpu_kernel", fake)
    rng, h, n = np.random.default_rng(4), 3, 2
    p, g, m, v = (rng.normal(size=6) for _ in range(4))
    optimizer_kernels.adam_on_device(p, g, m, v, 0.9, 0.999, 0.01, 1e-8, 1)
    optimizer_kernels.sgd_momentum_on_device(p, g, m, 0.9, 0.1, True, False)
    optimizer_kernels.rmsprop_on_device(p, g, v, 0.9, 0.01, 1e-8)
    a, c, dh = _gates(rng, h, n, 4), rng.normal(size=(h, n)), rng.normal(size=(h, n))
    _, cache = lstm.cell_forward(a, c, h)
    lstm.cell_backward(dh, dh, cache, np.empty((4 * h, n)), h)
    gi, gh = _gates(rng, h, n, 3), _gates(rng, h, n, 3)
    _, cache = gru.cell_forward(gi, gh, c, h)
    gru.cell_backward(dh, cache, np.empty((3 * h, n)), np.empty((3 * h, n)), h)
    assert set(called) == set(kernels.CUDA)


# -- on a real GPU -------------------------------------------------------------------------------
needs_gpu = pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
MODELS = Path(__file__).resolve().parents[2] / "models"


@needs_gpu
@pytest.mark.parametrize("settings", OPTIMIZER_CASES, ids=lambda s: "-".join(map(str, s.values())))
def test_optimizer_kernels_match_the_reference_on_a_gpu(settings):
    device = get_backend("gpu", "float32")
    rng = np.random.default_rng(0)
    host = {"w": rng.normal(size=(64, 33)).astype(np.float32)}
    on_gpu = {"w": device.asarray(host["w"])}
    reference, kernel = _optimizer(settings), _optimizer(settings)
    for _ in range(5):
        g = rng.normal(size=(64, 33)).astype(np.float32)
        reference.step(host, {"w": g})
        kernel.step(on_gpu, {"w": device.asarray(g)})
    # CUDA contracts to fused multiply-adds: 5 steps of an update of about 10 roundings and a sqrt
    assert_close_float32(to_host(on_gpu["w"]), host["w"], terms=5 * (10 + LIBM_ULPS))


@needs_gpu
def test_recurrent_kernels_match_the_reference_on_a_gpu():
    device, rng, h, n = get_backend("gpu", "float64"), np.random.default_rng(3), 5, 7
    a, c = _gates(rng, h, n, 4), rng.normal(size=(h, n))
    host = lstm.cell_forward(a.copy(), c, h)
    gpu = lstm.cell_forward(device.asarray(a), device.asarray(c), h)
    for want, got in zip(host[0] + host[1], gpu[0] + gpu[1], strict=True):
        np.testing.assert_allclose(to_host(got), want, rtol=1e-12, atol=1e-14)
    dh, dc = rng.normal(size=(h, n)), rng.normal(size=(h, n))
    dgi_host, dgi_gpu = np.empty((4 * h, n)), device.xp.empty((4 * h, n))
    want = lstm.cell_backward(dh, dc, host[1], dgi_host, h)
    got = lstm.cell_backward(device.asarray(dh), device.asarray(dc), gpu[1], dgi_gpu, h)
    np.testing.assert_allclose(to_host(got), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_host(dgi_gpu), dgi_host, rtol=1e-12, atol=1e-14)
    gi, gh, h_prev = _gates(rng, h, n, 3), _gates(rng, h, n, 3), rng.normal(size=(h, n))
    host = gru.cell_forward(gi, gh.copy(), h_prev, h)
    gpu = gru.cell_forward(*(device.asarray(v) for v in (gi, gh, h_prev)), h)
    np.testing.assert_allclose(to_host(gpu[0][0]), host[0][0], rtol=1e-12, atol=1e-14)
    grads_host = (np.empty((3 * h, n)), np.empty((3 * h, n)))
    grads_gpu = (device.xp.empty((3 * h, n)), device.xp.empty((3 * h, n)))
    want = gru.cell_backward(dh, host[1], *grads_host, h)
    got = gru.cell_backward(device.asarray(dh), gpu[1], *grads_gpu, h)
    np.testing.assert_allclose(to_host(got), want, rtol=1e-12, atol=1e-14)
    for want, got in zip(grads_host, grads_gpu, strict=True):
        np.testing.assert_allclose(to_host(got), want, rtol=1e-12, atol=1e-14)


@needs_gpu
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in MODELS.glob("*.yaml")))
def test_each_example_gives_the_cpu_loss_on_a_gpu(tmp_path, name):
    """The same seed on the CPU and the GPU: the first epoch's losses within 1e-4."""
    from nncli.commands.train import train
    from nncli.spec import load

    losses = {}
    for device in ("cpu", "gpu"):
        spec = load(MODELS / f"{name}.yaml", ["training.epochs=1"])
        done = train(spec, output=tmp_path / device / "model.h5", device=device)
        losses[device] = done.history.epochs[0]["loss"]
    assert losses["gpu"] == pytest.approx(losses["cpu"], abs=1e-4, rel=1e-4)
