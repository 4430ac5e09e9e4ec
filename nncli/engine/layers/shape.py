"""Layers that only change an array's shape."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS
from nncli.errors import SpecError


@LAYERS.register("flatten")
class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)"""

    examples: ClassVar = [({}, (2, 3, 2))]

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        return (int(np.prod(in_shape)),)

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        return x.reshape(x.shape[0], *self.out_shape)  # explicit: a share may hold 0 rows

    def backward(self, dy: Any) -> Any:
        return dy.reshape(dy.shape[0], *self.in_shape)


@LAYERS.register("reshape")
class Reshape(Layer):
    """(N, *in_shape) -> (N, *shape), same number of values per sample (e.g. 64 pixels -> 1x8x8)"""

    examples: ClassVar = [({"shape": [1, 2, 3]}, (6,))]

    def __init__(self, shape: list[int]):
        super().__init__()
        if (
            not isinstance(shape, (list, tuple))
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise SpecError(f"expected a list of positive integers, got {shape!r}", field="shape")
        self.shape = tuple(shape)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        if int(np.prod(in_shape)) != int(np.prod(self.shape)):
            raise SpecError(
                f"{self.label} cannot reshape {in_shape} ({int(np.prod(in_shape))} values) "
                f"into {self.shape} ({int(np.prod(self.shape))} values)",
                field="shape",
            )
        return self.shape

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, dy: Any) -> Any:
        return dy.reshape(dy.shape[0], *self.in_shape)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "shape": list(self.shape)}
