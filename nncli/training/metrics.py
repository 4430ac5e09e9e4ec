"""Metrics: running sums over batches (on the device, one transfer an epoch) and the
per-class report for ``nncli evaluate``."""

from __future__ import annotations

from typing import Any

import numpy as np

from nncli.backend import array_module, device_copy, to_host


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

    The sums stay where the batches are (on a GPU: 0-d device arrays, no sync a batch) and
    ``result`` reads them all in one transfer. ``target_scale`` (k,): the factor that maps each
    scaled target back to the file's units, so RMSE and MAE are in the target's units; the loss
    stays the training objective's value."""

    def __init__(self, task: str, target_scale: np.ndarray | None = None):
        self.task = task
        self.target_scale = target_scale
        self.device_scale: Any = None  # on the targets' device, copied there once
        self.sums: dict[str, Any] = {}

    def add(self, loss: Any, p: Any, y: Any, mask: Any = None) -> None:
        """``loss``: the batch's mean loss (a float, or a 0-d array on the batch's device)."""
        w = _row_weights(y, mask)
        xp = array_module(w)
        rows = xp.asarray(w.sum(), dtype=np.float64)
        self._add("rows", rows)
        self._add("loss", xp.asarray(loss, dtype=np.float64) * rows)
        if self.task == "classification":
            hit = (predicted_classes(p) == predicted_classes(y)) * w
            self._add("correct", hit.sum())
        else:
            diff = (p - y) * w[..., None]
            if self.target_scale is not None:
                if self.device_scale is None:
                    self.device_scale = device_copy(self.target_scale, like=y)
                diff = diff * self.device_scale
            self._add("sq", (diff * diff).sum() / y.shape[-1])
            self._add("abs", abs(diff).sum() / y.shape[-1])

    def _add(self, key: str, value: Any) -> None:
        """Sums in float64 where the value is (as the host's Python floats were before)."""
        value = array_module(value).asarray(value, dtype=np.float64)
        self.sums[key] = value if key not in self.sums else self.sums[key] + value

    def combine(self, total: Any) -> None:
        """Add the other processes' sums: ``total`` sums a 1-D float64 array over all of them
        (every process holds the same keys: each adds every batch, even a share of no rows)."""
        keys = sorted(self.sums)
        packed = total(np.array([float(self.sums[k]) for k in keys], dtype=np.float64))
        self.sums = {k: np.asarray(v) for k, v in zip(keys, packed, strict=True)}

    def result(self) -> dict[str, float]:
        keys = list(self.sums)
        if keys:  # every sum in one transfer
            xp = array_module(self.sums["rows"])
            host = to_host(xp.stack([xp.asarray(self.sums[k], dtype=xp.float64) for k in keys]))
            sums = dict(zip(keys, (float(v) for v in host), strict=True))
        else:
            sums = {}
        rows = max(sums.get("rows", 0.0), 1.0)
        out = {"loss": sums.get("loss", 0.0) / rows}
        if self.task == "classification":
            out["accuracy"] = sums.get("correct", 0.0) / rows
        else:
            out["rmse"] = float(np.sqrt(sums.get("sq", 0.0) / rows))
            out["mae"] = sums.get("abs", 0.0) / rows
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
