"""2-D convolution (cross-correlation, as in PyTorch and Keras: the kernel is not flipped)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks, kernels
from nncli.engine.activations import ReLU
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers import windows
from nncli.engine.registry import LAYERS

CHUNK = 64  # samples per im2col block at inference on a GPU or without the fused kernels
# the CPU's im2col blocks: columns of at most this many bytes a product, so that they are still
# in the cache when the product reads them (measured on an AMD EPYC, AVX-512: W7's 16-channel
# 28x28 convolution 3-8x faster forward and back than with the whole batch's 31 MB of columns,
# W2's second 2x; see benchmarks/RESULTS.md)
COLUMN_BYTES = 2 << 20


@LAYERS.register("conv2d")
class Conv2D(Layer):
    """y = act(z), z[n, f, p, q] = b[f] + sum_{c,i,j} w[f, c, i, j] x_pad[n, c, p*sh + i, q*sw + j]

    x (N, C, H, W) -> y (N, filters, Oh, Ow); weight (filters, C, kh, kw), bias (filters,).
    Output size and padding: see ``windows.py`` (after build: ``size_notes``, ``warnings``).

    As matrix products (im2col, ``windows.columns``), with K = C*kh*kw and M = n*Oh*Wx for a
    chunk of n samples:
      cols (K, M)        every window of x_pad as a column, the chunk's samples side by side
      forward            z = W @ cols + b (one product)    W = weight as (filters, K)
      backward           dW = sum over chunks dz @ cols^T  db = dz @ 1 (one product)
                         dcols = W^T @ dz                  dx = col2im(dcols): each column added
                                                           back onto the cells its window read
    With stride 1, Wx is the padded width (garbage columns q >= Ow are dropped from z and get
    zero gradient), which turns im2col and col2im into block copies; otherwise Wx = Ow.
    On the CPU with the fused kernels a chunk holds as many samples as keep its columns within
    ``COLUMN_BYTES`` (the cache), and backward makes each chunk's columns again from the kept
    padded input rather than keeping the whole batch's (a batch of one chunk keeps its
    columns); a GPU, or numpy alone, takes the whole batch in training and ``CHUNK`` samples
    at inference.

    Around the products, z's (filters, N) order is turned into y's (N, filters) with the bias
    and a ReLU in one pass, and dy into dz's order with the ReLU's mask in one pass
    (``conv_loops``, numba; numpy's passes otherwise, the same values).
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
        self._dcols: Any = None  # dL/dcols, reused across batches
        self.cols: Any = None  # the batch's columns, kept for backward when it is one chunk
        self._cols_memory: Any = None  # the last columns' memory, reused by the next chunk
        self.step = 1  # samples a product takes (``_chunk``)
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
        fused = kernels.usable(y)  # one choice for every chunk
        self._padded, self.wx = windows.padded_input(x, self.windows, self._padded)
        self.step = self._chunk(n, x.dtype.itemsize, training)
        self.cols = cols = None  # a share of a batch may hold no samples (MPI ranks)
        for start in range(0, n, self.step):
            cols = self._columns(start)
            z = self.params["weight"].reshape(self.filters, -1) @ cols  # (filters, n*Oh*Wx)
            self._output(z, y[start : start + self.step], fused)
        if training and self.step >= n:
            self.cols = cols  # one chunk: backward needs no second im2col
        if fused and self._fused_relu():
            self.activation.a = y  # the ReLU ran inside the output pass
            return y
        return self._activate(y)

    def _chunk(self, n: int, itemsize: int, training: bool) -> int:
        """Samples a product takes at once: on the CPU with the fused kernels as many as keep
        the columns within ``COLUMN_BYTES``; otherwise (a GPU, or numpy alone, whose passes
        between the chunks lost 10-40% on W2 and W7: benchmarks/RESULTS.md) the whole batch
        in training, ``CHUNK`` at inference."""
        if self.backend.name != "cpu" or not kernels.available():
            return max(1, n if training else min(n, CHUNK))
        oh, _ = self.windows.out_size
        per_sample = self.params["weight"][0].size * oh * self.wx * itemsize
        return max(1, min(n, COLUMN_BYTES // per_sample))

    def _columns(self, start: int) -> Any:
        """im2col of the samples [start, start + step), in memory reused from chunk to chunk."""
        if self.cols is not None:
            return self.cols
        padded = self._padded[start : start + self.step]
        self._cols_memory = windows.columns(padded, self.windows, self._cols_memory)
        return self._cols_memory

    def _fused_relu(self) -> bool:
        """True when this layer's ReLU runs inside its own passes (``conv_loops``)."""
        plain = not (self.fused_output or self.activation_deferred)
        return plain and type(self.activation) is ReLU

    def _output(self, z: Any, y: Any, fused: bool) -> None:
        """y = z + b for a chunk of samples (with the ReLU when ``fused``: see ``conv_loops``)."""
        oh, ow = self.windows.out_size
        z = z.reshape(self.filters, y.shape[0], oh, self.wx)
        if fused:
            bias = self.params["bias"] if self.use_bias else z[:0, 0, 0, 0]
            kernels.compiled(conv_loops)["output"](z, bias, self._fused_relu(), y)
            return
        z = z.transpose(1, 0, 2, 3)[..., :ow]
        if self.use_bias:
            self.backend.xp.add(z, self.params["bias"][:, None, None], out=y)
        else:
            y[...] = z

    def backward(self, dy: Any) -> Any:
        if self._padded is None:
            raise RuntimeError(f"{self.label}: backward needs forward(training=True) first")
        xp, weight = self.backend.xp, self.params["weight"].reshape(self.filters, -1)
        self._gradient_rows(dy)
        n, step = dy.shape[0], self.step
        if self.use_bias:
            self._bias_grad(self._dz.reshape(self.filters, -1))
        grad = self.grads["weight"].reshape(self.filters, -1)
        if n == 0:  # a share of a batch with no samples: no gradient, an empty dL/dx
            grad[...] = 0
            return None if self.skip_input_grad else xp.zeros((0, *self.in_shape), dy.dtype)
        several = not self.skip_input_grad and step < n
        dx = xp.empty((n, *self.in_shape), dtype=dy.dtype) if several else None
        for start in range(0, n, step):
            cols = self._columns(start)  # again, from the kept padded input, chunk by chunk
            dz = self._dz[:, start : start + step].reshape(self.filters, -1)
            if start == 0:
                xp.matmul(dz, cols.T, out=grad)
            else:
                grad += dz @ cols.T
            if not self.skip_input_grad:
                if self._dcols is None or self._dcols.shape != (weight.shape[1], dz.shape[1]):
                    self._dcols = xp.empty((weight.shape[1], dz.shape[1]), dtype=dz.dtype)
                dcols = xp.matmul(weight.T, dz, out=self._dcols)
                if step >= n:  # one chunk: col2im's own array is dL/dx
                    return windows.fold_columns(dcols, self.windows, n, self.wx)
                chunk = dx[start : start + step]
                chunk[...] = windows.fold_columns(dcols, self.windows, chunk.shape[0], self.wx)
        return dx

    def _gradient_rows(self, dy: Any) -> None:
        """dL/dz (filters, N, Oh, Wx) from dL/dy, the ReLU's mask included, into ``_dz``."""
        xp = self.backend.xp
        n, oh, ow = dy.shape[0], *self.windows.out_size
        shape = (self.filters, n, oh, self.wx)
        if self._dz is None or self._dz.shape != shape or self._dz.dtype != dy.dtype:
            self._dz = xp.zeros(shape, dtype=dy.dtype)  # garbage columns stay 0 for good
        relu = self._fused_relu()
        dz = dy if relu else self._activate_backward(dy)  # the ReLU's mask: in the pass below
        dz = dz if type(dz) is not np.ndarray else np.ascontiguousarray(dz)
        a = self.activation.a if relu else dz
        if kernels.usable(dz, a, self._dz):
            kernels.compiled(conv_loops)["gradient"](dz, a, relu, self._dz)
        else:
            dz = self._activate_backward(dy) if relu else dz
            self._dz[..., :ow] = dz.transpose(1, 0, 2, 3)

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


def conv_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """The passes around a convolution's products, between the products' (filters, N, Oh, Wx)
    order and the layers' (N, filters, Oh, Ow) (columns q >= Ow are the shifted rows' garbage).

    ``output``: y[n, f, p, q] = z[f, n, p, q] + bias[f] (no bias when it is empty), then
    max(y, 0) when ``relu`` (NaN stays NaN, as numpy's ``maximum``).
    ``gradient``: dz[f, n, p, q] = dy[n, f, p, q], times (a > 0) when ``relu`` (a: the ReLU's
    output), as the ReLU's own backward: dy * 0 keeps a NaN and the sign of zero."""

    @jit
    def output(z, bias, relu, y):  # noqa: ANN001
        filters, n, oh, _ = z.shape
        ow = y.shape[3]
        zero = y.dtype.type(0)
        biased = bias.shape[0] > 0
        for s in range(n):
            for f in range(filters):
                b = bias[f] if biased else zero
                for p in range(oh):
                    zr, yr = z[f, s, p], y[s, f, p]
                    for q in range(ow):
                        v = zr[q] + b if biased else zr[q]
                        yr[q] = zero if relu and v < zero else v

    @jit
    def gradient(dy, a, relu, dz):  # noqa: ANN001
        n, filters, oh, ow = dy.shape
        one, zero = dy.dtype.type(1), dy.dtype.type(0)
        for f in range(filters):
            for s in range(n):
                for p in range(oh):
                    gr, ar, zr = dy[s, f, p], a[s, f, p], dz[f, s, p]
                    for q in range(ow):
                        zr[q] = gr[q] * (one if ar[q] > zero else zero) if relu else gr[q]

    return {"output": output, "gradient": gradient}
