"""The GRU: its step cell on ``Recurrent``'s time loop (``loop.py``), and the cell's math:
``cell_forward`` / ``cell_backward``, the numpy reference (the CPU's path and the GPU
stand-in's) and one CUDA kernel each way on a real GPU.

[r z] = s(W_i[rz] x + b_i[rz] + W_h[rz] h + b_h[rz]); n = tanh(W_in x + b_in + r (W_hn h + b_hn));
h' = (1 - z) n + z h; s the sigmoid, taken as 0.5 tanh(z / 2) + 0.5 (the r and z blocks arrive
halved, ``Recurrent.gate_scale``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from nncli.backend import array_module
from nncli.engine import kernels
from nncli.engine.layers.recurrent.loop import Recurrent
from nncli.engine.registry import LAYERS

# gate names end in _g: CuPy's kernels reserve ``i`` (the element's index) and ``n``
FORWARD = kernels.cuda(
    "gru_forward",
    "T gi_r, T gi_z, T gi_n, T gh_n, T h_prev",
    "T r_g, T z_g, T n_g, T h_new",
    "r_g = tanh(r_g + gi_r) * (T)0.5 + (T)0.5; z_g = tanh(z_g + gi_z) * (T)0.5 + (T)0.5;"
    " n_g = tanh(r_g * gh_n + gi_n); h_new = (h_prev - n_g) * z_g + n_g;",
)
BACKWARD = kernels.cuda(
    "gru_backward",
    "T dh, T r_g, T z_g, T n_g, T gh_n, T h_prev",
    "T dgi_r, T dgi_z, T dgi_n, T dgh_r, T dgh_z, T dgh_n, T dh_prev",
    "T dn = (dh * ((T)1 - z_g)) * ((T)1 - n_g * n_g); dgi_n = dn;"
    " dgi_r = (dn * gh_n) * (r_g * ((T)1 - r_g));"
    " dgi_z = (dh * (h_prev - n_g)) * (z_g * ((T)1 - z_g));"
    " dgh_r = dgi_r; dgh_z = dgi_z; dgh_n = dn * r_g; dh_prev = dh * z_g;",
)


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
        return cell_forward(gi, gh, state[0], self.units, out)  # one kernel on a GPU

    def step_backward(self, dstate, cache, dgi, dgh):
        return (cell_backward(dstate[0], cache, dgi, dgh, self.units),)


def cell_forward(gi: Any, gh: Any, h_prev: Any, h: int, out: Any = None) -> tuple[tuple, tuple]:
    """gi = W_ih x + b_ih, gh = W_hh h_prev + b_hh (scaled by 0.5 in the r and z blocks) ->
    ((h',), (rz, n, gh_n, h_prev)); r and z overwrite ``gh[:2h]``."""
    xp = array_module(gh)
    rz, gh_n = gh[: 2 * h], gh[2 * h :]
    kernel = kernels.gpu_kernel(gh, FORWARD)
    if kernel is not None:
        n = xp.empty_like(h_prev)
        out = xp.empty_like(h_prev) if out is None else out
        kernel(gi[:h], gi[h : 2 * h], gi[2 * h :], gh_n, h_prev, rz[:h], rz[h:], n, out)
        return (out,), (rz, n, gh_n, h_prev)
    rz += gi[: 2 * h]
    xp.tanh(rz, out=rz)
    rz *= 0.5
    rz += 0.5
    n = xp.tanh(rz[:h] * gh_n + gi[2 * h :])
    h_new = xp.subtract(h_prev, n, out=out)
    h_new *= rz[h:]
    h_new += n
    return (h_new,), (rz, n, gh_n, h_prev)


def cell_backward(dh: Any, cache: tuple, dgi: Any, dgh: Any, h: int) -> Any:
    """dL/d(gates) into ``dgi`` and ``dgh`` (3H, N) from dL/dh' -> dL/dh (through z)."""
    rz, n, gh_n, h_prev = cache
    r, z = rz[:h], rz[h:]
    kernel = kernels.gpu_kernel(dh, BACKWARD)
    if kernel is not None:
        dh_prev = array_module(dh).empty_like(dh)
        gates = (dgi[:h], dgi[h : 2 * h], dgi[2 * h :], dgh[:h], dgh[h : 2 * h], dgh[2 * h :])
        kernel(dh, r, z, n, gh_n, h_prev, *gates, dh_prev)
        return dh_prev
    dn = (dh * (1 - z)) * (1 - n * n)
    dgi[2 * h :] = dn
    dgi[:h] = (dn * gh_n) * (r * (1 - r))
    dgi[h : 2 * h] = (dh * (h_prev - n)) * (z * (1 - z))
    dgh[: 2 * h] = dgi[: 2 * h]
    dgh[2 * h :] = dn * r
    return dh * z
