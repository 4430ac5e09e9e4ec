"""2-D max and average pooling: no weights, one value per window and channel."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks, kernels
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers import windows
from nncli.engine.registry import LAYERS
from nncli.errors import SpecError


class Pool2D(Layer):
    """Hyperparameters, window geometry and shapes shared by the pools.

    x (N, C, H, W) -> y (N, C, Oh, Ow). ``pool_size`` and ``strides`` are an integer or a pair,
    ``strides`` defaults to the pool size; ``padding`` is ``valid``, ``same``, an integer or a
    pair, at most half the pool size on a side (as in PyTorch), so every window holds an input cell.
    """

    fill = 0.0  # the value of padded cells

    def __init__(
        self,
        pool_size: int | list[int] = 2,
        strides: int | list[int] | None = None,
        padding: str | int | list[int] = "valid",
    ):
        super().__init__(None)
        self.pool_size = checks.int_pair("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else checks.int_pair("strides", strides)
        self.padding = windows.padding_arg(padding)
        if isinstance(self.padding, tuple) and any(
            p > k // 2 for p, k in zip(self.padding, self.pool_size, strict=True)
        ):
            raise SpecError(
                f"expected at most half the pool size {list(self.pool_size)} on each side, "
                f"got {padding!r}",
                field="padding",
            )
        self._padded: Any = None  # the bordered input buffer, reused across batches

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        self.windows = windows.plan(
            self.label, in_shape, self.pool_size, self.strides, self.padding, "pool_size"
        )
        self.size_notes, self.warnings = list(self.windows.notes), list(self.windows.warnings)
        return (in_shape[0], *self.windows.out_size)

    def _window_view(self, x: Any) -> Any:
        """x (N, C, H, W) -> windows (N, C, kh, kw, Oh, Ow) over the padded input."""
        self.check_input(x)
        self._padded = windows.pad(x, self.windows, self.fill, self._padded)
        return windows.window_view(self._padded, self.windows)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg.update(
            pool_size=windows.compact(self.pool_size),
            strides=windows.compact(self.strides),
            padding=windows.compact(self.padding),
        )
        return cfg


@LAYERS.register("maxpool2d")
class MaxPool2D(Pool2D):
    """y[n, c, p, q] = max_{i, j} x_pad[n, c, p*sh + i, q*sw + j]

    The gradient of each window goes to its maximum; on ties to the FIRST maximum in row-major
    order within the window (as PyTorch does). Padded cells hold -inf, so they never win.
    2x2 windows with stride 2 run as one fused pass (numba, ``maxpool2_loops`` below) that
    stores each window's argmax; the numpy code here is the reference.
    ``relu``: the ReLU of the layer before, moved behind the pool (``take_relu``).
    """

    examples: ClassVar = [
        ({"pool_size": 2}, (2, 4, 4)),
        ({"pool_size": 3, "strides": 1, "padding": 1}, (1, 4, 5)),
    ]

    fill = -np.inf
    relu = False  # apply the ReLU of the layer before (y = max(y, 0)): see ``take_relu``

    def take_relu(self) -> bool:
        """Run the ReLU of the layer before on this pool's output: max(relu(x)) = relu(max(x)),
        and both send a window's gradient to its first maximum when it is positive and nowhere
        otherwise, so outputs and gradients are the same while the ReLU and its mask touch a
        quarter of the values (2x2 pools)."""
        self.relu = True
        return True

    def forward(self, x: Any, training: bool = False) -> Any:
        xp = self.backend.xp
        if self._paired(x):
            return self._forward_paired(x)
        self.view = self._window_view(x)
        offsets = self.windows.offsets()
        if len(offsets) == 1:
            y = self.view[:, :, 0, 0].copy()
        else:  # a running maximum: no copy of the windows
            (i0, j0), (i1, j1) = offsets[:2]
            y = xp.maximum(self.view[:, :, i0, j0], self.view[:, :, i1, j1])
        for i, j in offsets[2:]:
            xp.maximum(y, self.view[:, :, i, j], out=y)
        if self.relu:
            xp.maximum(y, 0, out=y)
        self.y = y
        return y

    def _paired(self, x: Any) -> bool:
        """2x2 windows, stride 2, no padding, and the fused kernel usable on x."""
        win = self.windows
        plain = win.kernel == (2, 2) and win.strides == (2, 2) and not win.padded
        return plain and x.ndim == 4 and kernels.usable(x)

    def _forward_paired(self, x: Any) -> Any:
        """One pass (numba) that keeps each window's argmax (0-3) for the backward pass."""
        self.check_input(x)
        n, c, h, w = x.shape
        oh, ow = self.windows.out_size
        y = np.empty((n, c, oh, ow), dtype=x.dtype)
        self.argmax = np.empty((n * c, oh, ow), dtype=np.uint8)
        kernels.compiled(maxpool2_loops)["forward"](
            x.reshape(n * c, h, w), y.reshape(n * c, oh, ow), self.argmax, self.relu
        )
        self.view, self.y, self.in_full = None, y, x.shape
        return y

    def _backward_paired(self, dy: Any) -> Any:
        n, c, h, w = self.in_full
        oh, ow = self.windows.out_size
        even = h == 2 * oh and w == 2 * ow  # else the last row or column gets no gradient
        dx = (np.empty if even else np.zeros)(self.in_full, dtype=dy.dtype)
        planes = dx.reshape(n * c, h, w)[:, : 2 * oh, : 2 * ow]
        dy = np.ascontiguousarray(dy).reshape(n * c, oh, ow)
        kernels.compiled(maxpool2_loops)["backward"](
            dy, self.y.reshape(n * c, oh, ow), self.argmax, self.relu, planes
        )
        return dx

    def backward(self, dy: Any) -> Any:
        if self.view is None:
            return self._backward_paired(dy)
        xp = self.backend.xp
        if self.relu:  # windows whose maximum the ReLU zeroed pass no gradient
            dy = dy * (self.y > 0)
        dx = xp.zeros(self._padded.shape, dtype=dy.dtype)
        claimed = None  # windows whose maximum an earlier offset already took
        for i, j in self.windows.offsets():
            hit = self.view[:, :, i, j] == self.y
            if claimed is None:
                claimed = hit
            else:
                hit &= ~claimed
                claimed |= hit
            windows.add_at(dx, self.windows, i, j, dy * hit)
        return windows.unpad(dx, self.windows)


