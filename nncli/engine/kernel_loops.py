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
