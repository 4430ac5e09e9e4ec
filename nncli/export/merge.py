"""The merges and the residual block as ONNX nodes: Add, Mul and Concat over the outputs they
join; a residual's stack through its parts' converters, then Add with its input (or its
projection's output)."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any

from nncli.export.graph import Graph

LayerConverter = Callable[[Graph, Any, Any], str]


def add(g: Graph, layer: Any, xs: list[str]) -> str:
    return reduce(lambda a, b: g.node("Add", [a, b]), xs)


def multiply(g: Graph, layer: Any, xs: list[str]) -> str:
    return reduce(lambda a, b: g.node("Mul", [a, b]), xs)


def concat(g: Graph, layer: Any, xs: list[str]) -> str:
    """Axes count the batch as 0 in nncli as in ONNX."""
    return g.node("Concat", xs, axis=layer.axis)


def residual(convert: LayerConverter) -> LayerConverter:
    """y = f(x) + x, or + p(x) with a projection; each part (and p) by ``convert`` (one layer
    and its activation)."""

    def block(g: Graph, layer: Any, x: str) -> str:
        h = x
        for part in layer.parts:
            h = convert(g, part, h)
        shortcut = x if layer.shortcut is None else convert(g, layer.shortcut, x)
        return g.node("Add", [h, shortcut])

    return block


__all__ = ["add", "concat", "multiply", "residual"]
