"""Fused CPU loops (numba) for the work numpy can only do as many whole-array passes.

Each kernel computes what the numpy code beside its caller computes: Adam and the pools bit for
bit, batchnorm with float64 statistics and the LSTM step with a rational tanh to float32
rounding. That numpy code stays the reference (and the only path on the GPU, without numba,
for small arrays, or with ``NNCLI_KERNELS=numpy``), and the tests compare the two. One pass
instead of a dozen matters where the arrays are small enough that every numpy call's fixed cost
shows (an LSTM step: 32 x 512 gates) or where the pass count is the whole cost (Adam: 12 passes
over every parameter). The layers' loops live in ``kernel_loops.py``.

numba is a default dependency where it has wheels (environment markers in pyproject.toml) and
absent elsewhere, so nncli never requires it. It is imported, and the kernels compiled (cached
on disk after the first time), only when a kernel is first used.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from typing import Any

import numpy as np

from nncli.engine.kernel_loops import batchnorm_loops, lstm_loops, pool_loops

MIN_SIZE = 4096  # elements; below this numpy's few calls cost less than a kernel call would
_kernels: Any = None  # None: not loaded yet; False: unavailable


def _load() -> Any:
    global _kernels
    if _kernels is None:
        _kernels = False
        if os.environ.get("NNCLI_KERNELS", "").lower() != "numpy":
            with contextlib.suppress(ImportError):  # numba is optional
                _kernels = _compile()
    return _kernels


def active() -> str:
    """``numba <version>`` when the fused kernels would run here, else ``numpy``. Imports
    nothing (numba costs ~60 MB of memory, paid only when a kernel is first used)."""
    if _kernels is False or os.environ.get("NNCLI_KERNELS", "").lower() == "numpy":
        return "numpy"
    try:
        return f"numba {importlib.metadata.version('numba')}"
    except importlib.metadata.PackageNotFoundError:
        return "numpy"


def usable(*arrays: Any) -> bool:
    """True when numba is there and every array is a C-contiguous numpy float array of one
    dtype, the first with at least ``MIN_SIZE`` elements."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.size < MIN_SIZE or first.dtype.kind != "f":
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != first.dtype or not a.flags.c_contiguous:
            return False
    return bool(_load())


def adam(p, g, m, v, beta1, beta2, learning_rate, epsilon, t, decay=1.0) -> None:  # noqa: ANN001
    """Adam's update of ``optimizers.Adam.update``, in place, in one pass; ``decay`` multiplies
    p first (AdamW's 1 - lr weight_decay; 1 for Adam leaves p exactly as it is)."""
    import math

    root = math.sqrt(1 - beta2**t)
    step = learning_rate / (1 - beta1**t)
    f = p.dtype.type
    _kernels.adam(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), f(1 - beta1),
                  f(beta2), f(1 - beta2), f(epsilon * root), f(1 / (step * root)),
                  f(decay))  # fmt: skip


def lstm_cell(t, c, c_out) -> None:  # noqa: ANN001
    """The LSTM cell of ``LSTM.step_forward`` after numpy's tanh of all four gates ``t``
    (4H, N): the i, f, o blocks become 0.5 t + 0.5 (sigmoids), in place, and
    c_out = f c + i g. (tanh stays numpy's: vectorised, where a compiled loop calls libm.)"""
    _kernels.lstm_cell(t, c, c_out)


def lstm_backward(dh, dc, a, c, tanh_c, dgi, dc_prev) -> None:  # noqa: ANN001
    """The LSTM cell of ``LSTM.step_backward``: fills dgi and dc_prev."""
    _kernels.lstm_backward(dh, dc, a, c, tanh_c, dgi, dc_prev)


def batchnorm_forward(x, weight, bias, epsilon, xhat, y, stats) -> Any:  # noqa: ANN001
    """``BatchNorm.forward`` in training on rows x (R, C): fills xhat, y and stats (2, C)
    float64 (the batch mean and biased variance); returns 1 / sqrt(var + epsilon) (C,)."""
    return _kernels.batchnorm_forward(x, weight, bias, x.dtype.type(epsilon), xhat, y, stats)


