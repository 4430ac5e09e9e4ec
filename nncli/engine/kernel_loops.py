"""The numba loops of the layers' fused kernels (``kernels.py`` loads them and holds the
wrappers): batch normalisation over rows, and 2x2 stride-2 max pooling with a stored index.

Each is written for ``numba.njit`` and handed the decorator, so nothing here imports numba.
Statistics are accumulated in float64, the arrays stay in their own dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def batchnorm_loops(jit: Any) -> dict[str, Any]:
    """Training-mode batchnorm on x (R, C), each column over its R rows: two passes forward
    (statistics; then xhat and y), two backward (sums; then dx), against numpy's ~20."""

    @jit
    def forward(x, weight, bias, eps, xhat, y, stats):  # noqa: ANN001
        rows, cols = x.shape
        s = np.zeros(cols)
        for r in range(rows):
            for c in range(cols):
                s[c] += x[r, c]
        mean = np.empty(cols, dtype=x.dtype)
        for c in range(cols):
            mean[c] = s[c] / rows
        q = np.zeros(cols)
        for r in range(rows):
            for c in range(cols):
                d = x[r, c] - mean[c]
                q[c] += d * d
        inv = np.empty(cols, dtype=x.dtype)
        for c in range(cols):
            stats[0, c] = mean[c]
            stats[1, c] = q[c] / rows
            inv[c] = 1.0 / np.sqrt(q[c] / rows + eps)
        for r in range(rows):
            for c in range(cols):
                h = (x[r, c] - mean[c]) * inv[c]
                xhat[r, c] = h
                y[r, c] = h * weight[c] + bias[c]
        return inv

    @jit
    def backward(dy, xhat, inv, weight, dweight, dbias, dx):  # noqa: ANN001
        rows, cols = dy.shape
        sd = np.zeros(cols)
        sdx = np.zeros(cols)
        for r in range(rows):
            for c in range(cols):
                g = dy[r, c]
                sd[c] += g
                sdx[c] += g * xhat[r, c]
        scale = np.empty(cols, dtype=dy.dtype)
        mean_d = np.empty(cols, dtype=dy.dtype)
        mean_dx = np.empty(cols, dtype=dy.dtype)
        for c in range(cols):
            dweight[c] = sdx[c]
            dbias[c] = sd[c]
            scale[c] = inv[c] * weight[c]
            mean_d[c] = sd[c] / rows
            mean_dx[c] = sdx[c] / rows
        for r in range(rows):
            for c in range(cols):
                dx[r, c] = scale[c] * (dy[r, c] - mean_d[c] - xhat[r, c] * mean_dx[c])

    return {"batchnorm_forward": forward, "batchnorm_backward": backward}


def pool_loops(jit: Any) -> dict[str, Any]:
    """2x2 max pooling, stride 2, on planes x (P, H, W) -> y (P, H // 2, W // 2) and the
    position 0-3 of each window's first maximum (row-major, as numpy's reference; 4 for a
    window holding a NaN, whose maximum is NaN and which passes no gradient). ``relu``: the
    output is max(y, 0), the ReLU of the layer before moved behind the pool (they commute)."""

    @jit
    def forward(x, y, index, relu):  # noqa: ANN001
        planes, oh, ow = y.shape
        zero, nan = x.dtype.type(0), x.dtype.type(np.nan)
        for p in range(planes):
            for i in range(oh):
                r0, r1, yr, kr = x[p, 2 * i], x[p, 2 * i + 1], y[p, i], index[p, i]
                for j in range(ow):
                    a, b, c, d = r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]
                    m, k = a, np.uint8(0)
                    better = b > m
                    m, k = (b, np.uint8(1)) if better else (m, k)
                    better = c > m
                    m, k = (c, np.uint8(2)) if better else (m, k)
                    better = d > m
                    m, k = (d, np.uint8(3)) if better else (m, k)
                    bad = (a != a) | (b != b) | (c != c) | (d != d)
                    m, k = (nan, np.uint8(4)) if bad else (m, k)
                    if relu:
                        m = m if (m > zero) | bad else zero
                    yr[j] = m
                    kr[j] = k

    @jit
    def backward(dy, y, index, relu, dx):  # noqa: ANN001
        planes, oh, ow = dy.shape
        zero = dy.dtype.type(0)
        for p in range(planes):
            for i in range(oh):
                gr, yr, kr = dy[p, i], y[p, i], index[p, i]
                d0, d1 = dx[p, 2 * i], dx[p, 2 * i + 1]
                for j in range(ow):
                    g = gr[j]
                    if relu:
                        g = g if yr[j] > zero else zero
                    k = kr[j]
                    d0[2 * j] = g if k == 0 else zero
                    d0[2 * j + 1] = g if k == 1 else zero
                    d1[2 * j] = g if k == 2 else zero
                    d1[2 * j + 1] = g if k == 3 else zero

    return {"maxpool2_forward": forward, "maxpool2_backward": backward}


