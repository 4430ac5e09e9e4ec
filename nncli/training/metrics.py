"""Metrics: running sums over batches (on the device, one sync per batch at most) and the
per-class report for ``nncli evaluate``."""

from __future__ import annotations

from typing import Any

import numpy as np

from nncli.backend import array_module


def _row_weights(y: Any, mask: Any) -> Any:
    xp = array_module(y)
    if mask is not None and y.ndim == mask.ndim + 1:
        return mask.astype(y.dtype)
    return xp.ones(y.shape[:-1], dtype=y.dtype)


def predicted_classes(p: Any) -> Any:
    """Class index per row: argmax, or p > 0.5 for a single sigmoid output."""
    return p.argmax(axis=-1) if p.shape[-1] > 1 else (p[..., 0] > 0.5).astype(np.int64)


class RunningMetrics:
    """Accumulates the loss and the task's metrics (accuracy, or RMSE and MAE) over batches.

    ``target_scale`` (k,): the factor that maps each scaled target back to the file's units, so
    RMSE and MAE are in the target's units; the loss stays the training objective's value."""

    def __init__(self, task: str, target_scale: np.ndarray | None = None):
        self.task = task
        self.target_scale = target_scale
        self.device_scale: Any = None  # on the targets' device, copied there once
        self.loss_sum = 0.0
        self.rows = 0.0
        self.sums: dict[str, Any] = {}

    def add(self, loss: float, p: Any, y: Any, mask: Any = None) -> None:
        w = _row_weights(y, mask)
        rows = float(w.sum())
        self.loss_sum += loss * rows
        self.rows += rows
        if self.task == "classification":
            hit = (predicted_classes(p) == predicted_classes(y)) * w
            self._add("correct", hit.sum())
        else:
            diff = (p - y) * w[..., None]
            if self.target_scale is not None:
                if self.device_scale is None:
                    self.device_scale = array_module(y).asarray(self.target_scale, dtype=y.dtype)
                diff = diff * self.device_scale
            self._add("sq", (diff * diff).sum() / y.shape[-1])
            self._add("abs", abs(diff).sum() / y.shape[-1])

    def _add(self, key: str, value: Any) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + value

    def result(self) -> dict[str, float]:
        rows = max(self.rows, 1.0)
        out = {"loss": self.loss_sum / rows}
        if self.task == "classification":
            out["accuracy"] = float(self.sums.get("correct", 0.0)) / rows
        else:
            out["rmse"] = float(np.sqrt(float(self.sums.get("sq", 0.0)) / rows))
            out["mae"] = float(self.sums.get("abs", 0.0)) / rows
        return out


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, and the confusion matrix (rows: true)."""
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": actual,
        "confusion": confusion,
    }
