"""Losses: a scalar from predictions and targets, and its gradient.

Shapes: ``y_pred`` and ``y_true`` are (N, K) or, for sequence-to-sequence, (N, T, K) with an
optional (N, T) ``mask`` of real steps. Every loss averages over its last axis where that is the
usual definition (mse, mae, binary cross-entropy) and then over the rows (samples, or real steps).

``cross_entropy`` after a softmax output and ``binary_cross_entropy`` after a sigmoid output are
fused: given the output layer's ``logits`` they compute the loss from the logits (log-sum-exp)
and return the gradient with respect to the logits, (p - y) / rows, so huge logits never give NaN.
"""

from __future__ import annotations

from typing import Any

from nncli.backend import array_module
from nncli.engine import checks
from nncli.engine.activations import sigmoid, softmax
from nncli.engine.registry import LOSSES
from nncli.errors import ShapeError

CLIP = 1e-12  # keeps log() finite when a probability is exactly 0 or 1 (unfused path only)


class Loss:
    """Base class: shape check and the per-row weights (1 / rows, 0 at padded steps).

    ``total``: what the last ``forward`` divided by (rows, real steps, or the rows' class
    weights), so processes that each hold part of a batch can weigh their means into the
    batch's (nncli/training/parallel.py)."""

    type_name = "loss"
    fused_activation: str | None = None
    task = "regression"
    total: Any = 0.0  # a float, or a 0-d array on the device

    def _weights(self, y_pred: Any, y_true: Any, mask: Any) -> Any:
        if tuple(y_pred.shape) != tuple(y_true.shape):
            raise ShapeError(
                f"loss {self.type_name} expects targets of shape {tuple(y_pred.shape)} "
                f"(the network's output), got {tuple(y_true.shape)}"
            )
        xp = array_module(y_pred)
        if mask is None:
            rows = y_pred.size // y_pred.shape[-1]
            w = xp.full(y_pred.shape[:-1], 1.0 / max(rows, 1), dtype=y_pred.dtype)
            self.total = float(rows)
        else:
            m = mask.astype(y_pred.dtype)
            self.total = m.sum()  # a device scalar: no host sync
            w = m / xp.maximum(self.total, 1.0)
        self.w = w[..., None]
        return self.w

    def forward(self, y_pred: Any, y_true: Any, mask: Any = None, logits: Any = None) -> Any:
        raise NotImplementedError

    def backward(self) -> Any:
        raise NotImplementedError

    def config(self) -> str | dict[str, Any]:
        """The name, or ``{type, **settings}`` when a setting differs from its default."""
        return self.type_name


@LOSSES.register("mse")
class MeanSquaredError(Loss):
    """L = mean over rows of mean_k (p_k - y_k)^2;  dL/dp = 2 (p - y) / (K rows)"""

    def forward(self, y_pred, y_true, mask=None, logits=None):
        w = self._weights(y_pred, y_true, mask)
        self.diff = y_pred - y_true
        self.k = y_pred.shape[-1]
        return (w * self.diff * self.diff).sum() / self.k

    def backward(self):
        return (2.0 / self.k) * self.w * self.diff


@LOSSES.register("mae")
class MeanAbsoluteError(Loss):
    """L = mean over rows of mean_k |p_k - y_k|;  dL/dp = sign(p - y) / (K rows)"""

    def forward(self, y_pred, y_true, mask=None, logits=None):
        w = self._weights(y_pred, y_true, mask)
        diff = y_pred - y_true
        self.sign = array_module(diff).sign(diff)
        self.k = y_pred.shape[-1]
        return (w * abs(diff)).sum() / self.k

    def backward(self):
        return self.w * self.sign / self.k


@LOSSES.register("huber")
class Huber(Loss):
    """L = mean of d^2 / 2 where |d| <= delta, else delta (|d| - delta / 2), d = p - y
    (PyTorch's HuberLoss);  dL/dp = clip(d, -delta, delta) / (K rows)"""

    def __init__(self, delta: float = 1.0):
        self.delta = checks.number("delta", delta, 0.0, low_open=True)

    def forward(self, y_pred, y_true, mask=None, logits=None):
        xp = array_module(y_pred)
        w = self._weights(y_pred, y_true, mask)
        self.diff, self.k = y_pred - y_true, y_pred.shape[-1]
        size = abs(self.diff)
        linear = self.delta * (size - 0.5 * self.delta)
        per = xp.where(size <= self.delta, 0.5 * self.diff * self.diff, linear)
        return (w * per).sum() / self.k

    def backward(self):
        xp = array_module(self.diff)
        return self.w * xp.clip(self.diff, -self.delta, self.delta) / self.k

    def config(self) -> str | dict[str, Any]:
        return (
            self.type_name if self.delta == 1.0 else {"type": self.type_name, "delta": self.delta}
        )


