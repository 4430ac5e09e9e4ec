"""Fully connected layer."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.initializers import make_initializer
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS


@LAYERS.register("dense")
class Dense(Layer):
    """y = f(x W^T + b) over the last axis.

    x (N, ..., in) -> y (N, ..., units); weight (units, in), bias (units,). A dense layer after a
    recurrent layer with ``return_sequences`` acts on every time step.
    """

    examples: ClassVar = [
        ({"units": 3}, (4,)),
        ({"units": 2, "activation": "tanh", "use_bias": False}, (5,)),
        ({"units": 3, "activation": "softmax"}, (2, 4)),  # per time step of (T, F) input
    ]

    def __init__(
        self,
        units: int | str,
        activation: str | dict | None = None,
        use_bias: bool = True,
        kernel_initializer: str | dict | None = None,
        bias_initializer: str | dict = "zeros",
    ):
        super().__init__(activation)
        self.units = units if units == "auto" else checks.positive_int("units", units)
        self.use_bias = checks.boolean("use_bias", use_bias)
        self.kernel_initializer = make_initializer(kernel_initializer, self.output_activation)
        self.bias_initializer = make_initializer(bias_initializer, None, "bias_initializer")

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        if self.units == "auto":
            raise ValueError("units: auto must be resolved from the data before build")
        fan_in, units = in_shape[-1], self.units
        self.params["weight"] = self.kernel_initializer((units, fan_in), fan_in, units, rng)
        if self.use_bias:
            self.params["bias"] = self.bias_initializer((units,), fan_in, units, rng)
        return (*in_shape[:-1], units)

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        self.x = x
        z = x @ self.params["weight"].T
        if self.use_bias:
            z += self.params["bias"]
        return self._activate(z)

    def backward(self, dy: Any) -> Any:
        dz = self._activate_backward(dy)
        x2 = self.x.reshape(-1, self.x.shape[-1])
        dz2 = dz.reshape(-1, dz.shape[-1])
        self.grads["weight"] = dz2.T @ x2
        if self.use_bias:
            self.grads["bias"] = dz2.sum(axis=0)
        return dz @ self.params["weight"]

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["units"] = self.units
        if not self.use_bias:
            cfg["use_bias"] = False
        return cfg
