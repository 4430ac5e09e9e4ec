"""1-D convolution over time on (N, T, F) sequences (Keras Conv1D orientation, PyTorch layout),
and the window arithmetic the 1-D pools share.

On the CPU with numba (``conv1d_loops`` below the layer, loaded by ``kernels.py``) the passes
around the two matrix products are fused: the windows copied straight from the unpadded input,
bias + ReLU (or none) in one pass, the ReLU's backward with the bias gradient in one, and the
columns' gradient gathered onto each input step once (col2im). The numpy code stays the
reference and every other path (GPU, ``NNCLI_KERNELS=numpy``, small batches, other activations).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.backend import array_module
from nncli.engine import checks, kernels
from nncli.engine.activations import Linear, ReLU
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers.dense import bias_sum
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError, SpecError


def padding_arg(value: Any) -> str | int:
    """``valid``, ``same`` or a non-negative integer (zeros on both ends of time)."""
    if value in ("valid", "same"):
        return value
    if checks.is_int(value) and value >= 0:
        return int(value)
    raise SpecError(f"expected valid, same or an integer >= 0, got {value!r}", field="padding")


class TimeWindows:
    """Where the windows of size ``size`` (taps ``dilation`` apart, ``stride`` apart) lie on a
    time axis of ``steps``: padding (left, right) and the output length. ``same`` pads as Keras
    does: ceil(steps / stride) outputs, the odd cell of padding on the right."""

    def __init__(self, size: int, stride: int, dilation: int, padding: str | int):
        self.size, self.stride, self.dilation, self.padding = size, stride, dilation, padding

    def plan(self, steps: int) -> tuple[int, int, int]:
        """(left, right, out) for an input of ``steps``; out < 1 means the input is too short."""
        span = self.dilation * (self.size - 1) + 1
        if self.padding == "same":
            out = -(-steps // self.stride)
            total = max((out - 1) * self.stride + span - steps, 0)
            left, right = total // 2, total - total // 2
        else:
            left = right = 0 if self.padding == "valid" else int(self.padding)
        return left, right, (steps + left + right - span) // self.stride + 1

    def tap(self, j: int, out: int) -> slice:
        """The padded steps tap ``j`` of every window reads: j d, j d + s, ... (out of them)."""
        start = j * self.dilation
        return slice(start, start + self.stride * (out - 1) + 1, self.stride)

    def pad(self, x: Any, left: int, right: int, fill: float = 0.0) -> Any:
        if not left and not right:
            return x
        xp = array_module(x)
        padded = xp.full((x.shape[0], x.shape[1] + left + right, *x.shape[2:]), fill, x.dtype)
        padded[:, left : left + x.shape[1]] = x
        return padded

    def output_mask(self, mask: Any) -> Any:
        """(N, T) real steps -> (N, T'): an output step is real when its window reads one."""
        if mask is None:
            return None
        left, right, out = self.plan(mask.shape[1])
        padded = self.pad(array_module(mask).asarray(mask, dtype=bool), left, right, False)
        real = padded[:, self.tap(0, out)].copy()
        for j in range(1, self.size):
            real |= padded[:, self.tap(j, out)]
        return real

    def real_steps(self, label: str, mask: Any, x: Any) -> Any:
        """The (N, T, 1) booleans of a masked batch's real steps, or None without a mask."""
        if mask is None:
            return None
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ShapeError(
                f"{label} expects a padding mask of shape {tuple(x.shape[:2])}, "
                f"got {tuple(mask.shape)}"
            )
        return array_module(x).asarray(mask, dtype=bool)[..., None]

    def check_length(self, label: str, steps: int) -> int:
        left, right, out = self.plan(steps)
        if out < 1:
            raise SpecError(f"{label} needs at least {steps - out + 1} steps, got {steps}")
        return out


@LAYERS.register("conv1d")
class Conv1D(Layer):
    """y = act(z), z[n, p, f] = b[f] + sum_{c, j} w[f, c, j] x_pad[n, p s + j d, c]

    x (N, T, F) -> y (N, T', filters); weight (filters, F, k), bias (filters,). As one matrix
    product (im2col over time): cols (N T', F k) holds every window, z = cols W^T + b;
    backward dW = dz^T cols, dcols = dz W, each tap of dcols added back onto the steps it read.
    The steps T may differ from batch to batch (padded sequences); with a padding mask the
    padded steps read as zeros and the mask becomes the output's (a step is real when its
    window reads a real step).
    """

    examples: ClassVar = [
        ({"filters": 2, "kernel_size": 3}, (6, 3)),
        ({"filters": 3, "kernel_size": 2, "strides": 2, "padding": "same"}, (5, 2)),
        ({"filters": 2, "kernel_size": 2, "dilation": 2, "padding": 1, "activation": "tanh"},
         (6, 2)),
    ]  # fmt: skip
    any_steps = True

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        padding: str | int = "valid",
        dilation: int = 1,
        activation: str | dict | None = None,
        use_bias: bool = True,
        kernel_initializer: str | dict | None = None,
        bias_initializer: str | dict = "zeros",
    ):
        super().__init__(activation)
        self.filters = checks.positive_int("filters", filters)
        self.windows = TimeWindows(
            checks.positive_int("kernel_size", kernel_size),
            checks.positive_int("strides", strides),
            checks.positive_int("dilation", dilation),
            padding_arg(padding),
        )
        self.use_bias = checks.boolean("use_bias", use_bias)
        self.kernel_initializer = self.initializer("kernel_initializer", kernel_initializer)
        self.bias_initializer = self.initializer("bias_initializer", bias_initializer, "zeros")
        if self.activation is not None:
            self.activation.inplace = True  # z is this layer's own fresh array

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        out_shape = self.output_shape(in_shape)  # checks the input is (N, T, F) and long enough
        shapes = self.array_shapes(in_shape)
        channels, k = in_shape[1], self.windows.size
        fan_in, fan_out = channels * k, self.filters * k
        self.params["weight"] = self.kernel_initializer(shapes["weight"], fan_in, fan_out, rng)
        if self.use_bias:
            self.params["bias"] = self.bias_initializer(shapes["bias"], fan_in, fan_out, rng)
        return out_shape

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        shapes = {"weight": (self.filters, in_shape[-1], self.windows.size)}
        return shapes | ({"bias": (self.filters,)} if self.use_bias else {})

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 2:
            raise SpecError(f"{self.label} expects (N, T, F) input, got (N, {in_shape})")
        return (self.windows.check_length(self.label, in_shape[0]), self.filters)

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        win = self.windows
        left, right, out = win.plan(x.shape[1])
        win.check_length(self.label, x.shape[1])
        # padded steps of a masked batch read as zeros, as the padding beyond the ends does
        self.real = win.real_steps(self.label, self.mask, x)
        x = x if self.real is None else x * self.real
        # every window as one row in (tap, channel) order
        self.cols = self._columns(x, left, right, out)
        self.geometry = (x.shape, left, x.shape[1] + left + right, out)
        width = self.cols.shape[-2] * self.cols.shape[-1]  # not -1: a share may hold no rows
        z = self.cols.reshape(-1, width) @ self._taps_first().T
        self.fused = self._fusable(z)
        if self.fused:  # bias and ReLU (or none) in one pass over z
            kernels.compiled(conv1d_loops)["bias_act"](z, self._bias(z), self._relu())
            if self._relu():
                self.activation.a = z
            return z.reshape(x.shape[0], out, self.filters)
        if self.use_bias:
            z += self.params["bias"]
        return self._activate(z.reshape(x.shape[0], out, self.filters))

    def _columns(self, x: Any, left: int, right: int, out: int) -> Any:
        """(N, T, C) -> (N, T', k, C) windows (zeros beyond the ends): numba copies them from x
        in one pass; numpy pads, then copies a strided view of every window."""
        win, (n, _, channels) = self.windows, x.shape
        if kernels.usable(x):
            cols = np.empty((n, out, win.size, channels), x.dtype)
            kernels.compiled(conv1d_loops)["columns"](x, left, win.stride, win.dilation, cols)
            return cols
        xp = self.backend.xp
        padded = xp.ascontiguousarray(win.pad(x, left, right))
        return xp.ascontiguousarray(self._windows_view(padded, out))

    def _fusable(self, z: Any) -> bool:
        """True when the numba passes stand in for bias + activation: ReLU, linear or none, not
        handed to the loss (``fused_output``) or deferred behind a pool."""
        act = self.activation
        if (
            self.fused_output
            or self.activation_deferred
            or type(act) not in (type(None), ReLU, Linear)
        ):
            return False
        return kernels.usable(z, *([self.params["bias"]] if self.use_bias else []))

    def _relu(self) -> bool:
        return type(self.activation) is ReLU

    def _bias(self, z: Any) -> Any:
        return self.params["bias"] if self.use_bias else np.zeros(self.filters, z.dtype)

    def _windows_view(self, padded: Any, out: int) -> Any:
        """(N, Tp, C) -> (N, T', k, C), window p's tap j at padded step p s + j d (no copy)."""
        win, (n, _, c) = self.windows, padded.shape
        s_n, s_t, s_c = padded.strides
        shape, strides = (n, out, win.size, c), (s_n, s_t * win.stride, s_t * win.dilation, s_c)
        return array_module(padded).lib.stride_tricks.as_strided(padded, shape, strides)

    def _taps_first(self) -> Any:
        """The weight (filters, C, k) as (filters, k C), the columns' (tap, channel) order."""
        return self.params["weight"].transpose(0, 2, 1).reshape(self.filters, -1)

    def backward(self, dy: Any) -> Any:
        win = self.windows
        channels = self.geometry[0][2]
        dz = self._dz(dy)
        cols = self.cols.reshape(dz.shape[0], self.cols.shape[-2] * self.cols.shape[-1])
        dw = (dz.T @ cols).reshape(self.filters, win.size, channels)
        self.grads["weight"][...] = dw.transpose(0, 2, 1)
        if self.skip_input_grad:
            return None
        dcols = (dz @ self._taps_first()).reshape(self.cols.shape)
        dx = self._fold(dcols)
        return dx if self.real is None else dx * self.real

    def _dz(self, dy: Any) -> Any:
        """dL/dz (N T', filters) from dL/dy, and the bias gradient: one numba pass when the
        forward fused its bias and activation, else the activation's backward and a product
        with ones (0.07 against 0.17 ms for sum(axis=0) on W5)."""
        if self.fused and type(dy) is np.ndarray and dy.dtype == self.cols.dtype:
            dy = np.ascontiguousarray(dy).reshape(-1, self.filters)
            dz, dbias = np.empty_like(dy), np.empty(self.filters)
            a = self.activation.a.reshape(dy.shape) if self._relu() else dy
            kernels.compiled(conv1d_loops)["act_backward"](dy, a, self._relu(), dz, dbias)
            if self.use_bias:
                self.grads["bias"][...] = dbias
            return dz
        dz = self._activate_backward(dy).reshape(-1, self.filters)  # a fused ReLU left its a
        if self.use_bias:
            bias_sum(dz, self.grads["bias"], self.backend.name)
        return dz

    def _fold(self, dcols: Any) -> Any:
        """dL/dx (N, T, C) from the columns' gradient (N, T', k, C): numba gathers each step's
        taps and writes it once; numpy adds each tap onto a padded array, then cuts the ends."""
        win = self.windows
        (n, steps, channels), left, padded_steps, out = self.geometry
        if kernels.usable(dcols):
            dx = np.empty((n, steps, channels), dcols.dtype)
            kernels.compiled(conv1d_loops)["fold"](dcols, left, win.stride, win.dilation, dx)
            return dx
        dx = self.backend.xp.zeros((n, padded_steps, channels), dtype=dcols.dtype)
        for j in range(win.size):
            dx[:, win.tap(j, out)] += dcols[:, :, j]
        return dx[:, left : left + steps]

    def output_mask(self, mask: Any) -> Any:
        return self.windows.output_mask(mask)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        win = self.windows
        cfg.update(
            filters=self.filters,
            kernel_size=win.size,
            strides=win.stride,
            padding=win.padding,
            dilation=win.dilation,
        )
        if not self.use_bias:
            cfg["use_bias"] = False
        return {**cfg, **self.initializer_config()}