@LOSSES.register("cross_entropy")
class CrossEntropy(Loss):
    """L = mean over rows of -sum_k y_k log p_k; fused with softmax: dL/dz = (p sum y - y) / rows

    ``label_smoothing`` e: the targets become (1 - e) y + e / K first (PyTorch's semantics).
    ``class_weight`` c (K,): L = -sum_i sum_k c_k y_ik log p_ik / sum_i c_(label i), PyTorch's
    ``CrossEntropyLoss(weight=c)``; the same formulas with y_ik c_k for y and that row weight."""

    fused_activation = "softmax"
    task = "classification"

    def __init__(self, label_smoothing: float = 0.0, class_weight: list[float] | None = None):
        self.label_smoothing = checks.number("label_smoothing", label_smoothing, 0.0, 1.0)
        self.class_weight = None
        if class_weight is not None:
            self.class_weight = [
                checks.number(f"class_weight[{k}]", c, 0.0) for k, c in enumerate(class_weight)
            ]

    def _class_weighted(self, y_true: Any, y_smooth: Any, mask: Any) -> Any:
        """Targets times their class's weight; ``self.w`` becomes each row's share of the
        sum of the weights of the rows' labels (zero at padded steps)."""
        xp = array_module(y_true)
        c = xp.asarray(self.class_weight, dtype=y_true.dtype)
        if c.shape[0] != y_true.shape[-1]:
            raise ShapeError(
                f"loss cross_entropy has {c.shape[0]} class weights, got {y_true.shape[-1]} classes"
            )
        real = xp.ones(y_true.shape[:-1], y_true.dtype) if mask is None else mask.astype(c.dtype)
        total = (real * (y_true * c).sum(axis=-1)).sum()
        self.total = total  # a device scalar: no host sync
        self.w = real[..., None] / xp.maximum(total, 1e-12)
        return y_smooth * c

    def forward(self, y_pred, y_true, mask=None, logits=None):
        xp = array_module(y_pred)
        w = self._weights(y_pred, y_true, mask)
        y_raw = y_true
        if self.label_smoothing:
            e = self.label_smoothing
            y_true = (1 - e) * y_true + e / y_true.shape[-1]
        if self.class_weight is not None:
            y_true = self._class_weighted(y_raw, y_true, mask)
            w = self.w
        self.y, self.fused = y_true, logits is not None
        if self.fused:
            shifted = logits - logits.max(axis=-1, keepdims=True)
            log_p = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
            self.p = softmax(logits)
        else:
            self.p = y_pred
            log_p = xp.log(xp.clip(y_pred, CLIP, None))
        return -(w * y_true * log_p).sum()

    def backward(self):
        if self.fused:
            return self.w * (self.p * self.y.sum(axis=-1, keepdims=True) - self.y)
        xp = array_module(self.p)
        return -self.w * self.y / xp.clip(self.p, CLIP, None)

    def config(self) -> str | dict[str, Any]:
        cfg: dict[str, Any] = {"type": self.type_name}
        if self.label_smoothing:
            cfg["label_smoothing"] = self.label_smoothing
        if self.class_weight is not None:
            cfg["class_weight"] = list(self.class_weight)
        return cfg if len(cfg) > 1 else self.type_name


@LOSSES.register("binary_cross_entropy")
class BinaryCrossEntropy(Loss):
    """L = mean of -(y log p + (1 - y) log(1 - p)); fused with sigmoid: dL/dz = (p - y) / K rows"""

    fused_activation = "sigmoid"
    task = "classification"

    def forward(self, y_pred, y_true, mask=None, logits=None):
        xp = array_module(y_pred)
        w = self._weights(y_pred, y_true, mask)
        self.y, self.fused, self.k = y_true, logits is not None, y_pred.shape[-1]
        if self.fused:
            z = logits
            self.p = sigmoid(z)
            # log(1 + e^z) - y z, written so that neither term overflows
            per = xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-abs(z)))
        else:
            self.p = y_pred
            p = xp.clip(y_pred, CLIP, 1 - CLIP)
            per = -(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p))
        return (w * per).sum() / self.k

    def backward(self):
        if self.fused:
            return self.w * (self.p - self.y) / self.k
        xp = array_module(self.p)
        p = xp.clip(self.p, CLIP, 1 - CLIP)
        return self.w * (p - self.y) / (p * (1 - p)) / self.k


def make_loss(name: str) -> Loss:
    return LOSSES.create(name)
