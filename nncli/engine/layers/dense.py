"""Fully connected layer."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.backend import array_module
from nncli.engine import checks
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
    any_steps = True  # per step, so any number of steps

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
        self.kernel_initializer = self.initializer("kernel_initializer", kernel_initializer)
        self.bias_initializer = self.initializer("bias_initializer", bias_initializer, "zeros")
        if self.activation is not None:
            self.activation.inplace = True  # z is this layer's own fresh array

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        shapes = self.array_shapes(in_shape)
        fan_in, units = in_shape[-1], self.units
        self.params["weight"] = self.kernel_initializer(shapes["weight"], fan_in, units, rng)
        if self.use_bias:
            self.params["bias"] = self.bias_initializer(shapes["bias"], fan_in, units, rng)
        return (*in_shape[:-1], units)

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        shapes = {"weight": (self._units(), in_shape[-1])}
        return shapes | ({"bias": (self._units(),)} if self.use_bias else {})

    def output_shape(self, in_shape: Shape) -> Shape:
        return (*in_shape[:-1], self._units())

    def _units(self) -> int:
        if self.units == "auto":
            raise ValueError("units: auto must be resolved from the data before build")
        return self.units

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        self.x = x
        # (N, T, in) as one 2-D product: numpy's 3-D @ 2-D runs one small product per sample
        weight = self.params["weight"]  # (units, in); explicit sizes: a share may hold no rows
        z = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
        if self.use_bias:
            z += self.params["bias"]
        return self._activate(z)

    def backward(self, dy: Any) -> Any:
        """dW = dz^T x and db = 1^T dz, written into ``grads``; dx = dz W, skipped when the
        network says nobody needs it (the first layer while training)."""
        xp = self.backend.xp
        dz = self._activate_backward(dy)
        x2 = self.x.reshape(-1, self.x.shape[-1])
        dz2 = dz.reshape(-1, dz.shape[-1])
        xp.matmul(dz2.T, x2, out=self.grads["weight"])
        if self.use_bias:
            bias_sum(dz2, self.grads["bias"], self.backend.name)
        if self.skip_input_grad:
            return None
        weight = self.params["weight"]
        return (dz2 @ weight).reshape(*dz.shape[:-1], weight.shape[1])

    def config(self) -> dict[str, Any]:
        # without initializer_config(): dense checkpoints never recorded their initialisers,
        # and resuming compares configs, so writing them now would refuse older runs
        cfg = super().config()
        cfg["units"] = self.units
        if not self.use_bias:
            cfg["use_bias"] = False
        return cfg


_ONES: dict[tuple[int, Any], Any] = {}


def bias_sum(dz: Any, out: Any, device: str) -> Any:
    """out = dz summed over its rows, (R, K) -> (K,). On the CPU a matrix-vector product with a
    ones vector runs several times faster than numpy's ``sum(axis=0)`` (one BLAS pass instead of
    a strided reduction); CuPy's sum is the faster one there."""
    xp = array_module(dz)
    if device != "cpu":
        return xp.sum(dz, axis=0, out=out)
    key = (dz.shape[0], dz.dtype)
    ones = _ONES.get(key)
    if ones is None:
        ones = _ONES[key] = xp.ones(dz.shape[0], dtype=dz.dtype)
    return xp.matmul(ones, dz, out=out)
