"""Layer normalisation (PyTorch's LayerNorm), with its fused numba loops a row; its backward
shares batchnorm's ``normalize_backward``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks, kernels
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers.normalization import normalize_backward
from nncli.engine.layers.recurrent.loop import WorkArrays
from nncli.engine.registry import LAYERS


@LAYERS.register("layernorm")
class LayerNorm(Layer):
    """y = weight (x - mean) / sqrt(var + epsilon) + bias over the last axis of each row.

    x (N, ..., F) -> y (N, ..., F); weight, bias (F,); var is the biased variance (PyTorch).
    """

    examples: ClassVar = [({}, (5,)), ({"epsilon": 1e-3}, (3, 4))]
    any_steps = True

    def __init__(self, epsilon: float = 1e-5):
        super().__init__(None)
        self.epsilon = checks.number("epsilon", epsilon, 0.0, low_open=True)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        self.params["weight"] = np.ones(in_shape[-1])
        self.params["bias"] = np.zeros(in_shape[-1])
        self.work = WorkArrays()  # the fused pass's xhat and inv, kept between batches
        return in_shape

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        return {"weight": (in_shape[-1],), "bias": (in_shape[-1],)}

    def output_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        xp, w, b = self.backend.xp, self.params["weight"], self.params["bias"]
        if kernels.usable(x, w, b):  # the CPU: one fused pass (numba)
            return self._forward_rows(x)
        centred = x - x.mean(axis=-1, keepdims=True)
        var = (centred * centred).mean(axis=-1, keepdims=True)
        self.inv = 1.0 / xp.sqrt(var + self.epsilon)
        self.xhat = centred * self.inv
        return self.xhat * w + b

    def _forward_rows(self, x: Any) -> Any:
        """``forward`` over rows (R, F) in one numba pass; xhat in a work array kept between
        batches (a fresh one costs page faults), inv (..., 1) as the numpy code leaves it."""
        features = x.shape[-1]
        rows = x.reshape(-1, features)
        self.xhat = self.work.get("xhat", x.shape, x.dtype, np)
        self.inv = self.work.get("inv", (*x.shape[:-1], 1), x.dtype, np)
        y = np.empty_like(x)
        kernels.compiled(layernorm_loops)["forward"](
            rows, self.params["weight"], self.params["bias"], rows.dtype.type(self.epsilon),
            self.xhat.reshape(rows.shape), self.inv.reshape(-1), y.reshape(rows.shape),
        )  # fmt: skip
        return y

    def backward(self, dy: Any) -> Any:
        w, g = self.params["weight"], self.grads
        if type(dy) is np.ndarray and dy.dtype == self.xhat.dtype:
            dy = np.ascontiguousarray(dy)
            if kernels.usable(dy, self.xhat, self.inv, w, g["weight"], g["bias"]):
                dx = np.empty_like(dy)
                features = dy.shape[-1]
                kernels.compiled(layernorm_loops)["backward"](
                    dy.reshape(-1, features), self.xhat.reshape(-1, features),
                    self.inv.reshape(-1), w, g["weight"], g["bias"], dx.reshape(-1, features),
                )  # fmt: skip
                return dx
        rows = tuple(range(dy.ndim - 1))
        g["weight"][...] = (dy * self.xhat).sum(axis=rows)
        g["bias"][...] = dy.sum(axis=rows)
        dxhat = dy * w
        return normalize_backward(dxhat, self.xhat, self.inv, None, dy.shape[-1], (-1,))

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "epsilon": self.epsilon}


def layernorm_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """Layer norm over each row of x (R, F), for ``numba.njit``, in ``LayerNorm``'s numpy
    arithmetic: ``forward`` one pass a row (mean, variance, xhat, y; fills xhat, inv (R,) and
    y), ``backward`` one pass a row (its two sums, then dx) that also adds up the parameter
    gradients (in float64), against numpy's ~10 passes and fresh arrays each way."""

    @jit
    def forward(x, weight, bias, eps, xhat, inv, y):  # noqa: ANN001
        rows, cols = x.shape
        n, one = x.dtype.type(cols), x.dtype.type(1)  # float32 stays float32 throughout
        for r in range(rows):
            total = x.dtype.type(0)
            for c in range(cols):
                total += x[r, c]
            mean = total / n
            q = x.dtype.type(0)
            for c in range(cols):
                d = x[r, c] - mean
                q += d * d
            inv[r] = one / np.sqrt(q / n + eps)
            for c in range(cols):
                h = (x[r, c] - mean) * inv[r]
                xhat[r, c] = h
                y[r, c] = h * weight[c] + bias[c]

    @jit
    def backward(dy, xhat, inv, weight, dweight, dbias, dx):  # noqa: ANN001
        rows, cols = dy.shape
        n = dy.dtype.type(cols)
        sw = np.zeros(cols)
        sb = np.zeros(cols)
        for r in range(rows):
            sd = dy.dtype.type(0)
            sdx = dy.dtype.type(0)
            for c in range(cols):
                g = dy[r, c]
                sw[c] += g * xhat[r, c]
                sb[c] += g
                d = g * weight[c]
                sd += d
                sdx += d * xhat[r, c]
            mean_d, mean_dx = sd / n, sdx / n
            for c in range(cols):
                dx[r, c] = inv[r] * (dy[r, c] * weight[c] - mean_d - xhat[r, c] * mean_dx)
        for c in range(cols):
            dweight[c] = sw[c]
            dbias[c] = sb[c]

    return {"forward": forward, "backward": backward}
