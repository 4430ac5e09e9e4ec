"""The optimizers' fused steps (``optimizers.py``): each whole update in one pass.

Adam/AdamW on the CPU as one numba loop (``adam_numba``: the arithmetic of ``Adam.update``'s
numpy passes, bit for bit); Adam/AdamW, SGD with momentum and RMSprop on a GPU as one CUDA
elementwise kernel each (``*_on_device``), whose numpy reference (the same arithmetic,
whole-array, in the order of the optimizer's own numpy code, so tests compare the two exactly)
runs on the strict stand-in. p and the state slots change in place. See ``kernels.py`` for how
they are loaded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nncli.backend import array_module
from nncli.engine import kernels

ADAM = kernels.cuda(
    "adam",
    "T g, T one_minus_b1, T b2, T one_minus_b2, T eps_root, T inv_step_root, T decay",
    "T p, T m, T v",
    "p = p * decay; m = m + (g - m) * one_minus_b1; v = v * b2 + (g * g) * one_minus_b2;"
    " p = p - m / ((sqrt(v) + eps_root) * inv_step_root);",
)
SGD_MOMENTUM = kernels.cuda(
    "sgd_momentum",
    "T g, T momentum, T lr, bool first, bool nesterov",
    "T p, T b",
    "b = first ? g : b * momentum + g; p = p - lr * (nesterov ? g + momentum * b : b);",
)
RMSPROP = kernels.cuda(
    "rmsprop",
    "T g, T rho, T one_minus_rho, T lr, T eps",
    "T p, T v",
    "v = v * rho + one_minus_rho * (g * g); p = p - lr * g / (sqrt(v) + eps);",
)


def _adam_scalars(beta1: float, beta2: float, lr: float, eps: float, t: int) -> tuple:
    """(1 - b1, b2, 1 - b2, eps sqrt(c2), 1 / (lr sqrt(c2) / c1)), c_i = 1 - b_i^t."""
    root = math.sqrt(1 - beta2**t)
    step = lr / (1 - beta1**t)
    return (1 - beta1, beta2, 1 - beta2, eps * root, 1 / (step * root))


def adam_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """Adam's step over flat arrays in one pass (numba)."""

    @jit
    def adam(p, g, m, v, a1, b2, a2, e2, k, decay):  # noqa: ANN001
        for j in range(p.size):
            p[j] *= decay
            gj = g[j]
            mj = m[j] + (gj - m[j]) * a1
            vj = v[j] * b2 + (gj * gj) * a2
            m[j] = mj
            v[j] = vj
            p[j] -= mj / ((np.sqrt(vj) + e2) * k)

    return {"adam": adam}


def adam_numba(p, g, m, v, beta1, beta2, learning_rate, epsilon, t, decay=1.0) -> None:  # noqa: ANN001
    """Adam's update of ``optimizers.Adam.update``, in place, in one pass; ``decay`` multiplies
    p first (AdamW's 1 - lr weight_decay; 1 for Adam leaves p exactly as it is)."""
    f = p.dtype.type
    scalars = _adam_scalars(beta1, beta2, learning_rate, epsilon, t)
    kernels.compiled(adam_loops)["adam"](
        p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
        *(f(s) for s in scalars), f(decay),
    )  # fmt: skip


def adam_on_device(p: Any, g: Any, m: Any, v: Any, beta1: float, beta2: float, lr: float,
                   eps: float, t: int, decay: float = 1.0) -> None:  # fmt: skip
    """Adam's step (AdamW's with ``decay`` = 1 - lr weight_decay) of ``Adam.update``."""
    scalars = (*_adam_scalars(beta1, beta2, lr, eps, t), decay)
    kernel = kernels.gpu_kernel(p, ADAM)
    if kernel is not None:
        kernel(g, *(p.dtype.type(s) for s in scalars), p, m, v)
        return
    if decay != 1.0:
        p *= decay
    m += (g - m) * scalars[0]
    v *= beta2
    v += (g * g) * scalars[2]
    p -= m / ((array_module(v).sqrt(v) + scalars[3]) * scalars[4])


def sgd_momentum_on_device(p: Any, g: Any, b: Any, momentum: float, lr: float, first: bool,
                           nesterov: bool) -> None:  # fmt: skip
    """SGD with momentum's step of ``SGD.update`` (``first``: the run's first step)."""
    kernel = kernels.gpu_kernel(p, SGD_MOMENTUM)
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


def rmsprop_on_device(p: Any, g: Any, v: Any, rho: float, lr: float, eps: float) -> None:
    """RMSprop's step of ``RMSprop.update``."""
    kernel = kernels.gpu_kernel(p, RMSPROP)
    if kernel is not None:
        f = p.dtype.type
        kernel(g, f(rho), f(1 - rho), f(lr), f(eps), p, v)
        return
    v *= rho
    v += (1 - rho) * (g * g)
    p -= lr * g / (v**0.5 + eps)
