"""Fused GPU kernels for the updates that are many small launches on a GPU: the optimizer steps
(Adam/AdamW, SGD with momentum, RMSprop) and the LSTM and GRU cells' gate math.

Each function here runs on device arrays (``on_device``): on a real GPU as one
``cupy.ElementwiseKernel`` pass (built by ``backend.elementwise`` from the CUDA source below),
and on the strict stand-in (``NNCLI_FAKE_GPU``) as its numpy reference: the same arithmetic,
whole-array, in the order the engine's own unfused code uses (``optimizers.py``,
``recurrent.py``), so that tests can compare the two exactly. The CPU keeps the engine's path
(in place, numba where it pays, ``kernels.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nncli.backend import array_module, elementwise, on_real_gpu

# name -> (in_params, out_params, CUDA operation); outputs are read before they are written
# where they hold the step's input (a parameter, a state slot, a gate's pre-activation)
KERNELS: dict[str, tuple[str, str, str]] = {
    "adam": (
        "T g, T one_minus_b1, T b2, T one_minus_b2, T eps_root, T inv_step_root, T decay",
        "T p, T m, T v",
        "p = p * decay; m = m + (g - m) * one_minus_b1; v = v * b2 + (g * g) * one_minus_b2;"
        " p = p - m / ((sqrt(v) + eps_root) * inv_step_root);",
    ),
    "sgd_momentum": (
        "T g, T momentum, T lr, bool first, bool nesterov",
        "T p, T b",
        "b = first ? g : b * momentum + g; p = p - lr * (nesterov ? g + momentum * b : b);",
    ),
    "rmsprop": (
        "T g, T rho, T one_minus_rho, T lr, T eps",
        "T p, T v",
        "v = v * rho + one_minus_rho * (g * g); p = p - lr * g / (sqrt(v) + eps);",
    ),
    # gate names end in _g: CuPy's kernels reserve ``i`` (the element's index) and ``n``
    "lstm_forward": (
        "T c",
        "T i_g, T f_g, T g_g, T o_g, T c_new, T tanh_c, T h",
        "i_g = tanh(i_g) * (T)0.5 + (T)0.5; f_g = tanh(f_g) * (T)0.5 + (T)0.5; g_g = tanh(g_g);"
        " o_g = tanh(o_g) * (T)0.5 + (T)0.5; c_new = f_g * c + i_g * g_g; tanh_c = tanh(c_new);"
        " h = o_g * tanh_c;",
    ),
    "lstm_backward": (
        "T dh, T dc, T i_g, T f_g, T g_g, T o_g, T c, T tanh_c",
        "T di, T df, T dg, T d_o, T dc_prev",
        "T d = (((T)1 - tanh_c * tanh_c) * o_g) * dh + dc; di = (d * g_g) * (((T)1 - i_g) * i_g);"
        " df = (d * c) * (((T)1 - f_g) * f_g); dg = (d * i_g) * ((T)1 - g_g * g_g);"
        " d_o = (dh * tanh_c) * (((T)1 - o_g) * o_g); dc_prev = d * f_g;",
    ),
    "gru_forward": (
        "T gi_r, T gi_z, T gi_n, T gh_n, T h_prev",
        "T r_g, T z_g, T n_g, T h_new",
        "r_g = tanh(r_g + gi_r) * (T)0.5 + (T)0.5; z_g = tanh(z_g + gi_z) * (T)0.5 + (T)0.5;"
        " n_g = tanh(r_g * gh_n + gi_n); h_new = (h_prev - n_g) * z_g + n_g;",
    ),
    "gru_backward": (
        "T dh, T r_g, T z_g, T n_g, T gh_n, T h_prev",
        "T dgi_r, T dgi_z, T dgi_n, T dgh_r, T dgh_z, T dgh_n, T dh_prev",
        "T dn = (dh * ((T)1 - z_g)) * ((T)1 - n_g * n_g); dgi_n = dn;"
        " dgi_r = (dn * gh_n) * (r_g * ((T)1 - r_g));"
        " dgi_z = (dh * (h_prev - n_g)) * (z_g * ((T)1 - z_g));"
        " dgh_r = dgi_r; dgh_z = dgi_z; dgh_n = dn * r_g; dh_prev = dh * z_g;",
    ),
}


def on_device(x: Any) -> bool:
    """True for a GPU array (CuPy's or the stand-in's): the fused path; numpy keeps its own."""
    return not isinstance(x, (np.ndarray, np.generic))


def _kernel(x: Any, name: str) -> Any:
    """The compiled kernel on a real GPU, else None (the reference runs)."""
    return elementwise(name, *KERNELS[name]) if on_real_gpu(x) else None


# -- optimizer steps: p and the slots change in place --------------------------------------------
def adam(p: Any, g: Any, m: Any, v: Any, beta1: float, beta2: float, lr: float, eps: float,
         t: int, decay: float = 1.0) -> None:  # fmt: skip
    """Adam's step (AdamW's with ``decay`` = 1 - lr weight_decay) of ``Adam.update``."""
    root = math.sqrt(1 - beta2**t)
    step = lr / (1 - beta1**t)
    scalars = (1 - beta1, beta2, 1 - beta2, eps * root, 1 / (step * root), decay)
    kernel = _kernel(p, "adam")
    if kernel is not None:
        kernel(g, *(p.dtype.type(s) for s in scalars), p, m, v)
        return
    if decay != 1.0:
        p *= decay
    m += (g - m) * scalars[0]
    v *= beta2
    v += (g * g) * scalars[2]
    p -= m / ((array_module(v).sqrt(v) + scalars[3]) * scalars[4])


def sgd_momentum(p: Any, g: Any, b: Any, momentum: float, lr: float, first: bool,
                 nesterov: bool) -> None:  # fmt: skip
    """SGD with momentum's step of ``SGD.update`` (``first``: the run's first step)."""
    kernel = _kernel(p, "sgd_momentum")
    if kernel is not None:
        f = p.dtype.type
        kernel(g, f(momentum), f(lr), bool(first), bool(nesterov), p, b)
        return
    if first:
        b[...] = g
    else:
        b *= momentum
        b += g
    p -= lr * (g + momentum * b if nesterov else b)


def rmsprop(p: Any, g: Any, v: Any, rho: float, lr: float, eps: float) -> None:
    """RMSprop's step of ``RMSprop.update``."""
    kernel = _kernel(p, "rmsprop")
    if kernel is not None:
        f = p.dtype.type
        kernel(g, f(rho), f(1 - rho), f(lr), f(eps), p, v)
        return
    v *= rho
    v += (1 - rho) * (g * g)
    p -= lr * g / (v**0.5 + eps)


