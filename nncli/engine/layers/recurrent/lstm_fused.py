"""The LSTM's time loop with the whole step fused (numba, float32, no padding mask): per step
one matrix product W_hh h and one pass for gates, cell state, tanh and h (forward), one pass
and one product back. numpy's tanh of float32 runs ~40 us for one step's 16k gates (W3), about
as long as the step's matrix product; the loops' rational tanh vectorises (``step_loops``
below, loaded by ``kernels.py``). ``Recurrent.run`` / ``run_backward`` with the LSTM's cell
(``lstm.py``) stay the reference, and ``tests/engine/test_numba_kernels.py`` compares the two."""

from __future__ import annotations

from typing import Any

import numpy as np

from nncli.engine import kernels
from nncli.engine.layers.dense import bias_sum
from nncli.engine.layers.recurrent.loop import Recurrent, WorkArrays


class FusedLoop:
    """One LSTM layer's fused loop: its work arrays, kept between batches, and what its
    backward pass needs from the forward one. Reads the layer's parameters and settings."""

    def __init__(self) -> None:
        self.work = WorkArrays()
        self.x_cols: Any = None  # x as (F, T N)
        self.hs: Any = None  # h after each step (H, T, N)

    @staticmethod
    def usable(layer: Recurrent, x: Any) -> bool:
        """No mask, float32 numpy arrays, the numba kernels there and a step large enough."""
        return (
            layer.mask is None
            and x.dtype == np.float32
            and kernels.usable(layer.params["weight_hh"], layer.params["weight_ih"])
            and layer.gates * layer.units * x.shape[0] >= kernels.MIN_SIZE
        )

    def run(self, layer: Recurrent, x: Any) -> Any:
        """(N, T, F) -> (N, H) or (N, T, H), as ``Recurrent.run``. Time sits first in the work
        array (T, 6H, N), whose rows 0-4H start as every step's W_ih x_t, one product for all
        steps before the loop: each step then reads one contiguous block, as the hardware
        prefetches it. x is kept as (F, T N) and the states as (H, T, N): each step's slice is a
        BLAS matrix with a longer row stride, and the weight gradients need no copy."""
        n, steps, features = x.shape
        p, units, s = layer.params, layer.units, layer.gate_scale
        size = layer.gates * units
        self.x_cols = np.ascontiguousarray(x.transpose(2, 1, 0)).reshape(features, steps * n)
        w_ih, w_hh, b = p["weight_ih"] * s[:, None], p["weight_hh"] * s[:, None], p["bias"] * s
        work = self.work.get("steps", (steps, size + 2 * units, n), x.dtype, np)
        x_steps = self.x_cols.reshape(features, steps, n).transpose(1, 0, 2)  # (T, F, N) view
        np.matmul(w_ih, x_steps, out=work[:, :size])  # every step's input: one batched product
        hs = self.work.get("hs", (units, steps, n), x.dtype, np)  # h after each step
        hh = self.work.get("hh", (size, n), x.dtype, np)  # W_hh h of the step
        hh[...] = 0  # the zero state before step 0
        step = kernels.compiled(step_loops)["forward"]
        for t in range(steps):
            if t:
                np.matmul(w_hh, hs[:, t - 1], out=hh)
            step(work, t, hh, b, hs)  # gates, c, tanh(c) into work[t], h into hs[:, t]
        self.hs = hs
        if not layer.return_sequences:
            return hs[:, -1].T.copy()
        return hs.transpose(2, 1, 0).copy()

    def run_backward(self, layer: Recurrent, dy: Any) -> Any:
        """Backpropagation through time, as ``Recurrent.run_backward``."""
        hs = self.hs
        units, steps, n = hs.shape
        dgi = self.work.get("dgi", (layer.gates * units, steps, n), hs.dtype, np)
        work = self.work.arrays["steps"]
        w_hh_t = np.ascontiguousarray(layer.params["weight_hh"].T)  # (H, 4H)
        dc = np.zeros((units, n), dtype=dgi.dtype)
        buffers = (np.empty_like(dc), np.empty_like(dc))
        if layer.return_sequences:
            dy_t = dy.transpose(1, 2, 0)  # (T, H, N)
            dh = np.zeros_like(dc)
        else:
            dh = np.ascontiguousarray(dy.T)
        step_back = kernels.compiled(step_loops)["backward"]
        for t in reversed(range(steps)):
            if layer.return_sequences:
                dh = dh + dy_t[t]
            step_back(work, t, dh, dc, dgi)  # dgi[:, t]; dc becomes dL/dc_{t-1}
            # two buffers in turn: this step's dh_prev must not overwrite the dh just read
            dh = np.matmul(w_hh_t, dgi[:, t], out=buffers[t % 2])
        return self.parameter_grads(layer, dgi)

    def parameter_grads(self, layer: Recurrent, dgi: Any) -> Any:
        """One product per weight over all steps; h before step 0 is zero, so W_hh's sum starts
        at step 1 (slices of the middle axis, still BLAS matrices: no copies)."""
        p, grads = layer.params, layer.grads
        size, steps, n = dgi.shape
        cols = dgi.reshape(size, steps * n)
        np.matmul(cols, self.x_cols.T, out=grads["weight_ih"])
        hs = self.hs
        later = dgi[:, 1:].reshape(size, -1)
        np.matmul(later, hs[:, :-1].reshape(hs.shape[0], -1).T, out=grads["weight_hh"])
        bias_sum(cols.T, grads["bias"], "cpu")
        if layer.skip_input_grad:
            return None
        dx = (p["weight_ih"].T @ cols).reshape(-1, steps, n)  # (F, T, N)
        return np.ascontiguousarray(dx.transpose(2, 1, 0))


