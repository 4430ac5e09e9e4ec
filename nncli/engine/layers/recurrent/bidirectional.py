"""The reverse direction of a bidirectional recurrent layer (``bidirectional: true``).

y = [forward(x) ++ flip(reverse(flip(x)))] on the last axis: (N, T, 2H), or (N, 2H) for the
last states. ``flip`` reverses each sequence's REAL steps and leaves padded steps where they
are, so for a padded sequence the reverse direction starts at its last real step, as PyTorch's
packed sequences do, and its last state is the one after reading back to step 0 (PyTorch's h_n).

The reverse direction is a second layer of the same kind (the twin), built from the same
settings right after the forward direction's weights. Its parameters live in the outer layer's
``params`` under PyTorch's names (``weight_ih_reverse``, ...) and are lent to the twin on every
call: the network may put any parameter or gradient into a flat buffer between calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.engine.layer import Shape

if TYPE_CHECKING:
    from nncli.engine.layers.recurrent.loop import Recurrent

SUFFIX = "_reverse"


def flip_order(xp: Any, mask: Any, steps: int) -> Any:
    """(N, T) indices putting each sequence's real steps in reverse order, padded steps in place;
    None without a mask (a plain reversal). The order is its own inverse."""
    if mask is None:
        return None
    mask = xp.asarray(mask, dtype=bool)
    t = xp.arange(steps)
    rank = xp.cumsum(mask, axis=1) - 1  # k for the k-th real step
    lengths = mask.sum(axis=1, keepdims=True)
    # the real steps' positions first, in time order (unique keys: any sort gives the same)
    real_first = xp.argsort(xp.where(mask, t, steps + t), axis=1)
    mirrored = xp.take_along_axis(real_first, xp.where(mask, lengths - 1 - rank, 0), axis=1)
    return xp.where(mask, mirrored, t)


def flip(xp: Any, a: Any, order: Any) -> Any:
    """a (N, T, ...) with each sequence's steps reordered by ``order`` (reversed when None)."""
    if order is None:
        return a[:, ::-1]
    index = order.reshape(*order.shape, *([1] * (a.ndim - 2)))
    return xp.take_along_axis(a, index, axis=1)


class Reverse:
    """Both directions of one layer: its own loop forwards, the twin's over the flipped steps."""

    def __init__(self, outer: Recurrent, in_shape: Shape, rng: np.random.Generator):
        cfg = {k: v for k, v in outer.config().items() if k != "type"}
        self.outer = outer
        self.twin = type(outer)(**{**cfg, "bidirectional": False})
        self.twin.index = outer.index
        self.twin.build(in_shape, outer.backend, rng)
        outer.params.update({name + SUFFIX: value for name, value in self.twin.params.items()})
        self.order: Any = None

    def forward(self, x: Any) -> Any:
        """x (N, T, F) -> both directions' outputs side by side on the last axis."""
        outer, twin = self.outer, self.twin
        xp, y_forward = outer.backend.xp, outer.run(x)  # run checks the mask's shape
        twin.params = {name: outer.params[name + SUFFIX] for name in twin.params}
        twin.mask = outer.mask  # the flip keeps padded steps where they are
        self.order = flip_order(xp, outer.mask, x.shape[1])
        y = twin.forward(xp.ascontiguousarray(flip(xp, x, self.order)))
        if twin.return_sequences:
            y = flip(xp, y, self.order)
        return xp.concatenate([y_forward, y], axis=-1)

    def backward(self, dy: Any) -> Any:
        """dy (.., 2H) -> dL/dx (None when the outer layer skips it); the twin's gradients go
        into the outer layer's ``grads``."""
        outer, twin = self.outer, self.twin
        xp, h = outer.backend.xp, outer.units
        twin.grads = {name: outer.grads[name + SUFFIX] for name in twin.params}
        twin.skip_input_grad = outer.skip_input_grad
        dy_reverse = dy[..., h:]
        if twin.return_sequences:
            dy_reverse = flip(xp, dy_reverse, self.order)
        dx_reverse = twin.backward(xp.ascontiguousarray(dy_reverse))
        dx = outer.run_backward(xp.ascontiguousarray(dy[..., :h]))
        return None if dx is None else dx + flip(xp, dx_reverse, self.order)
