"""Batch normalisation (PyTorch's BatchNorm1d/2d); layer normalisation is ``layernorm.py``.

Training-mode batchnorm over rows (N, F) or (N, T, F) without a mask, and over images
(N, C, H, W), runs as two fused passes each way on the CPU (numba: ``batchnorm_loops`` and
``batchnorm_plane_loops`` below the layer, loaded by ``kernels.py``); the
numpy code of ``BatchNorm.forward`` and ``backward`` is the reference and every other path."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.backend import array_module
from nncli.engine import checks, kernels
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError


def normalize_backward(
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
        alone = self.w is None and self.batch_sum is None  # one process's whole batch
        if alone and kernels.usable(x, weight, bias):  # on the CPU
            return self._forward_planes(x) if len(self.in_shape) == 3 else self._forward_rows(x)
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

    def _forward_planes(self, x: Any) -> Any:
        """(N, C, H, W) as planes (N, C, H*W), in two fused passes (numba), as ``_forward_rows``."""
        planes = x.reshape(*x.shape[:2], -1)
        self.xhat, y = np.empty_like(x), np.empty_like(x)
        stats = np.empty((2, x.shape[1]))
        inv = kernels.compiled(batchnorm_plane_loops)["forward"](
            planes, self.params["weight"], self.params["bias"], planes.dtype.type(self.epsilon),
            self.xhat.reshape(planes.shape), y.reshape(planes.shape), stats,
        )  # fmt: skip
        self.inv, self.n = inv.reshape(self.broadcast), planes.shape[0] * planes.shape[2]
        self._update_running(stats[0], stats[1])
        return y

    def _backward_planes(self, dy: Any) -> Any:
        dx = np.empty_like(dy)
        shape = (*dy.shape[:2], -1)
        kernels.compiled(batchnorm_plane_loops)["backward"](
            dy.reshape(shape), self.xhat.reshape(shape), self.inv.reshape(-1),
            self.params["weight"], self.grads["weight"], self.grads["bias"], dx.reshape(shape),
        )  # fmt: skip
        return dx

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
        fused = self.training and self.w is None
        fused = fused and self.batch_sum is None  # shared batches sum across processes
        fused = fused and type(dy) is np.ndarray and dy.dtype == self.xhat.dtype
        if fused and kernels.usable(self.xhat, self.grads["weight"], self.grads["bias"]):
            dy = np.ascontiguousarray(dy)  # dy may be a sliced dx
            if len(self.in_shape) == 3:
                return self._backward_planes(dy)
            return self._backward_rows(dy)
        self.grads["weight"][...] = (dy * self.xhat).sum(axis=self.axes)
        self.grads["bias"][...] = dy.sum(axis=self.axes)
        dxhat = dy * self.params["weight"].reshape(shape)
        if not self.training:
            return dxhat * self.inv
        return normalize_backward(
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


def batchnorm_plane_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """``batchnorm_loops`` for images: x (N, C, P), each channel over its N planes of P cells
    (P = H*W), the same passes and arguments. A channel's sums run cell by cell over the N
    planes in float64 (independent cells: the loop vectorises), then over the cells."""

    @inline
    def plane_sums(a, b, c, part, other):  # noqa: ANN001
        """part[p] = sum_k a[k, c, p], other[p] = sum_k a[k, c, p] b[k, c, p] (float64)."""
        part[:] = 0.0
        other[:] = 0.0
        for k in range(a.shape[0]):
            ar, br = a[k, c], b[k, c]
            for p in range(a.shape[2]):
                part[p] += ar[p]
                other[p] += ar[p] * br[p]
        return part.sum(), other.sum()

    @jit
    def forward(x, weight, bias, eps, xhat, y, stats):  # noqa: ANN001
        n, channels, cells = x.shape
        count = n * cells
        inv = np.empty(channels, dtype=x.dtype)
        part, other = np.empty(cells), np.empty(cells)
        for c in range(channels):
            s, _ = plane_sums(x, x, c, part, other)
            mean = x.dtype.type(s / count)
            other[:] = 0.0
            for k in range(n):
                plane = x[k, c]
                for p in range(cells):
                    d = plane[p] - mean
                    other[p] += d * d
            q = other.sum()
            stats[0, c], stats[1, c] = mean, q / count
            inv[c] = 1.0 / np.sqrt(q / count + eps)
            scale, shift, offset = inv[c], weight[c], bias[c]
            for k in range(n):
                plane, hr, yr = x[k, c], xhat[k, c], y[k, c]
                for p in range(cells):
                    h = (plane[p] - mean) * scale
                    hr[p] = h
                    yr[p] = h * shift + offset
        return inv

    @jit
    def backward(dy, xhat, inv, weight, dweight, dbias, dx):  # noqa: ANN001
        n, channels, cells = dy.shape
        count = n * cells
        part, other = np.empty(cells), np.empty(cells)
        for c in range(channels):
            sd, sdx = plane_sums(dy, xhat, c, part, other)
            dweight[c], dbias[c] = sdx, sd
            scale = dy.dtype.type(inv[c] * weight[c])
            mean_d, mean_dx = dy.dtype.type(sd / count), dy.dtype.type(sdx / count)
            for k in range(n):
                gr, hr, out = dy[k, c], xhat[k, c], dx[k, c]
                for p in range(cells):
                    out[p] = scale * (gr[p] - mean_d - hr[p] * mean_dx)

    return {"forward": forward, "backward": backward}
