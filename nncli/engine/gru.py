"""The GRU: its step cell on ``Recurrent``'s shared time loop (``recurrent.py``)."""

from __future__ import annotations

from typing import ClassVar

from nncli.engine import fused
from nncli.engine.recurrent import Recurrent
from nncli.engine.registry import LAYERS


@LAYERS.register("gru")
class GRU(Recurrent):
    """[r z] = s(W_i[rz] x + b_i[rz] + W_h[rz] h + b_h[rz]); n = tanh(W_in x + b_in + r (W_hn h +
    b_hn)); h' = (1 - z) n + z h.

    weight_ih (3H, F), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,); gate blocks in the order
    reset, update, new, as in PyTorch.
    """

    examples: ClassVar = [
        ({"units": 3}, (4, 2)),
        ({"units": 2, "return_sequences": True}, (3, 2)),
        ({"units": 2, "bidirectional": True}, (3, 2)),
    ]
    gates = 3
    sigmoid_gates = (0, 1)
    separate_hidden_grad = True  # the new gate's hidden part is scaled by r
    bias_names = ("bias_ih", "bias_hh")

    def step_forward(self, gi, gh, state, out=None):
        return fused.gru_forward(gi, gh, state[0], self.units, out)  # one kernel on a GPU

    def step_backward(self, dstate, cache, dgi, dgh):
        return (fused.gru_backward(dstate[0], cache, dgi, dgh, self.units),)
