"""Activations, usable as a layer's ``activation:`` key or as a layer (``- relu``).

Each keeps in ``forward`` what its derivative needs and maps dL/da to dL/dz in ``backward``.
Every activation is also registered as a layer of the same name (``layers/activation.py``).
"""

from __future__ import annotations

from typing import Any

from nncli.backend import array_module
from nncli.engine import checks
from nncli.engine.registry import ACTIVATIONS
from nncli.engine.special import erf
from nncli.errors import SpecError


class Activation:
    type_name = "activation"
    # set by a layer that hands over its own fresh pre-activation: the activation may then
    # overwrite it (one pass and one array fewer); an activation used as a layer never does
    inplace = False

    def forward(self, z: Any) -> Any:
        raise NotImplementedError

    def backward(self, dy: Any) -> Any:
        raise NotImplementedError

    def config(self) -> str | dict[str, Any]:
        return self.type_name


@ACTIVATIONS.register("linear")
class Linear(Activation):
    """a = z"""

    def forward(self, z: Any) -> Any:
        return z

    def backward(self, dy: Any) -> Any:
        return dy


@ACTIVATIONS.register("relu")
class ReLU(Activation):
    """a = max(0, z); da/dz = 1 where a > 0, else 0"""

    def forward(self, z: Any) -> Any:
        xp = array_module(z)
        self.a = xp.maximum(z, 0, out=z if self.inplace else None)
        return self.a

    def backward(self, dy: Any) -> Any:
        return dy * (self.a > 0)


@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(Activation):
    """a = z if z > 0 else slope * z"""

    def __init__(self, slope: float = 0.01):
        self.slope = checks.number("slope", slope, 0.0)

    def forward(self, z: Any) -> Any:
        xp = array_module(z)
        self.scale = xp.where(z > 0, 1.0, self.slope).astype(z.dtype)
        return z * self.scale

    def backward(self, dy: Any) -> Any:
        return dy * self.scale

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "slope": self.slope}


@ACTIVATIONS.register("elu")
class ELU(Activation):
    """a = z if z > 0 else alpha * (exp(z) - 1)"""

    def __init__(self, alpha: float = 1.0):
        self.alpha = checks.number("alpha", alpha, 0.0)

    def forward(self, z: Any) -> Any:
        xp = array_module(z)
        self.z = z
        negative = self.alpha * xp.expm1(xp.minimum(z, 0))
        self.a = xp.where(z > 0, z, negative)
        return self.a

    def backward(self, dy: Any) -> Any:
        xp = array_module(dy)
        return dy * xp.where(self.z > 0, 1.0, self.a + self.alpha).astype(dy.dtype)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "alpha": self.alpha}


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    """a = tanh(z); da/dz = 1 - a^2"""

    def forward(self, z: Any) -> Any:
        self.a = array_module(z).tanh(z)
        return self.a

    def backward(self, dy: Any) -> Any:
        return dy * (1 - self.a * self.a)


def sigmoid(z: Any) -> Any:
    """1 / (1 + exp(-z)), as e / (1 + e) with e = exp(-|z|) below zero: nothing overflows and
    the tail keeps its relative precision (0.5 (1 + tanh(z / 2)) cancels to 0 there)."""
    xp = array_module(z)
    e = xp.exp(-abs(z))
    return xp.where(z >= 0, 1, e) / (1 + e)


@ACTIVATIONS.register("sigmoid")
class Sigmoid(Activation):
    """a = 1 / (1 + exp(-z)); da/dz = a (1 - a)"""

    def forward(self, z: Any) -> Any:
        self.a = sigmoid(z)
        return self.a

    def backward(self, dy: Any) -> Any:
        return dy * self.a * (1 - self.a)


def softmax(z: Any, axis: int = -1) -> Any:
    xp = array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@ACTIVATIONS.register("softmax")
class Softmax(Activation):
    """a_k = exp(z_k) / sum_j exp(z_j) over the last axis; dz = a * (dy - sum(dy * a))"""

    def forward(self, z: Any) -> Any:
        self.a = softmax(z)
        return self.a

    def backward(self, dy: Any) -> Any:
        return self.a * (dy - (dy * self.a).sum(axis=-1, keepdims=True))


@ACTIVATIONS.register("softplus")
class Softplus(Activation):
    """a = log(1 + exp(z)); da/dz = sigmoid(z)"""

    def forward(self, z: Any) -> Any:
        xp = array_module(z)
        self.z = z
        return xp.logaddexp(0, z).astype(z.dtype)

    def backward(self, dy: Any) -> Any:
        return dy * sigmoid(self.z)


@ACTIVATIONS.register("sin")
class Sin(Activation):
    """a = sin(z); da/dz = cos(z) (the course text's one-neuron example)"""

    def forward(self, z: Any) -> Any:
        self.z = z
        return array_module(z).sin(z)

    def backward(self, dy: Any) -> Any:
        return dy * array_module(dy).cos(self.z)


_INV_SQRT2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


@ACTIVATIONS.register("gelu")
class GELU(Activation):
    """a = z Phi(z), Phi(z) = (1 + erf(z / sqrt 2)) / 2 (exact, as PyTorch's default);
    da/dz = Phi(z) + z phi(z), phi the standard normal density"""

    def forward(self, z: Any) -> Any:
        self.z = z
        self.phi_cdf = 0.5 * (1.0 + erf(z * _INV_SQRT2))
        return z * self.phi_cdf

    def backward(self, dy: Any) -> Any:
        xp = array_module(dy)
        density = _INV_SQRT_2PI * xp.exp(-0.5 * self.z * self.z)
        return dy * (self.phi_cdf + self.z * density)


@ACTIVATIONS.register("silu")
class SiLU(Activation):
    """a = z sigmoid(z); da/dz = s (1 + z (1 - s)), s = sigmoid(z)"""

    def forward(self, z: Any) -> Any:
        self.z = z
        self.s = sigmoid(z)
        return z * self.s

    def backward(self, dy: Any) -> Any:
        return dy * self.s * (1 + self.z * (1 - self.s))


@ACTIVATIONS.register("swish")
class Swish(SiLU):
    """Another name for silu (Keras and TensorFlow call it swish)."""


def make_activation(spec: str | dict[str, Any] | Activation) -> Activation:
    """``"relu"`` or ``{"type": "leaky_relu", "slope": 0.2}`` -> an Activation."""
    if isinstance(spec, Activation):
        return spec
    try:
        if isinstance(spec, dict):
            settings = dict(spec)
            return ACTIVATIONS.create(settings.pop("type", None), settings)
        if isinstance(spec, str):
            return ACTIVATIONS.create(spec)
    except SpecError as exc:
        exc.field = "activation" if exc.field == "type" else f"activation.{exc.field}"
        raise
    raise SpecError(f"expected an activation name, got {spec!r}", field="activation")