# tanh on float32 as a rational function (the minimax fit Eigen and PyTorch's CPU kernels use):
# within 4e-7 of the exact value, and a loop of it vectorises, where one calling libm does not.
# Module globals, so numba freezes them as constants and can cache the kernels that use them.
_HI, _LO = np.float32(7.90531110763549805), np.float32(-7.90531110763549805)
_P13, _P11, _P9 = (
    np.float32(-2.76076847742355e-16),
    np.float32(2.00018790482477e-13),
    np.float32(-8.60467152213735e-11),
)
_P7, _P5 = np.float32(5.12229709037114e-08), np.float32(1.48572235717979e-05)
_P3, _P1 = np.float32(6.37261928875436e-04), np.float32(4.89352455891786e-03)
_Q6, _Q4 = np.float32(1.19825839466702e-06), np.float32(1.18534705686654e-04)
_Q2, _Q0 = np.float32(2.26843463243900e-03), np.float32(4.89352518554385e-03)


def _tanh(x):  # noqa: ANN001, ANN202
    x = _HI if x > _HI else x  # comparisons keep a NaN a NaN
    x = _LO if x < _LO else x
    x2 = x * x
    p = x * (x2 * (x2 * (x2 * (x2 * (x2 * (x2 * _P13 + _P11) + _P9) + _P7) + _P5) + _P3) + _P1)
    return p / (x2 * (x2 * (x2 * _Q6 + _Q4) + _Q2) + _Q0)


_jit_tanh: Any = None  # ``_tanh`` compiled to inline, set by ``step_loops``


def step_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """The LSTM time step on float32, whole, in one pass each way, over the step's slice of
    a work array (T, 6H, N) (one array written, so the loop vectorises): rows 0-4H hold
    W_ih x_t (halved sigmoid blocks, as ``Recurrent.run`` makes them) and become the gates
    i f g o, rows 4H-5H the cell state c, rows 5H-6H tanh(c). c before step 0 is zero."""
    global _jit_tanh
    _jit_tanh = inline(_tanh)

    @jit
    def forward(work, t, hh, b, hs):  # noqa: ANN001
        """Rows 0-4H of work[t] hold W_ih x_t, hh (4H, N) W_hh h_{t-1}, b (4H,) the bias;
        h of step t into hs (H, T, N)."""
        units, half = hs.shape[0], np.float32(0.5)
        u2, u3 = 2 * units, 3 * units
        for j in range(units):
            for n in range(hs.shape[2]):
                i = _jit_tanh(hh[j, n] + (work[t, j, n] + b[j])) * half + half
                f = _jit_tanh(hh[units + j, n] + (work[t, units + j, n] + b[units + j]))
                f = f * half + half
                g = _jit_tanh(hh[u2 + j, n] + (work[t, u2 + j, n] + b[u2 + j]))
                o = _jit_tanh(hh[u3 + j, n] + (work[t, u3 + j, n] + b[u3 + j])) * half + half
                c = i * g
                if t > 0:
                    c += f * work[t - 1, 4 * units + j, n]
                tc = _jit_tanh(c)
                work[t, j, n], work[t, units + j, n] = i, f
                work[t, 2 * units + j, n], work[t, 3 * units + j, n] = g, o
                work[t, 4 * units + j, n], work[t, 5 * units + j, n] = c, tc
                hs[j, t, n] = o * tc

    @jit
    def backward(work, t, dh, dc, dgi):  # noqa: ANN001
        """dgi[:, t] = dL/d(gate sums) of step t, dgi (4H, T, N); dc (in: dL/dc_t, out:
        dL/dc_{t-1}) in place."""
        units, one = dh.shape[0], np.float32(1)
        for j in range(units):
            for n in range(dh.shape[1]):
                i, f = work[t, j, n], work[t, units + j, n]
                g, o = work[t, 2 * units + j, n], work[t, 3 * units + j, n]
                tc = work[t, 5 * units + j, n]
                c = work[t - 1, 4 * units + j, n] if t > 0 else np.float32(0)
                d = (one - tc * tc) * o * dh[j, n] + dc[j, n]
                dgi[j, t, n] = d * g * ((one - i) * i)
                dgi[units + j, t, n] = d * c * ((one - f) * f)
                dgi[2 * units + j, t, n] = d * i * (one - g * g)
                dgi[3 * units + j, t, n] = dh[j, n] * tc * ((one - o) * o)
                dc[j, n] = d * f

    return {"forward": forward, "backward": backward}
