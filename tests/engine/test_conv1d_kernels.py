"""conv1d's numba passes (conv1d.py's ``conv1d_loops``) against the numpy reference
(``NNCLI_KERNELS=numpy``): the windows copy, bias + ReLU, the ReLU's backward and the gathered
col2im keep numpy's order of sums, so the output, dx and the weight gradient are the same
numbers; the bias gradient sums in another order (float64 in the kernel, a BLAS product with
ones in numpy), within float32's tolerance. Odd shapes: strides, dilation, padding, masks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_float32
from threadpoolctl import threadpool_limits

from nncli.backend import get_backend
from nncli.engine import kernels
from nncli.engine.layers.conv1d import Conv1D

pytest.importorskip("numba")

N, T, C, FILTERS = 32, 37, 7, 13  # every array above kernels.MIN_SIZE
GEOMETRIES = [
    {"kernel_size": 3, "padding": "same"},
    {"kernel_size": 4, "strides": 3},
    {"kernel_size": 2, "strides": 2, "padding": "same"},  # the odd cell of padding on the right
    {"kernel_size": 3, "strides": 2, "dilation": 3, "padding": 5},  # padding wider than a tap
]


def run(on: bool, monkeypatch, dtype, mask=None, **settings):
    """One forward and backward with the kernels on or off: (y, dx, dW, db, fused)."""
    monkeypatch.setattr(kernels, "_kernels", None if on else False)
    backend = get_backend("cpu", dtype)
    layer = Conv1D(FILTERS, **settings)
    rng = np.random.default_rng(0)
    layer.build((T, C), backend, rng)
    if layer.use_bias:
        layer.params["bias"][...] = rng.normal(size=FILTERS)
    layer.mask = mask
    x = backend.asarray(np.random.default_rng(1).normal(size=(N, T, C)))
    y = layer.forward(x, training=True).copy()
    dy = backend.asarray(np.random.default_rng(2).normal(size=y.shape))
    dx = layer.backward(dy)
    db = layer.grads["bias"].copy() if layer.use_bias else np.zeros(1)
    return y, dx, layer.grads["weight"].copy(), db, layer.fused


def check_equal(monkeypatch, dtype="float32", mask=None, **settings):
    ours = run(True, monkeypatch, dtype, mask, **settings)
    reference = run(False, monkeypatch, dtype, mask, **settings)
    activation = settings.get("activation")
    assert ours[4] == (activation in (None, "relu", "linear"))  # the fused passes ran
    assert not reference[4]
    for got, want in zip(ours[:3], reference[:3], strict=True):
        np.testing.assert_array_equal(got, want)
    assert_close_float32(ours[3], reference[3], terms=N * T, magnitude=np.abs(ours[1]).sum())


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("activation", ["relu", None, "tanh"])
def test_kernels_give_the_numpy_numbers(monkeypatch, geometry, activation):
    check_equal(monkeypatch, activation=activation, **geometry)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_without_bias_and_linear(monkeypatch, dtype):
    check_equal(monkeypatch, dtype, kernel_size=3, strides=2, activation="relu", use_bias=False)
    check_equal(monkeypatch, dtype, kernel_size=5, dilation=2, activation="linear")


def test_masked_steps_and_one_thread(monkeypatch):
    lengths = np.random.default_rng(3).integers(1, T + 1, size=N)
    mask = np.arange(T) < lengths[:, None]
    with threadpool_limits(1):
        check_equal(monkeypatch, mask=mask, kernel_size=3, padding="same", activation="relu")
        check_equal(monkeypatch, kernel_size=4, strides=3, dilation=2, activation="relu")


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_nan_and_infinity_pass_through_as_in_numpy(monkeypatch):
    """The fused ReLU keeps NaN (numpy's maximum does) and its backward multiplies by 0/1."""
    outs = []
    for on in (True, False):
        monkeypatch.setattr(kernels, "_kernels", None if on else False)
        layer = Conv1D(FILTERS, kernel_size=1, activation="relu")
        layer.build((T, C), get_backend("cpu", "float32"), np.random.default_rng(0))
        x = np.random.default_rng(1).normal(size=(N, T, C)).astype(np.float32)
        x[0, 0, 0], x[1, 2, 3] = np.nan, np.inf
        y = layer.forward(x, training=True).copy()
        dy = np.ones_like(y)
        dy[2, 0, 0] = np.inf
        outs.append((y, layer.backward(dy), layer.fused))
    assert outs[0][2]
    for got, want in zip(outs[0][:2], outs[1][:2], strict=True):
        np.testing.assert_array_equal(got, want)
