"""2-D max and average pooling: no weights, one value per window and channel."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks, kernels, windows
from nncli.engine.layer import Layer, Shape
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
        self.size_notes: list[str] = []
        self.warnings: list[str] = []
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
    2x2 windows with stride 2 run as one fused pass (numba, ``kernels.maxpool2_forward``) that
    stores each window's argmax; the numpy code below is the reference.
    """

    examples: ClassVar = [
        ({"pool_size": 2}, (2, 4, 4)),
        ({"pool_size": 3, "strides": 1, "padding": 1}, (1, 4, 5)),
    ]

    fill = -np.inf
    relu = False  # set by the network: apply the ReLU of the layer before (y = max(y, 0))

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
        kernels.maxpool2_forward(x.reshape(n * c, h, w), y.reshape(n * c, oh, ow), self.argmax,
                                 self.relu)  # fmt: skip
        self.view, self.y, self.in_full = None, y, x.shape
        return y

    def _backward_paired(self, dy: Any) -> Any:
        n, c, h, w = self.in_full
        oh, ow = self.windows.out_size
        even = h == 2 * oh and w == 2 * ow  # else the last row or column gets no gradient
        dx = (np.empty if even else np.zeros)(self.in_full, dtype=dy.dtype)
        planes = dx.reshape(n * c, h, w)[:, : 2 * oh, : 2 * ow]
        dy = np.ascontiguousarray(dy).reshape(n * c, oh, ow)
        kernels.maxpool2_backward(dy, self.y.reshape(n * c, oh, ow), self.argmax, self.relu,
                                  planes)  # fmt: skip
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
