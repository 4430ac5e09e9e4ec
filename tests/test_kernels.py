"""The optional fused kernels (numba) against the numpy code they stand in for, which stays the
reference: the same numbers (float32 and float64), or within a few ulps where libm's tanh and
numpy's differ. Skipped where numba is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from nncli.backend import get_backend
from nncli.engine import kernels
from nncli.engine.optimizers import Adam, AdamW
from nncli.engine.recurrent import LSTM

pytest.importorskip("numba")


@pytest.fixture
def numpy_only(monkeypatch):
    """Run the block with the kernels switched off (the numpy reference)."""

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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_kernels_match_the_numpy_cell(numpy_only, dtype):
    backend = get_backend("cpu", dtype)
    x = np.random.default_rng(2).standard_normal((32, 6, 5))
    dy = np.random.default_rng(3).standard_normal((32, 128))
    out = []
    for on in (True, False):
        numpy_only(on)
        layer = LSTM(128)
        layer.build((6, 5), backend, np.random.default_rng(0))
        y = layer.forward(backend.asarray(x), training=True)
        dx = layer.backward(backend.asarray(dy))
        out.append([y, dx, *(layer.grads[k].copy() for k in sorted(layer.grads))])
    tol = 1e-5 if dtype == "float32" else 1e-12
    for ours, reference in zip(*out, strict=True):
        np.testing.assert_allclose(ours, reference, rtol=tol, atol=tol)
