"""Global average and max pooling: one value per channel (images) or feature (sequences)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

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
        if real is None:
            self.scale = 1.0 / int(np.prod([x.shape[a] for a in self.axes]))
            self.real = None
            return x.mean(axis=self.axes)
        count = xp.maximum(real.sum(axis=1), 1).astype(x.dtype)  # (N, 1)
        self.scale, self.real = 1.0 / count, real
        return xp.where(real, x, 0).sum(axis=1) * self.scale

    def backward(self, dy: Any) -> Any:
        dx = self.backend.xp.broadcast_to(self._expand(dy * self.scale), self.in_full)
        return dx * self.real if self.real is not None else dx.copy()

    def check_input(self, x: Any) -> None:
        super().check_input(x)
        self.in_full = tuple(x.shape)


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
