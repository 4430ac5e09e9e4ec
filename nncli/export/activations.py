"""Activation name -> ONNX nodes, one function per activation in ``ACTIVATIONS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nncli.errors import SpecError
from nncli.export.graph import Graph

ActivationConverter = Callable[[Graph, Any, str], str]
ACTIVATIONS: dict[str, ActivationConverter] = {}


def simple(op: str, **attrs: Callable[[Any], Any]) -> ActivationConverter:
    """One ONNX operator; ``attrs`` maps its attribute names to readers of the activation."""

    def convert(g: Graph, activation: Any, x: str) -> str:
        return g.node(op, [x], **{k: read(activation) for k, read in attrs.items()})

    return convert


def gelu(g: Graph, activation: Any, x: str) -> str:
    """a = z (1 + erf(z / sqrt 2)) / 2, exact (Erf; ONNX's own Gelu needs opset 20)."""
    scaled = g.node("Mul", [x, g.weight("inv_sqrt2", 0.7071067811865476)])
    phi = g.node("Add", [g.node("Erf", [scaled]), g.weight("one", 1.0)])
    return g.node("Mul", [g.node("Mul", [x, phi]), g.weight("half", 0.5)])


def silu(g: Graph, activation: Any, x: str) -> str:
    """a = z sigmoid(z)."""
    return g.node("Mul", [x, g.node("Sigmoid", [x])])


ACTIVATIONS.update(
    {
        "linear": lambda g, activation, x: x,
        "relu": simple("Relu"),
        "leaky_relu": simple("LeakyRelu", alpha=lambda a: float(a.slope)),
        "elu": simple("Elu", alpha=lambda a: float(a.alpha)),
        "tanh": simple("Tanh"),
        "sigmoid": simple("Sigmoid"),
        "softmax": simple("Softmax", axis=lambda a: -1),
        "softplus": simple("Softplus"),
        "sin": simple("Sin"),
        "gelu": gelu,
        "silu": silu,
        "swish": silu,
    }
)


def activate(g: Graph, activation: Any, x: str) -> str:
    convert = ACTIVATIONS.get(activation.type_name)
    if convert is None:
        raise SpecError(f"activation {activation.type_name!r} has no ONNX converter")
    return convert(g, activation, x)
