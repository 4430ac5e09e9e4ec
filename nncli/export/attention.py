"""attention, positional and transformer as ONNX nodes (MatMul, Softmax, LayerNormalization).

The attention's heads are a Reshape (N, T, H, d) and a Transpose to (N, H, T, d); the causal
mask is built in the graph for any T (Range, a comparison, Where with -inf before the
Softmax). As for the recurrent layers the graph has no padding mask: a batch holds sequences
of one length, and a padded sequence fed alone at its own length gives what nncli gives it in a
masked batch (its padded steps were masked as keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nncli.backend import to_host
from nncli.export.graph import Graph

HEADS_FIRST = [0, 2, 1, 3]  # (N, T, H, d) <-> (N, H, T, d)
LayerConverter = Callable[[Graph, Any, str], str]


def _param(layer: Any, key: str) -> np.ndarray:
    return to_host(layer.params[key]).astype(np.float32)


def _steps(g: Graph, x: str) -> str:
    """T of x (N, T, F) as a 1-element int64 tensor."""
    return g.node("Shape", [x], start=1, end=2)


def _future(g: Graph, x: str) -> str:
    """(T, T) booleans, True where the key comes after the query (what causal hides)."""
    zero, one = g.weight("zero", 0, np.int64), g.weight("one", 1, np.int64)
    steps = g.node("Squeeze", [_steps(g, x), g.weight("axes", [0], np.int64)])
    position = g.node("Range", [zero, steps, one])
    queries = g.node("Unsqueeze", [position, g.weight("axes", [1], np.int64)])
    return g.node("Greater", [position, queries])  # key index > query index


def _heads(g: Graph, x: str, weight: np.ndarray, bias: np.ndarray, shape: str) -> str:
    """x W^T + b (N, T, F) as heads (N, H, T, d)."""
    z = g.node("Add", [g.node("MatMul", [x, g.weight("w", weight.T)]), g.weight("b", bias)])
    return g.transpose(g.node("Reshape", [z, shape]), HEADS_FIRST)


def attention(g: Graph, layer: Any, x: str) -> str:
    """[q, k, v] = x W_in^T + b_in in heads; softmax(q k^T / sqrt(d)) v; then W_out, b_out."""
    features, size = layer.in_shape[-1], layer.head_size
    shape = g.weight("heads", [0, 0, layer.heads, size], np.int64)
    blocks = zip(
        np.split(_param(layer, "in_proj_weight"), 3),
        np.split(_param(layer, "in_proj_bias"), 3),
        strict=True,
    )
    q, k, v = (_heads(g, x, weight, bias, shape) for weight, bias in blocks)
    scale = g.weight("scale", np.float32(1.0 / np.sqrt(size)))
    keys = g.transpose(k, [0, 1, 3, 2])
    scores = g.node("MatMul", [g.node("Mul", [q, scale]), keys])  # (N, H, T, T)
    if layer.causal:
        scores = g.node("Where", [_future(g, x), g.weight("minus_inf", -np.inf), scores])
    weights = g.node("Softmax", [scores], axis=-1)
    heads_out = g.transpose(g.node("MatMul", [weights, v]), HEADS_FIRST)  # (N, T, H, d)
    merged = g.node("Reshape", [heads_out, g.weight("merged", [0, 0, features], np.int64)])
    out = g.node("MatMul", [merged, g.weight("w_out", _param(layer, "out_proj_weight").T)])
    return g.node("Add", [out, g.weight("b_out", _param(layer, "out_proj_bias"))])


def positional(g: Graph, layer: Any, x: str) -> str:
    """x + the table's first T rows (learned weight or the sinusoidal table)."""
    table = layer.params["weight"] if layer.encoding == "learned" else layer.table
    table = g.weight("positions", to_host(table).astype(np.float32))
    zero, axis = g.weight("start", [0], np.int64), g.weight("axis", [0], np.int64)
    rows = g.node("Slice", [table, zero, _steps(g, x), axis])
    return g.node("Add", [x, rows])


def transformer(convert: LayerConverter) -> LayerConverter:
    """The block through its parts, each by ``convert`` (one layer and its activation):
    dropout is the identity, norm_first as in the engine."""

    def block(g: Graph, layer: Any, x: str) -> str:
        p = layer.parts

        def run(parts: list[Any], h: str) -> str:
            for part in parts:
                h = convert(g, part, h)
            return h

        sa, ff = layer.attention_block, layer.feedforward_block
        if layer.norm_first:
            h = g.node("Add", [x, run(sa, convert(g, p["norm1"], x))])
            return g.node("Add", [h, run(ff, convert(g, p["norm2"], h))])
        h = convert(g, p["norm1"], g.node("Add", [x, run(sa, x)]))
        return convert(g, p["norm2"], g.node("Add", [h, run(ff, h)]))

    return block


__all__ = ["attention", "positional", "transformer"]
