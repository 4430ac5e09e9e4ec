"""The optional fused kernels (numba) against the numpy code they stand in for, which stays the
reference: the same numbers (float32 and float64), or, where the two sum in other orders (numba
may fuse multiply-adds, BLAS blocks its sums) or libm's tanh and numpy's differ, within what
float32 arithmetic allows (helpers.assert_close_float32). Skipped where numba is not installed."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import LIBM_ULPS, assert_close_float32

from nncli.backend import get_backend
from nncli.engine import kernels
from nncli.engine.layers.recurrent.lstm import LSTM
from nncli.engine.optimizers import Adam, AdamW

pytest.importorskip("numba")


@pytest.fixture
def numpy_only(monkeypatch):
    """Run the block with the kernels switched on or off (the numpy reference). These tests
    compare the two paths whatever ``NNCLI_KERNELS`` chooses for the rest of the suite."""
    monkeypatch.delenv("NNCLI_KERNELS", raising=False)

    def switch(on: bool) -> None:
        monkeypatch.setattr(kernels, "_kernels", None if on else False)

    return switch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", [Adam, AdamW])
def test_adam_kernel_gives_the_numpy_update_bit_for_bit(numpy_only, dtype, kind):
    results = []
    for on in (True, False):
        numpy_only(on)
        p = np.random.default_rng(5).standard_normal(kernels.MIN_SIZE * 3).astype(dtype)
        opt, rng = kind(learning_rate=1e-3), np.random.default_rng(1)
        for _ in range(4):
            opt.step({"w": p}, {"w": rng.standard_normal(p.size).astype(dtype)})
        results.append((p, opt.state["w"]["m"], opt.state["w"]["v"]))
    for ours, reference in zip(*results, strict=True):
        np.testing.assert_array_equal(ours, reference)


def test_kernels_skip_small_or_strided_arrays():
    small = np.zeros(kernels.MIN_SIZE - 1, np.float32)
    big = np.zeros((kernels.MIN_SIZE, 2), np.float32)
    assert not kernels.usable(small)
    assert not kernels.usable(big[:, 0])  # not contiguous
    assert not kernels.usable(big, big.astype(np.float64))


@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_kernels_match_the_numpy_cell(numpy_only, dtype, sequences):
    """float32 runs the whole step fused (lstm_fused.py, its own tanh), float64 the numpy
    loop with the fused cell: both against the numpy reference."""
    backend = get_backend("cpu", dtype)
    x = np.random.default_rng(2).standard_normal((32, 6, 5)) * 2
    dy = np.random.default_rng(3).standard_normal((32, 6, 128) if sequences else (32, 128))
    out = []
    for on in (True, False):
        numpy_only(on)
        layer = LSTM(128, return_sequences=sequences)
        layer.build((6, 5), backend, np.random.default_rng(0))
        y = layer.forward(backend.asarray(x), training=True)
        assert layer.ran_fused == (on and dtype == "float32")
        dx = layer.backward(backend.asarray(dy))
        out.append([y, dx, *(layer.grads[k].copy() for k in sorted(layer.grads))])
    # each of 6 steps sums the input (5) and, forward and back, the 4 gates over 128 units;
    # a weight's gradient then sums the batch's 32 x 6 steps
    terms = 6 * (5 + 5 * 128 + 1 + LIBM_ULPS) + 32 * 6
    for ours, reference in zip(*out, strict=True):
        if dtype == "float32":
            assert_close_float32(ours, reference, terms)
        else:
            np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(64, 16, 8), (300, 20), (20, 6, 9, 7)])
def test_batchnorm_kernels_match_the_numpy_layer(numpy_only, dtype, shape):
    from nncli.engine.layers.normalization import BatchNorm

    backend = get_backend("cpu", dtype)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * 3 + 1
    dy = rng.standard_normal(shape)
    out = []
    for on in (True, False):
        numpy_only(on)
        layer = BatchNorm()
        layer.build(shape[1:], backend, np.random.default_rng(0))
        channels = shape[1] if len(shape) == 4 else shape[-1]
        layer.params["weight"][...] = np.linspace(0.5, 2, channels)
        y = layer.forward(backend.asarray(x), training=True)
        dx = layer.backward(backend.asarray(dy))
        state = [layer.state[k].copy() for k in sorted(layer.state)]
        out.append([y, dx, *(layer.grads[k].copy() for k in sorted(layer.grads)), *state])
    if len(shape) == 4:  # the images' kernels ran (else the comparison proves nothing)
        from nncli.engine.layers.normalization import batchnorm_plane_loops

        assert batchnorm_plane_loops in kernels._compiled
    # the mean, variance and backward's two sums run over rows (over N, H, W for images)
    rows = int(np.prod(shape[:-1])) if len(shape) < 4 else int(np.prod(shape)) // shape[1]
    for ours, reference in zip(*out, strict=True):
        if dtype == "float32":
            assert_close_float32(ours, reference, 2 * rows + LIBM_ULPS)
        else:
            np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("size", [(28, 28), (9, 7)])
def test_max_pool_kernel_matches_the_numpy_pool_exactly(numpy_only, relu, size):
    from nncli.engine.layers.pool2d import MaxPool2D

    backend = get_backend("cpu")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((16, 20, *size)).astype(np.float32)
    x[:, :, 0, :4] = 0.5  # ties go to the first maximum in row-major order
    x[:, :, 2:4, 2:4] = -1.0  # windows whose maximum the ReLU zeroes
    x[:, 0, 4, 5] = np.nan  # a NaN window passes no gradient
    out = []
    for on in (True, False):
        numpy_only(on)
        layer = MaxPool2D(pool_size=2)
        layer.build(x.shape[1:], backend, np.random.default_rng(0))
        layer.relu = relu
        y = layer.forward(x, training=True)
        assert (layer.view is None) == on  # the fused path ran with the kernels on
        dy = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
        out.append([y, layer.backward(dy)])
    for ours, reference in zip(*out, strict=True):
        np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 7, 64, 129])
def test_softmax_kernels_match_the_numpy_softmax_and_its_backward(numpy_only, dtype, width):
    """Odd row lengths, a row of large scores (the max is subtracted first), a row of equal
    ones and a NaN row (NaN throughout, as numpy gives)."""
    from nncli.engine.layers.attention import masked_softmax, softmax, softmax_backward

    rng = np.random.default_rng(8)
    rows = -(-kernels.MIN_SIZE // width) + 3
    scores = (rng.standard_normal((rows, width)) * 4).astype(dtype)
    scores[0] += 1e4
    scores[1] = 2.5
    scores[2, width // 2] = np.nan
    da = rng.standard_normal(scores.shape).astype(dtype)
    numpy_only(True)
    fused = softmax(scores.copy(), None)
    reference = masked_softmax(scores, None)
    back = softmax_backward(fused, da.copy())
    numpy_only(False)
    back_reference = softmax_backward(reference, da.copy())
    # each row sums its width: the exponentials (the same numpy exp) and then da * a
    for ours, expected in ((fused, reference), (back, back_reference)):
        assert np.isnan(ours[2]).all() and np.isnan(expected[2]).all()
        if dtype == np.float32:
            assert_close_float32(ours, expected, width + 1)
        else:
            np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_attention_with_the_fused_softmax_matches_the_numpy_layer(numpy_only, dtype):
    from nncli.engine.layers.attention import Attention

    backend = get_backend("cpu", dtype)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((8, 21, 12))  # weights (8, 3, 21, 21): past the kernels' MIN_SIZE
    dy = rng.standard_normal(x.shape)
    out = []
    for on in (True, False):
        numpy_only(on)
        layer = Attention(heads=3)
        layer.build(x.shape[1:], backend, np.random.default_rng(0))
        y = layer.forward(backend.asarray(x), training=True)
        dx = layer.backward(backend.asarray(dy))
        out.append([y, dx, *(layer.grads[k].copy() for k in sorted(layer.grads))])
    # projections over 12 features, scores over 4, softmax and weighted sums over 21 steps
    # forward and back, and the weights' gradients over the batch's 8 x 21 rows
    terms = 2 * (12 + 4 + 2 * 21 + LIBM_ULPS) + 8 * 21
    for ours, reference in zip(*out, strict=True):
        if dtype == "float32":
            assert_close_float32(ours, reference, terms)
        else:
            np.testing.assert_allclose(ours, reference, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(9, 37, 13), (700, 7)])
def test_layernorm_kernels_match_the_numpy_layer(numpy_only, dtype, shape):
    from nncli.engine.layers.layernorm import LayerNorm

    backend = get_backend("cpu", dtype)
    rng = np.random.default_rng(10)
    x = rng.standard_normal(shape) * 3 + 1
    dy = rng.standard_normal(shape)
    out = []
    for on in (True, False):
        numpy_only(on)
        layer = LayerNorm()
        layer.build(shape[1:], backend, np.random.default_rng(0))
        layer.params["weight"][...] = np.linspace(0.5, 2, shape[-1])
        layer.params["bias"][...] = np.linspace(-1, 1, shape[-1])
        y = layer.forward(backend.asarray(x), training=True)
        assert (layer.work.arrays.get("xhat") is layer.xhat) == on  # the fused pass ran
        dx = layer.backward(backend.asarray(dy[::-1].copy()[::-1]))  # a strided dy too
        out.append([y, dx, *(layer.grads[k].copy() for k in sorted(layer.grads))])
    rows = int(np.prod(shape[:-1]))  # each row sums its features; the parameters' gradients
    for ours, reference in zip(*out, strict=True):  # sum the rows
        if dtype == "float32":
            assert_close_float32(ours, reference, 2 * shape[-1] + rows + LIBM_ULPS)
        else:
            np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-10)
