"""The LSTM's time loop with the whole step fused (numba, float32, no padding mask): per step
one matrix product W_hh h and one pass for gates, cell state, tanh and h (forward), one pass
and one product back. numpy's tanh of float32 runs ~40 us for one step's 16k gates (W3), about
as long as the step's matrix product; the kernels' rational tanh vectorises (see
``kernel_loops.lstm_loops``). ``Recurrent.run`` / ``run_backward`` stay the reference, and
``tests/engine/test_numba_kernels.py`` compares the two."""

from __future__ import annotations

from typing import Any

import numpy as np

from nncli.engine import kernels
from nncli.engine.dense import bias_sum


def usable(layer: Any, x: Any) -> bool:
    """No mask, float32 numpy arrays and the numba kernels there; records the choice so the
    backward pass takes the same path."""
    layer.ran_fused = (
        layer.mask is None
        and x.dtype == np.float32
        and kernels.usable(layer.params["weight_hh"], layer.params["weight_ih"])
        and layer.gates * layer.units * x.shape[0] >= kernels.MIN_SIZE
    )
    return layer.ran_fused


def run(layer: Any, x: Any) -> Any:
    """(N, T, F) -> (N, H) or (N, T, H), as ``Recurrent.run``. Time sits in the middle
    (x (F, T N), states (H, T, N), gradients (4H, T, N)): each step's slice is a BLAS matrix
    with a longer row stride, and every product over all steps needs no copy."""
    n, steps, features = x.shape
    p, units, s = layer.params, layer.units, layer.gate_scale
    size = layer.gates * units
    layer.x_cols = np.ascontiguousarray(x.transpose(2, 1, 0)).reshape(features, steps * n)
    w_ih, w_hh, b = p["weight_ih"] * s[:, None], p["weight_hh"] * s[:, None], p["bias"] * s
    gi = (w_ih @ layer.x_cols).reshape(size, steps, n)  # every step's input: one product
    gi += b[:, None, None]
    work = layer._reuse("_work", (steps, size + 2 * units, n), x.dtype)
    hs = layer._reuse("_hs_fused", (units, steps, n), x.dtype)  # h after each step
    h = layer._reuse("_h0", (units, n), x.dtype)  # the zero state before step 0
    for t in range(steps):
        np.matmul(w_hh, h, out=work[t, :size])
        kernels.lstm_step(work, t, gi, hs)
        h = hs[:, t]
    layer.hs_fused, layer.time_mask, layer.caches = hs, None, []
    if not layer.return_sequences:
        return hs[:, -1].T.copy()
    return hs.transpose(2, 1, 0).copy()


def run_backward(layer: Any, dy: Any) -> Any:
    """Backpropagation through time, as ``Recurrent.run_backward``."""
    hs = layer.hs_fused
    units, steps, n = hs.shape
    dgi = layer._reuse("_dgi_fused", (layer.gates * units, steps, n), hs.dtype)
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
        kernels.lstm_step_backward(layer._work, t, dh, dc, dgi)
        # two buffers in turn: this step's dh_prev must not overwrite the dh just read
        dh = np.matmul(w_hh_t, dgi[:, t], out=buffers[t % 2])
    return _parameter_grads(layer, dgi)


def _parameter_grads(layer: Any, dgi: Any) -> Any:
    """One product per weight over all steps; h before step 0 is zero, so W_hh's sum starts
    at step 1 (slices of the middle axis, still BLAS matrices: no copies)."""
    p, grads = layer.params, layer.grads
    size, steps, n = dgi.shape
    cols = dgi.reshape(size, steps * n)
    np.matmul(cols, layer.x_cols.T, out=grads["weight_ih"])
    hs = layer.hs_fused
    later = dgi[:, 1:].reshape(size, -1)
    np.matmul(later, hs[:, :-1].reshape(hs.shape[0], -1).T, out=grads["weight_hh"])
    bias_sum(cols.T, grads["bias"], "cpu")
    if layer.skip_input_grad:
        return None
    dx = (p["weight_ih"].T @ cols).reshape(-1, steps, n)  # (F, T, N)
    return np.ascontiguousarray(dx.transpose(2, 1, 0))