# tanh on float32 as a rational function (the minimax fit Eigen and PyTorch's CPU kernels use):
# within 4e-7 of the exact value, and a loop of it vectorises, where one calling libm does not.
# Module globals, so numba freezes them as constants and can cache the kernels that use them.
_HI, _LO = np.float32(7.90531110763549805), np.float32(-7.90531110763549805)
_P13, _P11, _P9 = (
    np.float32(-2.76076847742355e-16),
    np.float32(2.00018790482477e-13),
    np.float32(-8.60467152213735e-11),
)
_P7, _P5 = np.float32(5.12229709037114e-08), np.float32(1.48572235717979e-05)
_P3, _P1 = np.float32(6.37261928875436e-04), np.float32(4.89352455891786e-03)
_Q6, _Q4 = np.float32(1.19825839466702e-06), np.float32(1.18534705686654e-04)
_Q2, _Q0 = np.float32(2.26843463243900e-03), np.float32(4.89352518554385e-03)


def _tanh(x):  # noqa: ANN001, ANN202
    x = _HI if x > _HI else x  # comparisons keep a NaN a NaN
    x = _LO if x < _LO else x
    x2 = x * x
    p = x * (x2 * (x2 * (x2 * (x2 * (x2 * (x2 * _P13 + _P11) + _P9) + _P7) + _P5) + _P3) + _P1)
    return p / (x2 * (x2 * (x2 * _Q6 + _Q4) + _Q2) + _Q0)


_jit_tanh: Any = None  # ``_tanh`` compiled to inline, set by ``lstm_loops``


def lstm_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """The LSTM time step on float32, whole, in one pass each way, over the step's slice of
    a work array (T, 6H, N) (one array written, so the loop vectorises): rows 0-4H hold
    W_hh h (halved sigmoid blocks, as ``Recurrent.run`` makes them) and become the gates
    i f g o, rows 4H-5H the cell state c, rows 5H-6H tanh(c). c before step 0 is zero."""
    global _jit_tanh
    _jit_tanh = inline(_tanh)

    @jit
    def forward(work, t, gi, hs):  # noqa: ANN001
        """gi (4H, T, N): W_ih x + b of every step; h of step t into hs (H, T, N)."""
        units, half = hs.shape[0], np.float32(0.5)
        for j in range(units):
            for n in range(hs.shape[2]):
                i = _jit_tanh(work[t, j, n] + gi[j, t, n]) * half + half
                f = _jit_tanh(work[t, units + j, n] + gi[units + j, t, n]) * half + half
                g = _jit_tanh(work[t, 2 * units + j, n] + gi[2 * units + j, t, n])
                o = _jit_tanh(work[t, 3 * units + j, n] + gi[3 * units + j, t, n]) * half + half
                c = i * g
                if t > 0:
                    c += f * work[t - 1, 4 * units + j, n]
                tc = _jit_tanh(c)
                work[t, j, n], work[t, units + j, n] = i, f
                work[t, 2 * units + j, n], work[t, 3 * units + j, n] = g, o
                work[t, 4 * units + j, n], work[t, 5 * units + j, n] = c, tc
                hs[j, t, n] = o * tc

    @jit
    def backward(work, t, dh, dc, dgi):  # noqa: ANN001
        """dgi[:, t] = dL/d(gate sums) of step t, dgi (4H, T, N); dc (in: dL/dc_t, out:
        dL/dc_{t-1}) in place."""
        units, one = dh.shape[0], np.float32(1)
        for j in range(units):
            for n in range(dh.shape[1]):
                i, f = work[t, j, n], work[t, units + j, n]
                g, o = work[t, 2 * units + j, n], work[t, 3 * units + j, n]
                tc = work[t, 5 * units + j, n]
                c = work[t - 1, 4 * units + j, n] if t > 0 else np.float32(0)
                d = (one - tc * tc) * o * dh[j, n] + dc[j, n]
                dgi[j, t, n] = d * g * ((one - i) * i)
                dgi[units + j, t, n] = d * c * ((one - f) * f)
                dgi[2 * units + j, t, n] = d * i * (one - g * g)
                dgi[3 * units + j, t, n] = dh[j, n] * tc * ((one - o) * o)
                dc[j, n] = d * f

    return {"lstm_step": forward, "lstm_step_backward": backward}
