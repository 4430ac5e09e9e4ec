"""Batch and layer normalisation (PyTorch's BatchNorm1d/2d and LayerNorm).

Training-mode batchnorm over rows (N, F) or (N, T, F) without a mask runs as two fused passes
each way on the CPU (numba: ``batchnorm_loops`` below the layer, loaded by ``kernels.py``); the
numpy code of ``BatchNorm.forward`` and ``backward`` is the reference and every other path."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.backend import array_module
from nncli.engine import checks, kernels
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers.recurrent.loop import WorkArrays
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError


def _normalize_backward(
    dxhat: Any, xhat: Any, inv: Any, w: Any, n: Any, axes: tuple, batch_sum: Any = None
) -> Any:
    """dL/dx of xhat = (x - mu) inv, mu and var the (w-weighted) means over ``axes`` of n rows:
    dx = inv (dxhat - w sum(dxhat) / n - w xhat sum(dxhat xhat) / n); ``batch_sum`` adds the
    sums of the other processes holding the rest of the batch."""
    sum_d = dxhat.sum(axis=axes, keepdims=True)
    sum_dx = (dxhat * xhat).sum(axis=axes, keepdims=True)
    if batch_sum is not None:
        sum_d, sum_dx = _summed(batch_sum, sum_d, sum_dx)
    mean_d, mean_dx = sum_d / n, sum_dx / n
    if w is None:
        return inv * (dxhat - mean_d - xhat * mean_dx)
    return inv * (dxhat - w * (mean_d + xhat * mean_dx))


def _summed(batch_sum: Any, *parts: Any) -> list[Any]:
    """Each of the arrays ``parts`` summed over every process, in one call (in float64)."""
    xp = array_module(parts[0])
    flat = [p.astype(xp.float64).reshape(-1) for p in parts]
    total = batch_sum(xp.concatenate(flat))
    out, start = [], 0
    for p, f in zip(parts, flat, strict=True):
        out.append(total[start : start + f.size].reshape(p.shape).astype(p.dtype))
        start += f.size
    return out


@LAYERS.register("batchnorm")
class BatchNorm(Layer):
    """y = weight (x - mean) / sqrt(var + epsilon) + bias, per feature or channel.

    x (N, F): each feature over the batch; (N, C, H, W): each channel over N, H, W; (N, T, F):
    each feature over N and the real steps T (a padding mask leaves padded steps out of the
    statistics). weight, bias (C,); state running_mean, running_var (C,).
    Training uses the batch's mean and biased variance and moves the running statistics by
    ``momentum``: new = (1 - m) old + m batch, with the unbiased variance (as PyTorch);
    inference uses the running statistics, and so does a frozen batchnorm (``trainable:
    false``) in training, leaving them as they are (Keras's frozen BatchNormalization).
    """

    examples: ClassVar = [({}, (4,)), ({"momentum": 0.2}, (2, 3, 3)), ({}, (3, 4))]

    def __init__(self, momentum: float = 0.1, epsilon: float = 1e-5):
        super().__init__(None)
        self.momentum = checks.number("momentum", momentum, 0.0, 1.0)
        self.epsilon = checks.number("epsilon", epsilon, 0.0, low_open=True)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        (channels,) = self.array_shapes(in_shape)["weight"]
        self.axes = {1: (0,), 2: (0, 1), 3: (0, 2, 3)}[len(in_shape)]
        self.broadcast = {1: (1, -1), 2: (1, 1, -1), 3: (1, -1, 1, 1)}[len(in_shape)]
        self.any_steps = len(in_shape) == 2  # sequences: the steps differ between batches
        self.params["weight"] = np.ones(channels)
        self.params["bias"] = np.zeros(channels)
        self.state["running_mean"] = np.zeros(channels)
        self.state["running_var"] = np.ones(channels)
        return in_shape

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        channels = self.output_shape(in_shape)[0 if len(in_shape) == 3 else -1]
        return {"weight": (channels,), "bias": (channels,)}

    def state_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        shapes = self.param_shapes(in_shape)
        return {"running_mean": shapes["weight"], "running_var": shapes["weight"]}

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) not in (1, 2, 3):
            raise ShapeError(f"{self.label} expects (N, F), (N, T, F) or (N, C, H, W) input")
        return tuple(in_shape)

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        xp, shape = self.backend.xp, self.broadcast
        weight, bias = self.params["weight"].reshape(shape), self.params["bias"].reshape(shape)
        self.training = training = training and self.trainable  # frozen: running statistics
        if not training:
            self.inv = 1.0 / xp.sqrt(self.state["running_var"].reshape(shape) + self.epsilon)
            self.xhat = (x - self.state["running_mean"].reshape(shape)) * self.inv
            return self.xhat * weight + bias
        self.w = self.real_steps(x, x.dtype)  # ones at real steps
        rows = self.w is None and len(self.in_shape) < 3 and self.batch_sum is None
        if rows and kernels.usable(x, weight, bias):  # one process's whole batch, on the CPU
            return self._forward_rows(x)
        xw = x if self.w is None else x * self.w
        # values per channel; with a mask the real steps (a device scalar: no host sync)
        n = x.size // self.params["weight"].size
        self.n = max(n, 1) if self.w is None else xp.maximum(self.w.sum(), 1.0)
        total = xw.sum(axis=self.axes, keepdims=True)
        if self.batch_sum is not None:  # the global batch's: sum and count, then centred squares
            count = xp.asarray(float(n) if self.w is None else self.w.sum())
            total, count = _summed(self.batch_sum, total, count)
            self.n = xp.maximum(count, 1.0)
        mean = total / self.n
        centred = x - mean
        sq = centred * centred if self.w is None else centred * centred * self.w
        sq = sq.sum(axis=self.axes, keepdims=True)
        if self.batch_sum is not None:
            (sq,) = _summed(self.batch_sum, sq)
        var = sq / self.n
        self.inv = 1.0 / xp.sqrt(var + self.epsilon)
        self.xhat = centred * self.inv
        self._update_running(mean.reshape(-1), var.reshape(-1))
        return self.xhat * weight + bias

    def _forward_rows(self, x: Any) -> Any:
        """(N, F) or (N, T, F) as rows (R, F), in two fused passes (numba); the numpy code of
        ``forward`` is the reference. Leaves what the numpy ``backward`` needs too."""
        features = x.shape[-1]
        rows = x.reshape(-1, features)
        self.xhat, y = np.empty_like(x), np.empty_like(x)
        stats = np.empty((2, features))
        inv = kernels.compiled(batchnorm_loops)["forward"](
            rows, self.params["weight"], self.params["bias"], rows.dtype.type(self.epsilon),
            self.xhat.reshape(rows.shape), y.reshape(rows.shape), stats,
        )  # fmt: skip
        self.inv, self.n = inv.reshape(self.broadcast), rows.shape[0]
        self._update_running(stats[0], stats[1])
        return y

    def _backward_rows(self, dy: Any) -> Any:
        features = dy.shape[-1]
        dx = np.empty_like(dy)
        kernels.compiled(batchnorm_loops)["backward"](
            dy.reshape(-1, features), self.xhat.reshape(-1, features), self.inv.reshape(-1),
            self.params["weight"], self.grads["weight"], self.grads["bias"],
            dx.reshape(-1, features),
        )  # fmt: skip
        return dx

    def _update_running(self, mean: Any, var: Any) -> None:
        m, n = self.momentum, self.n
        below = max(n - 1, 1) if isinstance(n, int) else self.backend.xp.maximum(n - 1, 1.0)
        unbiased = var * (n / below)
        for key, batch in (("running_mean", mean), ("running_var", unbiased)):
            self.state[key] *= 1 - m
            self.state[key] += m * batch

    def backward(self, dy: Any) -> Any:
        shape = self.broadcast
        fused = self.training and self.w is None and len(self.in_shape) < 3
        fused = fused and self.batch_sum is None  # shared batches sum across processes
        fused = fused and type(dy) is np.ndarray and dy.dtype == self.xhat.dtype
        if fused and kernels.usable(self.xhat, self.grads["weight"], self.grads["bias"]):
            return self._backward_rows(np.ascontiguousarray(dy))  # dy may be a sliced dx
        self.grads["weight"][...] = (dy * self.xhat).sum(axis=self.axes)
        self.grads["bias"][...] = dy.sum(axis=self.axes)
        dxhat = dy * self.params["weight"].reshape(shape)
        if not self.training:
            return dxhat * self.inv
        return _normalize_backward(
            dxhat, self.xhat, self.inv, self.w, self.n, self.axes, self.batch_sum
        )

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "momentum": self.momentum, "epsilon": self.epsilon}


def batchnorm_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """Training-mode batchnorm on x (R, C), each column over its R rows, for ``numba.njit``:
    two passes forward (statistics in float64; then xhat and y), two backward (sums; then dx),
    against numpy's ~20. ``forward`` fills xhat, y and stats (2, C) float64 (the batch mean and
    biased variance) and returns 1 / sqrt(var + epsilon) (C,); ``backward`` fills the parameter
    gradients and dx."""

    @jit
    def forward(x, weight, bias, eps, xhat, y, stats):  # noqa: ANN001
        rows, cols = x.shape
        s = np.zeros(cols)
        for r in range(rows):
            for c in range(cols):
                s[c] += x[r, c]
        mean = np.empty(cols, dtype=x.dtype)
        for c in range(cols):
            mean[c] = s[c] / rows
        q = np.zeros(cols)
        for r in range(rows):
            for c in range(cols):
                d = x[r, c] - mean[c]
                q[c] += d * d
        inv = np.empty(cols, dtype=x.dtype)
        for c in range(cols):
            stats[0, c] = mean[c]
            stats[1, c] = q[c] / rows
            inv[c] = 1.0 / np.sqrt(q[c] / rows + eps)
        for r in range(rows):
            for c in range(cols):
                h = (x[r, c] - mean[c]) * inv[c]
                xhat[r, c] = h
                y[r, c] = h * weight[c] + bias[c]
        return inv

    @jit
    def backward(dy, xhat, inv, weight, dweight, dbias, dx):  # noqa: ANN001
        rows, cols = dy.shape
        sd = np.zeros(cols)
        sdx = np.zeros(cols)
        for r in range(rows):
            for c in range(cols):
                g = dy[r, c]
                sd[c] += g
                sdx[c] += g * xhat[r, c]
        scale = np.empty(cols, dtype=dy.dtype)
        mean_d = np.empty(cols, dtype=dy.dtype)
        mean_dx = np.empty(cols, dtype=dy.dtype)
        for c in range(cols):
            dweight[c] = sdx[c]
            dbias[c] = sd[c]
            scale[c] = inv[c] * weight[c]
            mean_d[c] = sd[c] / rows
            mean_dx[c] = sdx[c] / rows
        for r in range(rows):
            for c in range(cols):
                dx[r, c] = scale[c] * (dy[r, c] - mean_d[c] - xhat[r, c] * mean_dx[c])

    return {"forward": forward, "backward": backward}


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
        return _normalize_backward(dxhat, self.xhat, self.inv, None, dy.shape[-1], (-1,))

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