def batchnorm_backward(dy, xhat, inv, weight, dweight, dbias, dx) -> None:  # noqa: ANN001
    """``BatchNorm.backward`` after a training forward on rows (R, C): fills the parameter
    gradients and dx."""
    _kernels.batchnorm_backward(dy, xhat, inv, weight, dweight, dbias, dx)


def maxpool2_forward(x, y, index, relu) -> None:  # noqa: ANN001
    """2x2 stride-2 max pooling on planes (P, H, W): fills y and index (P, H // 2, W // 2),
    index uint8; ``relu`` applies max(., 0) to y (see ``kernel_loops.pool_loops``)."""
    _kernels.maxpool2_forward(x, y, index, relu)


def maxpool2_backward(dy, y, index, relu, dx) -> None:  # noqa: ANN001
    """Writes every cell of dx (P, H', W') with H', W' the even part of H, W."""
    _kernels.maxpool2_backward(dy, y, index, relu, dx)


def lstm_step(work, t, gi, hs) -> None:  # noqa: ANN001
    """LSTM step t on float32 in one pass (``kernel_loops.lstm_loops``): gates, c, tanh(c)
    into ``work[t]``, h into ``hs[:, t]``; gi (4H, T, N), hs (H, T, N), whole arrays so the
    compiled loop knows their layout."""
    _kernels.lstm_step(work, t, gi, hs)


def lstm_step_backward(work, t, dh, dc, dgi) -> None:  # noqa: ANN001
    """Its backward: fills dgi[:, t] of dgi (4H, T, N), and turns dc from dL/dc_t into
    dL/dc_{t-1} in place."""
    _kernels.lstm_step_backward(work, t, dh, dc, dgi)


def _compile() -> Any:
    import numba  # noqa: PLC0415 - optional

    jit = numba.njit(cache=True, error_model="numpy", nogil=True)

    @jit
    def adam_kernel(p, g, m, v, a1, b2, a2, e2, k, decay):  # noqa: ANN001
        for j in range(p.size):
            p[j] *= decay
            gj = g[j]
            mj = m[j] + (gj - m[j]) * a1
            vj = v[j] * b2 + (gj * gj) * a2
            m[j] = mj
            v[j] = vj
            p[j] -= mj / ((np.sqrt(vj) + e2) * k)

    @jit
    def lstm_cell_kernel(t, c, c_out):  # noqa: ANN001
        half = t.dtype.type(0.5)
        units = c.shape[0]
        for j in range(units):
            for n in range(c.shape[1]):
                i = t[j, n] * half + half
                f = t[units + j, n] * half + half
                o = t[3 * units + j, n] * half + half
                t[j, n], t[units + j, n], t[3 * units + j, n] = i, f, o
                c_out[j, n] = f * c[j, n] + i * t[2 * units + j, n]

    @jit
    def lstm_backward_kernel(dh, dc, a, c, tanh_c, dgi, dc_prev):  # noqa: ANN001
        one = a.dtype.type(1)
        units = c.shape[0]
        for j in range(units):
            for n in range(c.shape[1]):
                i, f = a[j, n], a[units + j, n]
                g, o = a[2 * units + j, n], a[3 * units + j, n]
                tc = tanh_c[j, n]
                d = (one - tc * tc) * o * dh[j, n] + dc[j, n]
                dgi[j, n] = d * g * ((one - i) * i)
                dgi[units + j, n] = d * c[j, n] * ((one - f) * f)
                dgi[2 * units + j, n] = d * i * (one - g * g)
                dgi[3 * units + j, n] = dh[j, n] * tc * ((one - o) * o)
                dc_prev[j, n] = d * f

    class Kernels:
        adam = staticmethod(adam_kernel)
        lstm_cell = staticmethod(lstm_cell_kernel)
        lstm_backward = staticmethod(lstm_backward_kernel)

    inline = numba.njit(inline="always", error_model="numpy")
    loops = {**batchnorm_loops(jit), **pool_loops(jit), **lstm_loops(jit, inline)}
    for name, loop in loops.items():
        setattr(Kernels, name, staticmethod(loop))
    return Kernels
