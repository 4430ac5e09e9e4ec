"""The LSTM: its step cell on ``Recurrent``'s time loop (``loop.py``), and every form of that
cell's math side by side.

[i f g o] = [s s tanh s](W_ih x_t + W_hh h + b); c' = f c + i g; h' = o tanh(c'), s the sigmoid.

- ``cell_forward`` / ``cell_backward``: the numpy reference, run on the CPU (float64, small
  batches, no numba) and on the GPU stand-in, and one CUDA kernel each way on a real GPU;
- ``cell_loops``: the cell after numpy's tanh of all four gates, in one numba pass each way,
  for the larger CPU batches the fused loop does not take;
- ``lstm_fused.py``: the whole float32 step (its own tanh) in one numba pass, without a mask.

The sigmoid blocks arrive halved (``Recurrent.gate_scale``), so every gate takes one tanh:
sigmoid(z) = 0.5 tanh(z / 2) + 0.5.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.backend import array_module
from nncli.engine import kernels
from nncli.engine.layer import Shape
from nncli.engine.layers.recurrent.loop import Recurrent
from nncli.engine.layers.recurrent.lstm_fused import FusedLoop
from nncli.engine.registry import LAYERS

# gate names end in _g: CuPy's kernels reserve ``i`` (the element's index) and ``n``
FORWARD = kernels.cuda(
    "lstm_forward",
    "T c",
    "T i_g, T f_g, T g_g, T o_g, T c_new, T tanh_c, T h",
    "i_g = tanh(i_g) * (T)0.5 + (T)0.5; f_g = tanh(f_g) * (T)0.5 + (T)0.5; g_g = tanh(g_g);"
    " o_g = tanh(o_g) * (T)0.5 + (T)0.5; c_new = f_g * c + i_g * g_g; tanh_c = tanh(c_new);"
    " h = o_g * tanh_c;",
)
BACKWARD = kernels.cuda(
    "lstm_backward",
    "T dh, T dc, T i_g, T f_g, T g_g, T o_g, T c, T tanh_c",
    "T di, T df, T dg, T d_o, T dc_prev",
    "T d = (((T)1 - tanh_c * tanh_c) * o_g) * dh + dc; di = (d * g_g) * (((T)1 - i_g) * i_g);"
    " df = (d * c) * (((T)1 - f_g) * f_g); dg = (d * i_g) * ((T)1 - g_g * g_g);"
    " d_o = (dh * tanh_c) * (((T)1 - o_g) * o_g); dc_prev = d * f_g;",
)


@LAYERS.register("lstm")
class LSTM(Recurrent):
    """[i f g o] = [s s tanh s](W_ih x_t + W_hh h + b); c' = f c + i g; h' = o tanh(c').

    s is the sigmoid. weight_ih (4H, F), weight_hh (4H, H), bias (4H,) = PyTorch's b_ih + b_hh,
    gate blocks in the order input, forget, cell, output.
    """

    examples: ClassVar = [
        ({"units": 3}, (4, 2)),
        ({"units": 2, "return_sequences": True}, (3, 2)),
        ({"units": 2, "return_sequences": True, "bidirectional": True}, (3, 2)),
    ]
    gates = 4
    sigmoid_gates = (0, 1, 3)
    states = 2
    ran_fused = False  # the last forward ran the fused float32 loop (lstm_fused.py)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        self.fused = FusedLoop()  # its work arrays are kept between batches
        return super()._build(in_shape, rng)

    def run(self, x: Any) -> Any:
        self.ran_fused = self.fused.usable(self, x)  # the backward pass takes the same path
        if not self.ran_fused:
            return super().run(x)
        self.time_mask, self.caches = None, []
        return self.fused.run(self, x)

    def run_backward(self, dy: Any) -> Any:
        return self.fused.run_backward(self, dy) if self.ran_fused else super().run_backward(dy)

    def step_forward(self, gi, gh, state, out=None):
        a, c, h = gh, state[1], self.units
        a += gi
        if not kernels.usable(a, c):  # numpy, and one kernel on a GPU
            return cell_forward(a, c, h, out)
        xp = self.backend.xp
        xp.tanh(a, out=a)  # one tanh for all four gates
        c_new = xp.empty_like(c)
        kernels.compiled(cell_loops)["forward"](a, c, c_new)  # gates' affine and c' (numba)
        tanh_c = xp.tanh(c_new)
        return (xp.multiply(a[3 * h :], tanh_c, out=out), c_new), (a, c, tanh_c)

    def step_backward(self, dstate, cache, dgi, dgh):
        dh, dc = dstate
        a, c, tanh_c = cache
        if not kernels.usable(a, dgi, dh, dc, c, tanh_c):  # numpy, or one kernel on a GPU
            return (None, cell_backward(dh, dc, cache, dgi, self.units))
        dc_prev = self.backend.xp.empty_like(c)
        kernels.compiled(cell_loops)["backward"](dh, dc, a, c, tanh_c, dgi, dc_prev)  # numba
        return (None, dc_prev)


# -- the cell over the gate blocks of a (4H, N) array, time-major: reference and GPU -------------
def cell_forward(a: Any, c: Any, h: int, out: Any = None) -> tuple[tuple, tuple]:
    """a = W_ih x + W_hh h_prev + b (scaled by 0.5 in the sigmoid blocks, as the layer's
    weights are) -> ((h', c'), (gates, c, tanh c')); the gates overwrite ``a``."""
    xp = array_module(a)
    i, f, g, o = a[:h], a[h : 2 * h], a[2 * h : 3 * h], a[3 * h :]
    kernel = kernels.gpu_kernel(a, FORWARD)
    if kernel is not None:
        c_new, tanh_c = xp.empty_like(c), xp.empty_like(c)
        out = xp.empty_like(c) if out is None else out
        kernel(c, i, f, g, o, c_new, tanh_c, out)
        return (out, c_new), (a, c, tanh_c)
    xp.tanh(a, out=a)
    for gate in (i, f, o):
        gate *= 0.5
        gate += 0.5
    c_new = f * c
    c_new += i * g
    tanh_c = xp.tanh(c_new)
    return (xp.multiply(o, tanh_c, out=out), c_new), (a, c, tanh_c)


def cell_backward(dh: Any, dc: Any, cache: tuple, dgi: Any, h: int) -> Any:
    """dL/d(gates) into ``dgi`` (4H, N) from dL/dh' and dL/dc' -> dL/dc."""
    a, c, tanh_c = cache
    i, f, g, o = a[:h], a[h : 2 * h], a[2 * h : 3 * h], a[3 * h :]
    blocks = (dgi[:h], dgi[h : 2 * h], dgi[2 * h : 3 * h], dgi[3 * h :])
    kernel = kernels.gpu_kernel(a, BACKWARD)
    if kernel is not None:
        dc_prev = array_module(c).empty_like(c)
        kernel(dh, dc, i, f, g, o, c, tanh_c, *blocks, dc_prev)
        return dc_prev
    d = (1 - tanh_c * tanh_c) * o * dh + dc
    blocks[0][...] = (d * g) * ((1 - i) * i)
    blocks[1][...] = (d * c) * ((1 - f) * f)
    blocks[2][...] = (d * i) * (1 - g * g)
    blocks[3][...] = (dh * tanh_c) * ((1 - o) * o)
    return d * f


# -- the cell in numba (CPU) ---------------------------------------------------------------------
def cell_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """``forward(t, c, c_out)``: after numpy's tanh of all four gates ``t`` (4H, N), the i, f, o
    blocks become 0.5 t + 0.5 (sigmoids), in place, and c_out = f c + i g (tanh stays numpy's:
    vectorised, where a compiled loop calls libm). ``backward(dh, dc, a, c, tanh_c, dgi,
    dc_prev)``: ``cell_backward``'s arithmetic, filling dgi and dc_prev."""

    @jit
    def forward(t, c, c_out):  # noqa: ANN001
        half = t.dtype.type(0.5)
        units = c.shape[0]
        for j in range(units):
            for n in range(c.shape[1]):
                i = t[j, n] * half + half
                f = t[units + j, n] * half + half
                o = t[3 * units + j, n] * half + half
                t[j, n], t[units + j, n], t[3 * units + j, n] = i, f, o
                c_out[j, n] = f * c[j, n] + i * t[2 * units + j, n]

    @jit
    def backward(dh, dc, a, c, tanh_c, dgi, dc_prev):  # noqa: ANN001
        one = a.dtype.type(1)
        units = c.shape[0]
        for j in range(units):
            for n in range(c.shape[1]):
                i, f = a[j, n], a[units + j, n]
                g, o = a[2 * units + j, n], a[3 * units + j, n]
                tc = tanh_c[j, n]
                d = (one - tc * tc) * o * dh[j, n] + dc[j, n]
                dgi[j, n] = d * g * ((one - i) * i)
                dgi[units + j, n] = d * c[j, n] * ((one - f) * f)
                dgi[2 * units + j, n] = d * i * (one - g * g)
                dgi[3 * units + j, n] = dh[j, n] * tc * ((one - o) * o)
                dc_prev[j, n] = d * f

    return {"forward": forward, "backward": backward}
