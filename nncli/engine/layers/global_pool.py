"""Global average and max pooling: one value per channel (images) or feature (sequences).

The average over the steps of an unmasked sequence batch (N, T, F) and its backward run as one
numba pass each on the CPU (``avgpool_loops``, loaded by ``kernels.py``), in numpy's order of
sums (the same numbers); the numpy code is the reference and every other path."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import kernels
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS
from nncli.errors import SpecError


class GlobalPool(Layer):
    """x (N, C, H, W) -> y (N, C) over H, W; x (N, T, F) -> y (N, F) over the real steps T
    (a padding mask leaves padded steps out). The steps may differ between batches."""

    def __init__(self) -> None:
        super().__init__(None)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(in_shape) not in (2, 3):
            raise SpecError(f"{self.label} expects (N, C, H, W) or (N, T, F) input")
        self.any_steps = len(in_shape) == 2
        self.axes = (2, 3) if len(in_shape) == 3 else (1,)
        return (in_shape[0],) if len(in_shape) == 3 else (in_shape[1],)

    def _expand(self, dy: Any) -> Any:
        """(N, C) -> broadcastable against x: (N, C, 1, 1) or (N, 1, F)."""
        return dy[:, :, None, None] if len(self.axes) == 2 else dy[:, None, :]

    def output_mask(self, mask: Any) -> Any:
        return None  # no steps left


@LAYERS.register("global_avgpool")
class GlobalAvgPool(GlobalPool):
    """y = mean of x over H, W (or over the real steps); dx = dy / count, 0 at padded steps."""

    examples: ClassVar = [({}, (2, 3, 3)), ({}, (4, 3))]

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        xp, real = self.backend.xp, self.real_steps(x)
        self.fused = real is None and len(self.axes) == 1 and kernels.usable(x)
        if real is None:
            self.scale = 1.0 / int(np.prod([x.shape[a] for a in self.axes]))
            self.real = None
            if self.fused:  # sequences: one pass over the steps, numpy's order of sums
                y = np.empty((x.shape[0], x.shape[2]), x.dtype)
                kernels.compiled(avgpool_loops)["mean"](x, x.dtype.type(x.shape[1]), y)
                return y
            return x.mean(axis=self.axes)
        count = xp.maximum(real.sum(axis=1), 1).astype(x.dtype)  # (N, 1)
        self.scale, self.real = 1.0 / count, real
        return xp.where(real, x, 0).sum(axis=1) * self.scale

    def backward(self, dy: Any) -> Any:
        if self.fused and type(dy) is np.ndarray:
            dx, scale = np.empty(self.in_full, dy.dtype), dy.dtype.type(self.scale)
            kernels.compiled(avgpool_loops)["spread"](np.ascontiguousarray(dy), scale, dx)
            return dx
        dx = self.backend.xp.broadcast_to(self._expand(dy * self.scale), self.in_full)
        return dx * self.real if self.real is not None else dx.copy()

    def check_input(self, x: Any) -> None:
        super().check_input(x)
        self.in_full = tuple(x.shape)


def avgpool_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """For ``numba.njit``: ``mean`` y (N, F) = x (N, T, F) summed over T in step order (as
    numpy's reduction over a middle axis), then divided by T; ``spread`` dx (N, T, F) = dy (N,
    F) times the scale, at every step."""

    @jit
    def mean(x, steps, y):  # noqa: ANN001
        n, _, features = x.shape
        for i in range(n):
            for f in range(features):
                y[i, f] = 0
            for t in range(x.shape[1]):
                for f in range(features):
                    y[i, f] += x[i, t, f]
            for f in range(features):
                y[i, f] /= steps

    @jit
    def spread(dy, scale, dx):  # noqa: ANN001
        n, steps, features = dx.shape
        for i in range(n):
            for t in range(steps):
                for f in range(features):
                    dx[i, t, f] = dy[i, f] * scale

    return {"mean": mean, "spread": spread}


@LAYERS.register("global_maxpool")
class GlobalMaxPool(GlobalPool):
    """y = max of x over H, W (or over the real steps); the gradient goes to the first maximum
    (row-major), as PyTorch's max."""

    examples: ClassVar = [({}, (2, 3, 3)), ({}, (4, 3))]

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        xp, real = self.backend.xp, self.real_steps(x)
        x = x if real is None else xp.where(real, x, -xp.inf)
        # flat windows: (N, C, H W) or (N, F, T), the argmax of each along the last axis
        if len(self.axes) == 2:  # sizes named: a share of a batch may hold no rows
            flat = x.reshape(*x.shape[:2], x.shape[2] * x.shape[3])
        else:
            flat = x.transpose(0, 2, 1)
        self.shape, self.argmax = x.shape, flat.argmax(axis=-1)
        return xp.take_along_axis(flat, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, dy: Any) -> Any:
        xp = self.backend.xp
        n, c = dy.shape
        length = int(np.prod(self.shape[2:])) if len(self.axes) == 2 else self.shape[1]
        hit = xp.arange(length) == self.argmax[..., None]  # (N, C, length): one True a row
        dflat = hit * dy[..., None]
        if len(self.axes) == 2:
            return dflat.reshape(self.shape)
        return dflat.transpose(0, 2, 1).copy()
