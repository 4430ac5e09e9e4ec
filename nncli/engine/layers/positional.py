"""Position information added to sequences: learned or sinusoidal."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError, SpecError

ENCODINGS = ["learned", "sinusoidal"]


def sinusoidal_table(length: int, features: int) -> np.ndarray:
    """(length, features): P[t, 2i] = sin(t w_i), P[t, 2i + 1] = cos(t w_i), w_i = 10000^(-2i/F)
    ("Attention is all you need"; an odd F ends with a sine)."""
    position = np.arange(length)[:, None]
    frequency = np.exp(np.arange(0, features, 2) * (-np.log(10000.0) / features))
    table = np.zeros((length, features))
    table[:, 0::2] = np.sin(position * frequency)
    table[:, 1::2] = np.cos(position * frequency[: features // 2])
    return table


@LAYERS.register("positional")
class Positional(Layer):
    """y[n, t] = x[n, t] + P[t] for t < T <= max_length.

    x (N, T, F) -> y (N, T, F). ``learned``: P is the parameter weight (max_length, F), drawn from
    N(0, 0.02^2) (torchvision's ViT); ``sinusoidal``: P is the fixed table above, no parameters.
    An input longer than max_length is an error naming it.
    """

    examples: ClassVar = [
        ({"max_length": 6}, (4, 3)),
        ({"encoding": "sinusoidal", "max_length": 8}, (5, 4)),
    ]
    any_steps = True

    def __init__(self, max_length: int, encoding: str = "learned"):
        super().__init__(None)
        self.max_length = checks.positive_int("max_length", max_length)
        self.encoding = checks.choice("encoding", encoding, ENCODINGS)

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        learned = self.encoding == "learned"
        return {"weight": (self.max_length, in_shape[-1])} if learned else {}

    def output_shape(self, in_shape: Shape) -> Shape:
        self.require_sequences(in_shape)
        if in_shape[0] > self.max_length:
            field = "max_length" if self.index is None else f"layers[{self.index}].max_length"
            raise SpecError(
                f"{self.label}: expected max_length of at least the input's {in_shape[0]} "
                f"steps, got {self.max_length}",
                field=field,
            )
        return tuple(in_shape)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        self.output_shape(in_shape)
        features = in_shape[-1]
        shape = (self.max_length, features)
        if self.encoding == "learned":
            self.params["weight"] = rng.normal(0.0, 0.02, size=shape)
        else:
            self.table = self.backend.asarray(sinusoidal_table(*shape))
        return in_shape

    def check_input(self, x: Any) -> None:
        super().check_input(x)
        if x.shape[1] > self.max_length:
            raise ShapeError(
                f"{self.label} expects at most max_length {self.max_length} steps, "
                f"got {x.shape[1]} in {tuple(x.shape)}"
            )

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        self.steps = x.shape[1]
        table = self.params["weight"] if self.encoding == "learned" else self.table
        return x + table[: self.steps]

    def backward(self, dy: Any) -> Any:
        """dP[t] = sum over the batch of dy[:, t] for t < T, 0 beyond; dx = dy."""
        if self.encoding == "learned":
            grad = self.grads["weight"]
            grad[self.steps :] = 0
            grad[: self.steps] = dy.sum(axis=0)
        return None if self.skip_input_grad else dy

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "encoding": self.encoding, "max_length": self.max_length}
