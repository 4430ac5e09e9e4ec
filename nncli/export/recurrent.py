"""rnn, lstm and gru as ONNX's own RNN, LSTM and GRU operators.

nncli keeps PyTorch's layouts: sequences batch first (N, T, F), gate blocks LSTM (i, f, g, o)
and GRU (r, z, n), and one summed bias for rnn and lstm. ONNX wants time first (T, N, F) (its
``layout=1`` is not supported everywhere, so a Transpose instead), gate blocks LSTM (i, o, f, c)
and GRU (z, r, h), and B = [input biases, hidden biases]. nncli's GRU applies the reset gate
after the hidden product, which is ONNX's ``linear_before_reset=1``.
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


def _recurrent(op: str, order: list[int], **attrs: Any) -> Callable[[Graph, Any, str], str]:
    def convert(g: Graph, layer: Any, x: str) -> str:
        p = {k: to_host(v).astype(np.float32) for k, v in layer.params.items()}
        hidden_bias = p.get("bias_hh", np.zeros_like(p["weight_ih"][:, 0]))
        input_bias = p[layer.bias_names[0]]  # rnn, lstm: b_ih + b_hh; gru: b_ih
        bias = np.concatenate([_blocks(input_bias, order), _blocks(hidden_bias, order)])
        extra = dict(attrs)
        if op == "RNN":
            extra["activations"] = [layer.cell_activation.name.capitalize()]
        y, y_last = g.node_outputs(
            op,
            [
                g.transpose(x, TIME_FIRST),
                g.weight("W", _blocks(p["weight_ih"], order)[None]),
                g.weight("R", _blocks(p["weight_hh"], order)[None]),
                g.weight("B", bias[None]),
            ],
            2,
            hidden_size=layer.units,
            **extra,
        )
        if layer.return_sequences:  # Y (T, 1, N, H) -> (N, T, H)
            return g.transpose(g.squeeze(y, 1), TIME_FIRST)
        return g.squeeze(y_last, 0)  # Y_h (1, N, H) -> (N, H)

    return convert


RECURRENT = {
    "rnn": _recurrent("RNN", [0]),
    "lstm": _recurrent("LSTM", [0, 3, 1, 2]),  # i f g o -> i o f c
    "gru": _recurrent("GRU", [1, 0, 2], linear_before_reset=1),  # r z n -> z r h
}
