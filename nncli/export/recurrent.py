"""rnn, lstm and gru as ONNX's own RNN, LSTM and GRU operators.

nncli keeps PyTorch's layouts: sequences batch first (N, T, F), gate blocks LSTM (i, f, g, o)
and GRU (r, z, n), and one summed bias for rnn and lstm. ONNX wants time first (T, N, F) (its
``layout=1`` is not supported everywhere, so a Transpose instead), gate blocks LSTM (i, o, f, c)
and GRU (z, r, h), and B = [input biases, hidden biases]. nncli's GRU applies the reset gate
after the hidden product, which is ONNX's ``linear_before_reset=1``. A bidirectional layer is
``direction="bidirectional"``: W, R and B stack the forward and the ``_reverse`` weights, and the
two directions' outputs are laid side by side as nncli lays them. The graph has no
``sequence_lens``: every sequence of a batch runs all T steps, as the export's input is defined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nncli.backend import to_host
from nncli.export.graph import Graph

TIME_FIRST = [1, 0, 2]  # (N, T, F) <-> (T, N, F)


def _blocks(value: np.ndarray, order: list[int]) -> np.ndarray:
    """Gate blocks along the first axis, reordered."""
    return np.concatenate([np.split(value, len(order))[i] for i in order])


def _weights(layer: Any, order: list[int], end: str) -> tuple[np.ndarray, ...]:
    """One direction's W, R and B (its parameters ending in ``end``) in ONNX's gate order."""
    p = {k: to_host(v).astype(np.float32) for k, v in layer.params.items()}
    hidden_bias = p.get("bias_hh" + end, np.zeros_like(p["weight_ih" + end][:, 0]))
    input_bias = p[layer.bias_names[0] + end]  # rnn, lstm: b_ih + b_hh; gru: b_ih
    bias = np.concatenate([_blocks(input_bias, order), _blocks(hidden_bias, order)])
    return _blocks(p["weight_ih" + end], order), _blocks(p["weight_hh" + end], order), bias


def _recurrent(op: str, order: list[int], **attrs: Any) -> Callable[[Graph, Any, str], str]:
    def convert(g: Graph, layer: Any, x: str) -> str:
        ends = ["", "_reverse"] if layer.bidirectional else [""]
        per_direction = [_weights(layer, order, end) for end in ends]
        w, r, b = (np.stack(arrays) for arrays in zip(*per_direction, strict=True))
        extra = dict(attrs)
        if op == "RNN":
            extra["activations"] = [layer.cell_activation.name.capitalize()] * len(ends)
        if layer.bidirectional:
            extra["direction"] = "bidirectional"
        y, y_last = g.node_outputs(
            op,
            [g.transpose(x, TIME_FIRST), g.weight("W", w), g.weight("R", r), g.weight("B", b)],
            2,
            hidden_size=layer.units,
            **extra,
        )
        if layer.return_sequences:  # Y (T, D, N, H) -> (T, N, D, H) -> (T, N, D*H) -> (N, T, D*H)
            y = g.transpose(y, [0, 2, 1, 3])
            y = g.node("Reshape", [y, g.weight("shape", [0, 0, -1], np.int64)])
            return g.transpose(y, TIME_FIRST)
        y_last = g.transpose(y_last, TIME_FIRST)  # Y_h (D, N, H) -> (N, D, H) -> (N, D*H)
        return g.node("Reshape", [y_last, g.weight("shape", [0, -1], np.int64)])

    return convert


RECURRENT = {
    "rnn": _recurrent("RNN", [0]),
    "lstm": _recurrent("LSTM", [0, 3, 1, 2]),  # i f g o -> i o f c
    "gru": _recurrent("GRU", [1, 0, 2], linear_before_reset=1),  # r z n -> z r h
}
