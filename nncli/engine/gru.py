"""The GRU: its step cell on ``Recurrent``'s shared time loop (``recurrent.py``)."""

from __future__ import annotations

from typing import ClassVar

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
        xp, h = self.backend.xp, self.units
        h_prev = state[0]
        rz = gh[: 2 * h]
        rz += gi[: 2 * h]
        xp.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z = rz[:h], rz[h:]
        gh_n = gh[2 * h :]
        n = r * gh_n
        n += gi[2 * h :]
        xp.tanh(n, out=n)
        h_new = xp.subtract(h_prev, n, out=out)
        h_new *= z
        h_new += n
        return (h_new,), (rz, n, gh_n, h_prev)

    def step_backward(self, dstate, cache, dgi, dgh):
        xp, h = self.backend.xp, self.units
        dh = dstate[0]
        rz, n, gh_n, h_prev = cache
        r, z = rz[:h], rz[h:]
        dn = dgi[2 * h :]
        xp.multiply(dh, 1 - z, out=dn)
        dn *= 1 - n * n
        xp.multiply(dn, gh_n, out=dgi[:h])
        xp.multiply(dh, h_prev - n, out=dgi[h : 2 * h])
        dgi[: 2 * h] *= rz * (1 - rz)
        dgh[: 2 * h] = dgi[: 2 * h]
        xp.multiply(dn, r, out=dgh[2 * h :])
        return (dh * z,)
