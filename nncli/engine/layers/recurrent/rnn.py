"""The simple rnn: h_t = f(W_ih x_t + W_hh h_{t-1} + b), its step cell on ``Recurrent``'s time
loop (``loop.py``), with the cell's activation f by name (``activation``: tanh or relu), each
working in place and giving its slope from h alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from nncli.engine import checks
from nncli.engine.layers.recurrent.loop import Recurrent
from nncli.engine.registry import LAYERS


@dataclass(frozen=True)
class CellActivation:
    """f of a simple rnn's cell: h = f(z) written into ``out``, and f'(z) from h alone (the
    backward pass keeps h, not z)."""

    name: str
    forward: Callable[[Any, Any, Any], Any]  # (xp, z, out) -> h
    slope: Callable[[Any], Any]  # h -> f'(z)


CELL_ACTIVATIONS = {
    "tanh": CellActivation("tanh", lambda xp, z, out: xp.tanh(z, out=out), lambda h: 1 - h * h),
    "relu": CellActivation("relu", lambda xp, z, out: xp.maximum(z, 0, out=out), lambda h: h > 0),
}


@LAYERS.register("rnn")
class SimpleRNN(Recurrent):
    """h_t = f(W_ih x_t + W_hh h_{t-1} + b), f = tanh or relu.

    weight_ih (H, F), weight_hh (H, H), bias (H,) = PyTorch's b_ih + b_hh.
    """

    examples: ClassVar = [
        ({"units": 3}, (4, 2)),
        ({"units": 3, "activation": "relu", "return_sequences": True}, (3, 2)),
        ({"units": 2, "bidirectional": True}, (3, 2)),
    ]

    def __init__(
        self,
        units: int,
        return_sequences: bool = False,
        kernel_initializer: str | dict | None = None,
        recurrent_initializer: str | dict | None = None,
        activation: str = "tanh",
        bidirectional: bool = False,
    ):
        super().__init__(
            units, return_sequences, kernel_initializer, recurrent_initializer, bidirectional
        )
        name = checks.choice("activation", activation, list(CELL_ACTIVATIONS))
        self.cell_activation = CELL_ACTIVATIONS[name]

    def step_forward(self, gi, gh, state, out=None):
        z = gh
        z += gi
        h = self.cell_activation.forward(self.backend.xp, z, out)
        return (h,), h

    def step_backward(self, dstate, h, dgi, dgh):
        self.backend.xp.multiply(dstate[0], self.cell_activation.slope(h), out=dgi)
        return (None,)

    def config(self):
        cfg = super().config()
        cfg["activation"] = self.cell_activation.name
        return cfg
