"""conv2d's CPU speed-ups against the plain computation: its fused passes (``conv_loops``:
bias, ReLU and the change of order around the products) against numpy's passes, the same values
bit for bit (float32 and float64), and its im2col in chunks of samples against one product for
the whole batch. Skipped where numba is not there."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_float32

from nncli.backend import get_backend
from nncli.engine import kernels
from nncli.engine.layers import conv2d, windows
from nncli.engine.layers.conv2d import CHUNK, Conv2D, conv_loops

pytest.importorskip("numba")

CASES = [  # (layer config, input shape (C, H, W))
    ({"filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"}, (3, 9, 11)),
    ({"filters": 5, "kernel_size": [2, 3], "padding": [1, 2]}, (4, 7, 6)),
    ({"filters": 6, "kernel_size": 3, "activation": "tanh", "use_bias": False}, (2, 10, 8)),
    ({"filters": 4, "kernel_size": 3, "strides": 2, "padding": 1, "activation": "relu"}, (3, 9, 9)),
    ({"filters": 7, "kernel_size": 1, "activation": "relu"}, (5, 6, 6)),
]


def run(monkeypatch, on: bool, config: dict, shape: tuple, dtype: str, n: int, train: bool):
    """Forward (and backward when ``train``) with the kernels on or off (numpy's passes)."""
    monkeypatch.delenv("NNCLI_KERNELS", raising=False)
    monkeypatch.setattr(kernels, "_kernels", None if on else False)
    backend = get_backend("cpu", dtype)
    layer = Conv2D(**config)
    out_shape = layer.build(shape, backend, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, *shape)).astype(dtype)
    x[0, 0, 0, :2] = [np.nan, -0.0]  # NaN propagates, -0.0 keeps its sign through the ReLU
    y = layer.forward(x, training=train)
    if not train:
        return [y]
    dy = rng.standard_normal((n, *out_shape)).astype(dtype)
    dx = layer.backward(dy)
    return [y, dx, *(layer.grads[k].copy() for k in sorted(layer.grads))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("config", "shape"), CASES)
def test_conv2d_kernels_give_the_numpy_values_bit_for_bit(monkeypatch, config, shape, dtype):
    ours = run(monkeypatch, True, config, shape, dtype, 40, train=True)
    reference = run(monkeypatch, False, config, shape, dtype, 40, train=True)
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(a, b)


def test_conv2d_inference_in_chunks_runs_the_relu_on_every_chunk(monkeypatch):
    """A batch over ``CHUNK`` samples runs in chunks, the last one small: the fused ReLU must
    run on each of them (one choice for the whole batch)."""
    config, shape = CASES[0]
    ours = run(monkeypatch, True, config, shape, "float32", CHUNK + 3, train=False)[0]
    reference = run(monkeypatch, False, config, shape, "float32", CHUNK + 3, train=False)[0]
    np.testing.assert_array_equal(ours, reference)
    assert (ours[CHUNK:] >= 0).all()


def test_the_fused_passes_run_where_the_kernels_do(monkeypatch):
    """Without this the comparison above could pass with numpy's passes on both sides."""
    calls = []
    original = kernels.compiled
    monkeypatch.setattr(kernels, "compiled", lambda loops: calls.append(loops) or original(loops))
    run(monkeypatch, True, *CASES[0], "float32", 8, train=True)
    assert calls.count(conv_loops) == 2  # the output pass and the gradient pass


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("config", "shape"), CASES)
def test_conv2d_in_chunks_equals_one_product_for_the_batch(monkeypatch, config, shape, dtype):
    """A cache-sized chunk of samples a product (here 3 of 10, the last chunk 1): outputs and
    dL/dx as with the whole batch at once; dW sums the chunks' products (another order of sums:
    within float32's bound for a sum of N*Oh*Ow terms, or float64's 1e-12)."""
    calls = []
    original = windows.columns
    monkeypatch.setattr(windows, "columns", lambda *a: calls.append(1) or original(*a))
    results = []
    for chunked in (True, False):
        monkeypatch.setattr(conv2d, "COLUMN_BYTES", 1 << 30)  # the whole batch at once
        if chunked:  # exactly 3 samples' columns
            probe = Conv2D(**config)
            probe.build(shape, get_backend("cpu", dtype), np.random.default_rng(0))
            probe.forward(np.zeros((1, *shape), dtype), training=True)
            per_sample = probe.params["weight"][0].size * probe.windows.out_size[0] * probe.wx
            monkeypatch.setattr(conv2d, "COLUMN_BYTES", 3 * per_sample * np.dtype(dtype).itemsize)
        calls.clear()
        results.append(run(monkeypatch, True, config, shape, dtype, 10, train=True))
        assert len(calls) == (8 if chunked else 1)  # 4 chunks forward, 4 again backward
    out_terms = int(np.prod(config.get("kernel_size", 3))) * max(shape[0], config["filters"])
    grad_terms = 10 * int(np.prod(shape[1:]))
    for k, (ours, whole) in enumerate(zip(*results, strict=True)):
        if dtype == "float64":
            np.testing.assert_allclose(ours, whole, rtol=1e-12, atol=1e-12)
        else:
            assert_close_float32(ours, whole, out_terms if k < 2 else grad_terms)


@pytest.mark.parametrize("on", [True, False])
def test_only_the_fused_path_takes_chunks(monkeypatch, on):
    """numpy alone (``NNCLI_KERNELS=numpy``, or no numba) keeps one product for the batch."""
    monkeypatch.setattr(conv2d, "COLUMN_BYTES", 1)  # one sample a chunk where chunks are taken
    monkeypatch.delenv("NNCLI_KERNELS", raising=False)
    monkeypatch.setattr(kernels, "_kernels", None if on else False)
    layer = Conv2D(filters=4, kernel_size=3)
    layer.build((2, 6, 6), get_backend("cpu"), np.random.default_rng(0))
    layer.forward(np.zeros((5, 2, 6, 6), np.float32), training=True)
    assert layer.step == (1 if on else 5)


@pytest.mark.parametrize("on", [True, False])
def test_a_share_of_no_samples_gives_no_gradient(monkeypatch, on):
    """An MPI rank may hold none of a batch's rows: outputs and dL/dx are empty, and the weight
    gradient is zero, not the last batch's."""
    monkeypatch.delenv("NNCLI_KERNELS", raising=False)
    monkeypatch.setattr(kernels, "_kernels", None if on else False)
    layer = Conv2D(filters=4, kernel_size=3, padding="same", activation="relu")
    layer.build((2, 6, 6), get_backend("cpu"), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6)).astype(np.float32)
    layer.forward(x, training=True)
    layer.backward(np.ones((3, 4, 6, 6), np.float32))
    assert np.abs(layer.grads["weight"]).sum() > 0
    y = layer.forward(x[:0], training=True)
    dx = layer.backward(np.ones((0, 4, 6, 6), np.float32))
    assert y.shape == (0, 4, 6, 6) and dx.shape == (0, 2, 6, 6)
    assert not layer.grads["weight"].any() and not layer.grads["bias"].any()
