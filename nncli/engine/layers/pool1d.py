"""1-D max and average pooling over time on (N, T, F) sequences."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers.conv1d import TimeWindows, padding_arg
from nncli.engine.registry import LAYERS
from nncli.errors import SpecError


class Pool1D(Layer):
    """x (N, T, F) -> y (N, T', F), one value per window and feature. ``strides`` defaults to
    ``pool_size``; ``padding`` is ``valid``, ``same`` or an integer at most half the pool size
    (as in PyTorch), so every window holds an input step. The steps may differ between batches;
    a padding mask's padded steps count as padding (-inf for max, 0 for the average)."""

    fill = 0.0  # the value of padded steps
    any_steps = True

    def __init__(
        self, pool_size: int = 2, strides: int | None = None, padding: str | int = "valid"
    ):
        super().__init__(None)
        size = checks.positive_int("pool_size", pool_size)
        stride = size if strides is None else checks.positive_int("strides", strides)
        padding = padding_arg(padding)
        if isinstance(padding, int) and padding > size // 2:
            raise SpecError(
                f"expected at most half the pool size {size}, got {padding}", field="padding"
            )
        self.windows = TimeWindows(size, stride, 1, padding)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(in_shape) != 2:
            raise SpecError(f"{self.label} expects (N, T, F) input, got (N, {in_shape})")
        return (self.windows.check_length(self.label, in_shape[0]), in_shape[1])

    def _taps(self, x: Any) -> list[Any]:
        """The padded input's step slices, one per window offset, each (N, T', F)."""
        self.check_input(x)
        win = self.windows
        left, right, out = win.plan(x.shape[1])
        win.check_length(self.label, x.shape[1])
        self.real = win.real_steps(self.label, self.mask, x)  # padded steps count as padding
        if self.real is not None:
            x = self.backend.xp.where(self.real, x, self.fill)
        self.padded = win.pad(x, left, right, self.fill)
        self.geometry = (x.shape[1], left, out)
        return [self.padded[:, win.tap(j, out)] for j in range(win.size)]

    def _fold(self, parts: list[Any]) -> Any:
        """Each offset's gradient added back onto the steps it read, padding cut off."""
        steps, left, out = self.geometry
        dx = self.backend.xp.zeros(self.padded.shape, dtype=parts[0].dtype)
        for j, part in enumerate(parts):
            dx[:, self.windows.tap(j, out)] += part
        dx = dx[:, left : left + steps]
        return dx if self.real is None else dx * self.real

    def output_mask(self, mask: Any) -> Any:
        return self.windows.output_mask(mask)

    def config(self) -> dict[str, Any]:
        win = self.windows
        cfg = super().config()
        cfg.update(pool_size=win.size, strides=win.stride, padding=win.padding)
        return cfg


@LAYERS.register("maxpool1d")
class MaxPool1D(Pool1D):
    """y[n, p, f] = max_j x_pad[n, p s + j, f]; the gradient goes to the first maximum of each
    window (as PyTorch); padded steps hold -inf, so they never win."""

    examples: ClassVar = [({"pool_size": 2}, (6, 3)), ({"pool_size": 3, "strides": 1,
                                                        "padding": 1}, (5, 2))]  # fmt: skip
    fill = -np.inf

    def forward(self, x: Any, training: bool = False) -> Any:
        self.taps = self._taps(x)
        self.y = self.taps[0].copy()
        for tap in self.taps[1:]:
            self.backend.xp.maximum(self.y, tap, out=self.y)
        if self.real is not None:  # a window of padded steps alone gives 0, not -inf
            self.y[~self.output_mask(self.mask)] = 0
        return self.y

    def backward(self, dy: Any) -> Any:
        parts, claimed = [], None
        for tap in self.taps:
            hit = tap == self.y
            if claimed is None:
                claimed = hit
            else:
                hit &= ~claimed
                claimed |= hit
            parts.append(dy * hit)
        return self._fold(parts)


@LAYERS.register("avgpool1d")
class AvgPool1D(Pool1D):
    """y[n, p, f] = (1 / k) sum_j x_pad[n, p s + j, f]; padded steps count as zeros (PyTorch's
    count_include_pad); dx: each window spreads dy / k over the steps it read."""

    examples: ClassVar = [({"pool_size": 2}, (6, 3)), ({"pool_size": 2, "strides": 1,
                                                        "padding": "same"}, (5, 2))]  # fmt: skip

    def forward(self, x: Any, training: bool = False) -> Any:
        taps = self._taps(x)
        y = taps[0].copy()
        for tap in taps[1:]:
            y += tap
        y *= 1.0 / self.windows.size
        return y

    def backward(self, dy: Any) -> Any:
        share = dy * (1.0 / self.windows.size)
        return self._fold([share] * self.windows.size)