# -- recurrent cells: the gate blocks of a (G*H, N) array, time-major ---------------------------
def lstm_forward(a: Any, c: Any, h: int, out: Any = None) -> tuple[tuple, tuple]:
    """a = W_ih x + W_hh h_prev + b (scaled by 0.5 in the sigmoid blocks, as the layer's
    weights are) -> ((h', c'), (gates, c, tanh c')); the gates overwrite ``a``."""
    xp = array_module(a)
    i, f, g, o = a[:h], a[h : 2 * h], a[2 * h : 3 * h], a[3 * h :]
    kernel = _kernel(a, "lstm_forward")
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


def lstm_backward(dh: Any, dc: Any, cache: tuple, dgi: Any, h: int) -> Any:
    """dL/d(gates) into ``dgi`` (G*H, N) from dL/dh' and dL/dc' -> dL/dc."""
    a, c, tanh_c = cache
    i, f, g, o = a[:h], a[h : 2 * h], a[2 * h : 3 * h], a[3 * h :]
    blocks = (dgi[:h], dgi[h : 2 * h], dgi[2 * h : 3 * h], dgi[3 * h :])
    kernel = _kernel(a, "lstm_backward")
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


def gru_forward(gi: Any, gh: Any, h_prev: Any, h: int, out: Any = None) -> tuple[tuple, tuple]:
    """gi = W_ih x + b_ih, gh = W_hh h_prev + b_hh (scaled by 0.5 in the r and z blocks) ->
    ((h',), (rz, n, gh_n, h_prev)); r and z overwrite ``gh[:2h]``."""
    xp = array_module(gh)
    rz, gh_n = gh[: 2 * h], gh[2 * h :]
    kernel = _kernel(gh, "gru_forward")
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


def gru_backward(dh: Any, cache: tuple, dgi: Any, dgh: Any, h: int) -> Any:
    """dL/d(gates) into ``dgi`` and ``dgh`` (3H, N) from dL/dh' -> dL/dh (through z)."""
    rz, n, gh_n, h_prev = cache
    r, z = rz[:h], rz[h:]
    kernel = _kernel(dh, "gru_backward")
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
