"""2-D convolution (cross-correlation, as in PyTorch and Keras: the kernel is not flipped)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers import windows
from nncli.engine.registry import LAYERS

CHUNK = 64  # samples per im2col block at inference (measured: 64 beat 32, 128 and 256)


@LAYERS.register("conv2d")
class Conv2D(Layer):
    """y = act(z), z[n, f, p, q] = b[f] + sum_{c,i,j} w[f, c, i, j] x_pad[n, c, p*sh + i, q*sw + j]

    x (N, C, H, W) -> y (N, filters, Oh, Ow); weight (filters, C, kh, kw), bias (filters,).
    Output size and padding: see ``windows.py`` (after build: ``size_notes``, ``warnings``).

    As matrix products (im2col, ``windows.columns``), with K = C*kh*kw and M = N*Oh*Wx:
      cols (K, M)        every window of x_pad as a column, the whole batch side by side
      forward            z = W @ cols + b (one product)    W = weight as (filters, K)
      backward           dW = dz @ cols^T                  db = dz @ 1 (both one product)
                         dcols = W^T @ dz                  dx = col2im(dcols): each column added
                                                           back onto the cells its window read
    With stride 1, Wx is the padded width (garbage columns q >= Ow are dropped from z and get
    zero gradient), which turns im2col and col2im into block copies; otherwise Wx = Ow.
    Inference on a large batch runs in chunks of ``CHUNK`` samples, so the columns stay small.
    """

    examples: ClassVar = [
        ({"filters": 2, "kernel_size": 3, "padding": "same", "activation": "relu"}, (2, 5, 5)),
        ({"filters": 3, "kernel_size": [2, 3], "strides": 2, "padding": 1}, (1, 6, 5)),
    ]

    def __init__(
        self,
        filters: int,
        kernel_size: int | list[int] = 3,
        strides: int | list[int] = 1,
        padding: str | int | list[int] = "valid",
        activation: str | dict | None = None,
        use_bias: bool = True,
        kernel_initializer: str | dict | None = None,
        bias_initializer: str | dict = "zeros",
    ):
        super().__init__(activation)
        self.filters = checks.positive_int("filters", filters)
        self.kernel_size = checks.int_pair("kernel_size", kernel_size)
        self.strides = checks.int_pair("strides", strides)
        self.padding = windows.padding_arg(padding)
        self.use_bias = checks.boolean("use_bias", use_bias)
        self.kernel_initializer = self.initializer("kernel_initializer", kernel_initializer)
        self.bias_initializer = self.initializer("bias_initializer", bias_initializer, "zeros")
        self._padded: Any = None  # the zero-bordered input buffer, reused across batches
        self._ones: Any = None
        self._dz: Any = None  # dL/dz laid out like the columns, reused across batches
        self.cols: Any = None
        self._cols_memory: Any = None  # the last columns' memory, reused by the next batch
        if self.activation is not None:
            self.activation.inplace = True  # y is this layer's own fresh array

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        self.windows = windows.plan(
            self.label, in_shape, self.kernel_size, self.strides, self.padding
        )
        self.size_notes, self.warnings = list(self.windows.notes), list(self.windows.warnings)
        shapes = self.array_shapes(in_shape)
        channels, (kh, kw) = in_shape[0], self.kernel_size
        fan_in, fan_out = channels * kh * kw, self.filters * kh * kw
        self.params["weight"] = self.kernel_initializer(shapes["weight"], fan_in, fan_out, rng)
        if self.use_bias:
            self.params["bias"] = self.bias_initializer(shapes["bias"], fan_in, fan_out, rng)
        return (self.filters, *self.windows.out_size)

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        shapes = {"weight": (self.filters, in_shape[0], *self.kernel_size)}
        return shapes | ({"bias": (self.filters,)} if self.use_bias else {})

    def output_shape(self, in_shape: Shape) -> Shape:
        plan = windows.plan(self.label, in_shape, self.kernel_size, self.strides, self.padding)
        return (self.filters, *plan.out_size)

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        xp, n = self.backend.xp, x.shape[0]
        y = xp.empty((n, self.filters, *self.windows.out_size), dtype=x.dtype)
        if training or n <= CHUNK:
            self.cols, self.wx = self._forward_into(y, x)
        else:  # inference: nothing is kept for backward, so chunks bound the memory
            self.cols = None
            for start in range(0, n, CHUNK):
                self._forward_into(y[start : start + CHUNK], x[start : start + CHUNK])
        return self._activate(y)

    def _forward_into(self, y: Any, x: Any) -> tuple[Any, int]:
        """y = W @ cols + b for the samples of ``x``, written into ``y``; returns cols, Wx."""
        cols, self._padded, wx = windows.columns(x, self.windows, self._padded, self._cols_memory)
        self._cols_memory = cols
        z = self.params["weight"].reshape(self.filters, -1) @ cols  # (filters, N*Oh*Wx)
        oh, ow = self.windows.out_size
        z = z.reshape(self.filters, x.shape[0], oh, wx).transpose(1, 0, 2, 3)[..., :ow]
        if self.use_bias:
            self.backend.xp.add(z, self.params["bias"][:, None, None], out=y)
        else:
            y[...] = z
        return cols, wx

    def backward(self, dy: Any) -> Any:
        if self.cols is None:
            raise RuntimeError(f"{self.label}: backward needs forward(training=True) first")
        xp, weight = self.backend.xp, self.params["weight"]
        dz = self._activate_backward(dy)
        n, oh, ow = dz.shape[0], *self.windows.out_size
        shape = (self.filters, n, oh, self.wx)
        if self._dz is None or self._dz.shape != shape or self._dz.dtype != dz.dtype:
            self._dz = xp.zeros(shape, dtype=dz.dtype)  # garbage columns stay 0 for good
        self._dz[..., :ow] = dz.transpose(1, 0, 2, 3)
        dz2 = self._dz.reshape(self.filters, -1)
        xp.matmul(dz2, self.cols.T, out=self.grads["weight"].reshape(self.filters, -1))
        if self.use_bias:
            self._bias_grad(dz2)
        if self.skip_input_grad:
            return None
        dcols = weight.reshape(self.filters, -1).T @ dz2  # (K, N*Oh*Wx)
        return windows.fold_columns(dcols, self.windows, n, self.wx)

    def _bias_grad(self, dz2: Any) -> None:
        """(filters, M) -> (filters,). numpy's sum along rows is several times slower than a
        matrix-vector product with ones (measured, float32, batch 64); CuPy's sum is ~5x faster
        than its matrix-vector product, so each device gets its faster one."""
        xp, out = self.backend.xp, self.grads["bias"]
        if self.backend.name != "cpu":
            xp.sum(dz2, axis=1, out=out)
            return
        length = dz2.shape[1]
        if self._ones is None or self._ones.shape[0] != length or self._ones.dtype != dz2.dtype:
            self._ones = xp.ones(length, dtype=dz2.dtype)
        xp.matmul(dz2, self._ones, out=out)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg.update(
            filters=self.filters,
            kernel_size=windows.compact(self.kernel_size),
            strides=windows.compact(self.strides),
            padding=windows.compact(self.padding),
        )
        if not self.use_bias:
            cfg["use_bias"] = False
        return {**cfg, **self.initializer_config()}
