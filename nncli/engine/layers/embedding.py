"""Embedding: integer ids -> learned vectors."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.backend import to_host
from nncli.engine import checks
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS
from nncli.errors import DataError, ShapeError


@LAYERS.register("embedding")
class Embedding(Layer):
    """y[n, t] = weight[x[n, t]]

    x (N, T) integer ids in [0, input_dim) (``auto``: the data's vocabulary size) -> y (N, T,
    output_dim); weight (input_dim, output_dim). dW adds each step's dy onto its id's row; ids
    get no gradient (None back). An id of -1 is an unknown symbol (``predict --unknown ignore``):
    a zero vector, as one-hot input gives an all-zero row, and no gradient.
    Ids are checked on the host: CuPy wraps an out-of-range index instead of raising.
    """

    examples: ClassVar = [({"input_dim": 5, "output_dim": 3}, (4,))]
    any_steps = True
    integer_input = "input_dim"

    def __init__(
        self,
        input_dim: int | str,
        output_dim: int,
        embeddings_initializer: str | dict | None = None,
    ):
        super().__init__(None)
        # auto: the vocabulary size of the data (text symbols, a sequence's token column)
        auto = input_dim == "auto"
        self.input_dim = input_dim if auto else checks.positive_int("input_dim", input_dim)
        self.output_dim = checks.positive_int("output_dim", output_dim)
        self.embeddings_initializer = self.initializer(  # N(0, 1) by default, as PyTorch
            "embeddings_initializer", embeddings_initializer or None, {"type": "normal", "std": 1.0}
        )

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        shape = self.array_shapes(in_shape)["weight"]
        self.params["weight"] = self.embeddings_initializer(
            shape, self.input_dim, self.output_dim, rng
        )
        return (*in_shape, self.output_dim)

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        if self.input_dim == "auto":
            raise ValueError("input_dim: auto must be resolved from the data before build")
        return {"weight": (self.input_dim, self.output_dim)}

    def output_shape(self, in_shape: Shape) -> Shape:
        return (*in_shape, self.output_dim)

    def id_count(self) -> int:
        return self.input_dim

    def check_input(self, x: Any) -> None:
        """Ids (N, T) of any length T: a shorter prompt or a trimmed padded batch is fine."""
        if x.ndim != 1 + len(self.in_shape or ()):
            want = ", ".join(["N", *map(str, self.in_shape or ())])
            raise ShapeError(f"{self.label} expects ids ({want}), got {tuple(x.shape)}")

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        bad = (x < -1) | (x >= self.input_dim) | (x % 1 != 0)
        if x.size and bool(bad.any()):  # on a GPU one scalar sync, not the ids' transfer
            first = to_host(x[bad].ravel()[:1])[0]
            raise DataError(
                f"{self.label} expects integer ids in [0, {self.input_dim}) "
                f"(or -1 for an unknown symbol), got {first:g}"
            )
        self.known = (x >= 0)[..., None]  # -1, an unknown symbol: the zero vector
        self.ids = x.astype(np.int64) * self.known[..., 0]  # -1 -> row 0, then masked out
        return self.params["weight"][self.ids] * self.known

    def backward(self, dy: Any) -> Any:
        dw = self.grads["weight"]
        dw[...] = 0
        dy = dy * self.known  # unknown symbols learn nothing
        ids, rows = self.ids.reshape(-1), dy.reshape(-1, self.output_dim)
        self.backend.add_at(dw, ids, rows)  # an id repeated in the batch adds up
        return None

    def config(self) -> dict[str, Any]:
        cfg = {"type": self.type_name, "input_dim": self.input_dim, "output_dim": self.output_dim}
        return {**cfg, **self.initializer_config()}
