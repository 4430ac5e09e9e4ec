"""The LSTM's time loop with the whole step fused (numba, float32, no padding mask): per step
one matrix product W_hh h and one pass for gates, cell state, tanh and h (forward), one pass
and one product back. numpy's tanh of float32 runs ~40 us for one step's 16k gates (W3), about
as long as the step's matrix product; the kernels' rational tanh vectorises (see
``kernel_loops.lstm_loops``). ``Recurrent.run`` / ``run_backward`` stay the reference, and
``tests/test_kernels.py`` compares the two."""

from __future__ import annotations

from typing import Any

import numpy as np

from nncli.engine import kernels


def usable(layer: Any, x: Any) -> bool:
    """No mask, float32 numpy arrays and the numba kernels there; records the choice so the
    backward pass takes the same path."""
    layer.fused = (
        layer.mask is None
        and x.dtype == np.float32
        and kernels.usable(layer.params["weight_hh"], layer.params["weight_ih"])
        and layer.gates * layer.units * x.shape[0] >= kernels.MIN_SIZE
    )
    return layer.fused


def run(layer: Any, x: Any) -> Any:
    """(N, T, F) -> (N, H) or (N, T, H), as ``Recurrent.run``."""
    n, steps, _ = x.shape
    p, units, s = layer.params, layer.units, layer.gate_scale
    size = layer.gates * units
    layer.x_fm = np.ascontiguousarray(x.transpose(1, 2, 0))  # (T, F, N)
    w_ih, w_hh, b = p["weight_ih"] * s[:, None], p["weight_hh"] * s[:, None], p["bias"] * s
    gi = np.matmul(w_ih, layer.x_fm)  # (T, 4H, N)
    gi += b[:, None]
    work = layer._reuse("_work", (steps, size + 2 * units, n), x.dtype)
    hs = layer._reuse("_hs", (steps + 1, units, n), x.dtype)  # hs[0] stays 0
    for t in range(steps):
        np.matmul(w_hh, hs[t], out=work[t, :size])
        kernels.lstm_step(work, t, gi[t], hs[t + 1])
    layer.hs, layer.time_mask, layer.caches = hs, None, []
    if not layer.return_sequences:
        return hs[steps].T.copy()
    return hs[1:].transpose(2, 0, 1).copy()


def run_backward(layer: Any, dy: Any) -> Any:
    """Backpropagation through time, as ``Recurrent.run_backward``."""
    steps, units, n = layer.hs.shape[0] - 1, layer.units, layer.hs.shape[2]
    dgi = layer._reuse("_dgi", (steps, layer.gates * units, n), layer.hs.dtype)
    w_hh_t = np.ascontiguousarray(layer.params["weight_hh"].T)  # (H, 4H)
    dc = np.zeros((units, n), dtype=dgi.dtype)
    buffers = (np.empty_like(dc), np.empty_like(dc))
    if layer.return_sequences:
        dy_t = dy.transpose(1, 2, 0)  # (T, H, N)
        dh = np.zeros_like(dc)
    else:
        dh = np.ascontiguousarray(dy.T)
    for t in reversed(range(steps)):
        if layer.return_sequences:
            dh = dh + dy_t[t]
        kernels.lstm_step_backward(layer._work, t, dh, dc, dgi[t])
        # two buffers in turn: this step's dh_prev must not overwrite the dh just read
        dh = np.matmul(w_hh_t, dgi[t], out=buffers[t % 2])
    return layer.parameter_grads(dgi, dgi)
