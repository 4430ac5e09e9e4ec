"""The activation f of a simple rnn's cell, h = f(z), by name (the ``rnn`` layer's
``activation``): each works in place and gives its slope from h alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
