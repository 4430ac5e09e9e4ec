"""Parameters as views into one flat buffer: what lets an optimizer update every parameter in
one whole-array pass (``optimizers.py``), and the trainable ones as the buffer's leading slice
(``trainable: false``)."""

from __future__ import annotations

from typing import Any


class FlatParameters(dict):
    """Named parameters (or gradients) that are views, in order, into the 1-D ``buffer``."""

    def __init__(self, views: dict[str, Any], buffer: Any):
        super().__init__(views)
        self.buffer = buffer


def trainable_part(named: dict[str, Any], frozen: set[str]) -> dict[str, Any]:
    """``named`` less the ``frozen`` names; of ``FlatParameters`` whose frozen ones come last
    in the buffer, flat again over the buffer's leading slice (one whole-array update)."""
    kept = {name: a for name, a in named.items() if name not in frozen}
    if not isinstance(named, FlatParameters) or list(named)[: len(kept)] != list(kept):
        return kept  # not the buffer's lead (trainable changed after the build): one by one
    return FlatParameters(kept, named.buffer[: sum(int(a.size) for a in kept.values())])


def flat_pair(params: dict[str, Any], grads: dict[str, Any]) -> tuple[Any, Any] | None:
    """(parameter buffer, gradient buffer) when both come flat and match, else None."""
    if (
        isinstance(params, FlatParameters)
        and isinstance(grads, FlatParameters)
        and params.buffer.shape == grads.buffer.shape
        and params.keys() == grads.keys()
    ):
        return params.buffer, grads.buffer
    return None
