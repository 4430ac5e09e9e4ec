"""Inverted dropout."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS


@LAYERS.register("dropout")
class Dropout(Layer):
    """y = x * m / (1 - rate), m ~ Bernoulli(1 - rate), in training only; y = x otherwise.

    Any shape. The mask is drawn on the host from the generator the network hands over each
    epoch (derived from the spec's seed), so runs are repeatable on every device. A process
    holding a share of a batch (``batch_share``) draws the whole batch's mask and keeps its rows,
    so the masks belong to global sample positions and any number of processes agree.
    """

    examples: ClassVar = [({"rate": 0.3}, (4, 3))]
    any_steps = True

    def __init__(self, rate: float = 0.5):
        super().__init__()
        self.rate = checks.number("rate", rate, 0.0, 1.0, high_open=True)
        self.rng = np.random.default_rng(0)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        return in_shape

    def set_rng(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def reset_rng(self) -> None:
        """Same mask on every call (for the numerical gradient check)."""
        self.rng = np.random.default_rng(0)

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        self.scale = self.draw_scale(x.shape) if training else None
        return x if self.scale is None else x * self.scale

    def draw_scale(self, shape: Shape) -> Any:
        """keep / (1 - rate) on the device for an input of ``shape`` (None when the rate is 0):
        the next mask from the generator. Attention draws its weights' masks through it too."""
        if self.rate == 0.0:
            return None
        share = self.batch_share
        if share is None:
            keep = self.rng.random(shape, dtype=np.float32) >= self.rate
        else:  # the global batch's masks, so every process count draws the same ones
            first, rows = share
            keep = self.rng.random((rows, *shape[1:]), dtype=np.float32) >= self.rate
            keep = keep[first : first + shape[0]]
        return self.backend.asarray(keep) / (1.0 - self.rate)

    def backward(self, dy: Any) -> Any:
        return dy if self.scale is None else dy * self.scale

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "rate": self.rate}