def maxpool2_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """2x2 max pooling, stride 2, on planes x (P, H, W) -> y (P, H // 2, W // 2) and the
    position 0-3 of each window's first maximum (row-major, as numpy's reference; 4 for a
    window holding a NaN, whose maximum is NaN and which passes no gradient). ``relu``: the
    output is max(y, 0), the ReLU of the layer before moved behind the pool (they commute).
    ``backward`` writes every cell of dx (P, H', W'), H' and W' the even parts of H and W."""

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
        dx[:] = zero  # then one write a window, at its maximum: 4-5x faster than 4 selects
        for p in range(planes):
            for i in range(oh):
                gr, yr, kr = dy[p, i], y[p, i], index[p, i]
                for j in range(ow):
                    k = kr[j]
                    if k < 4 and (not relu or yr[j] > zero):
                        dx[p, 2 * i + (k >> 1), 2 * j + (k & 1)] = gr[j]

    return {"forward": forward, "backward": backward}


@LAYERS.register("avgpool2d")
class AvgPool2D(Pool2D):
    """y[n, c, p, q] = (1 / (kh kw)) sum_{i, j} x_pad[n, c, p*sh + i, q*sw + j]

    Padded cells count as zeros in the average: the divisor is always the full window kh*kw
    (PyTorch's ``count_include_pad=True`` default; Keras divides by the real cells only).
    dx: each window spreads dy / (kh kw) evenly over the cells it read.
    """

    examples: ClassVar = [
        ({"pool_size": 2}, (2, 4, 4)),
        ({"pool_size": 2, "strides": 1, "padding": 1}, (1, 3, 5)),
    ]

    def forward(self, x: Any, training: bool = False) -> Any:
        view = self._window_view(x)
        y = view[:, :, 0, 0].copy()
        for i, j in self.windows.offsets()[1:]:  # summing slices beats view.mean(axis=(2, 3))
            y += view[:, :, i, j]
        y *= 1.0 / len(self.windows.offsets())
        return y

    def backward(self, dy: Any) -> Any:
        xp = self.backend.xp
        n, c, oh, ow = dy.shape
        share = dy * (1.0 / len(self.windows.offsets()))
        kh, kw = self.pool_size
        return windows.fold(
            xp.broadcast_to(share[:, :, None, None], (n, c, kh, kw, oh, ow)), self.windows
        )