def conv1d_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """The passes around conv1d's two products, for ``numba.njit``, each in the numpy code's
    order of sums (the same numbers): ``columns`` copies x (N, T, C) into the windows cols (N,
    T', k, C), zeros beyond the ends; ``bias_act`` z (R, F) += bias, then ReLU, in place;
    ``act_backward`` dz = dy (times the ReLU's 0/1), dbias (F,) float64 its column sums;
    ``fold`` dx (N, T, C) = the sum over taps (in tap order, from 0) of dcols' cells that read
    each step."""

    @jit
    def columns(x, left, stride, dilation, cols):  # noqa: ANN001
        n, out, size, channels = cols.shape
        steps, zero = x.shape[1], np.zeros(1, dtype=x.dtype)[0]
        for i in range(n):
            for p in range(out):
                for j in range(size):
                    t = p * stride + j * dilation - left
                    inside = 0 <= t < steps  # else the padding: zeros
                    for c in range(channels):
                        cols[i, p, j, c] = x[i, t, c] if inside else zero

    @jit
    def bias_act(z, bias, relu):  # noqa: ANN001
        rows, features = z.shape
        zero = np.zeros(1, dtype=z.dtype)[0]
        for r in range(rows):
            for f in range(features):
                v = z[r, f] + bias[f]
                z[r, f] = zero if relu and v < zero else v

    @jit
    def act_backward(dy, a, relu, dz, dbias):  # noqa: ANN001
        rows, features = dy.shape
        zero, one = np.zeros(1, dtype=dy.dtype)[0], np.ones(1, dtype=dy.dtype)[0]
        s = np.zeros(features)
        for r in range(rows):
            for f in range(features):
                g = dy[r, f] * (one if a[r, f] > zero else zero) if relu else dy[r, f]
                dz[r, f] = g
                s[f] += g
        dbias[:] = s

    @jit
    def fold(dcols, left, stride, dilation, dx):  # noqa: ANN001
        n, steps, channels = dx.shape
        out, size = dcols.shape[1], dcols.shape[2]
        zero = np.zeros(1, dtype=dx.dtype)[0]
        for i in range(n):
            for t in range(steps):
                for c in range(channels):
                    dx[i, t, c] = zero
                for j in range(size):
                    q = t + left - j * dilation
                    if q >= 0 and q % stride == 0 and q // stride < out:
                        p = q // stride
                        for c in range(channels):
                            dx[i, t, c] += dcols[i, p, j, c]

    return {"columns": columns, "bias_act": bias_act, "act_backward": act_backward, "fold": fold}
