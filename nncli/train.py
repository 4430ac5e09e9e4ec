"""Training, evaluation and prediction over host arrays. Reports through callbacks; never prints.

``fit`` moves one batch at a time onto the network's device, runs forward, loss, backward and one
optimizer step, and keeps per-epoch history. The batch order and dropout masks derive from the
seed and the epoch number, so a run resumed at an epoch boundary continues bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from nncli.data.batches import (
    STREAM_AUGMENT,
    STREAM_DROPOUT,
    epoch_batches,
    resolve_batch_size,
    rng_for,
)
from nncli.engine.losses import Loss
from nncli.engine.network import Sequential
from nncli.engine.optimizers import Optimizer
from nncli.engine.registry import did_you_mean
from nncli.errors import DataError, DivergedError, SpecError
from nncli.metrics import RunningMetrics

PREDICT_BATCH = 1024


class Callback:
    """Hooks ``fit`` calls; override what you need. ``on_epoch_end`` may return True to stop."""

    def on_train_begin(self, info: dict[str, Any]) -> None: ...

    def on_batch_end(
        self, epoch: int, batch: int, batches: int, loss: float, seen: int
    ) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | None: ...

    def on_train_end(self, history: History) -> None: ...


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``restore_best`` the network ends with the best epoch's weights."""

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True
    mode: str = "auto"  # auto: max for accuracy-like metrics, min otherwise

    @property
    def maximize(self) -> bool:
        if self.mode != "auto":
            return self.mode == "max"
        return self.monitor.removeprefix("val_") == "accuracy"

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best + self.min_delta if self.maximize else value < best - self.min_delta


@dataclass
class EarlyStop:
    """Why early stopping ended a run: ``epoch`` was the last trained, and ``monitor`` had not
    improved on its ``best_epoch`` for more than ``patience`` epochs; ``restored``: the network
    holds the best epoch's weights (else the last epoch's)."""

    epoch: int
    monitor: str
    patience: int
    best_epoch: int
    best_value: float
    restored: bool


@dataclass
class History:
    """Per-epoch logs plus what early stopping found (``monitor``: the metric ``best_*`` is of;
    ``restored``: the network ends with the best epoch's weights, not the last epoch's)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    monitor: str | None = None
    early_stop: EarlyStop | None = None
    restored: bool = False
    last_weights: dict[str, np.ndarray] | None = (
        None  # the last epoch's, when the best were restored
    )

    def column(self, key: str) -> list[float]:
        return [e.get(key, math.nan) for e in self.epochs]


def _batch(arr: Any, idx: np.ndarray, net: Sequential) -> Any:
    return None if arr is None else net.backend.asarray(arr[idx], dtype=None)


def _trim(x: Any, mask: Any) -> tuple[Any, Any]:
    """Cut a padded batch to its longest real sequence (fewer time steps to run)."""
    if mask is None:
        return x, None
    steps = int(mask.any(axis=0).nonzero()[0].max()) + 1 if mask.any() else 1
    return x[:, :steps], mask[:, :steps]


def _device_batch(
    net: Sequential,
    x: np.ndarray,
    y: np.ndarray | None,
    mask: np.ndarray | None,
    idx: np.ndarray,
    change: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[Any, Any, Any]:
    xb, mb = x[idx], None if mask is None else mask[idx]
    if change is not None:  # training augmentation, on the host batch
        xb = change(xb)
    yb = None if y is None else y[idx]
    if mb is not None:
        xb, mb = _trim(xb, mb)
        if yb is not None and yb.ndim == 3:
            yb = yb[:, : mb.shape[1]]
    b = net.backend
    return (
        b.asarray(xb),
        None if yb is None else b.asarray(yb),
        None if mb is None else b.asarray(mb, dtype=bool),
    )


def fit(
    net: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int | str = 32,
    shuffle: bool = True,
    seed: int = 0,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    mask: np.ndarray | None = None,
    validation_mask: np.ndarray | None = None,
    callbacks: list[Callback] | tuple = (),
    early_stopping: EarlyStopping | None = None,
    initial_epoch: int = 0,
    history: History | None = None,
    best_weights: dict[str, np.ndarray] | None = None,
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    target_scale: np.ndarray | None = None,
) -> History:
    """Train for epochs ``initial_epoch + 1 .. epochs``; returns the history (all epochs).

    ``target_scale`` (k,): scaled targets times it are in the file's units; RMSE and MAE are
    reported in those units (see ``RunningMetrics``).

    ``augment(x_batch, rng)`` changes each training batch on the host (never validation); its
    generator is made once per epoch from (seed, STREAM_AUGMENT, epoch), so resuming is exact.
    """
    n = len(x)
    if n == 0:
        raise DataError("no training rows")
    size = resolve_batch_size(batch_size, n)
    if size > n:
        raise SpecError(
            f"expected at most {n} (the training rows), got {size}", field="training.batch_size"
        )
    history = history or History()
    fused = net.fuse_output(loss.fused_activation)
    task = loss.task
    batches = math.ceil(n / size)
    info = {"samples": n, "batches": batches, "epochs": epochs, "initial_epoch": initial_epoch}
    for cb in callbacks:
        cb.on_train_begin(info)
    wait = _epochs_since_best(history)
    last_finite = next((e["loss"] for e in reversed(history.epochs)), None)

    for epoch in range(initial_epoch + 1, epochs + 1):
        started = time.perf_counter()
        net.set_rng(rng_for(seed, STREAM_DROPOUT, epoch))
        change = None
        if augment is not None:
            change = partial(_augment_with, augment, rng_for(seed, STREAM_AUGMENT, epoch))
        running = RunningMetrics(task, target_scale)
        norms: list[float] = []
        seen = 0
        for b, idx in enumerate(epoch_batches(n, size, seed=seed, epoch=epoch, shuffle=shuffle)):
            xb, yb, mb = _device_batch(net, x, y, mask, idx, change)
            p = net.forward(xb, training=True, mask=mb)
            loss_mask = mb if mb is not None and yb.ndim == mb.ndim + 1 else None
            value = float(loss.forward(p, yb, mask=loss_mask, logits=net.logits if fused else None))
            if not math.isfinite(value):
                raise _diverged(epoch, b + 1, f"the loss became {value}", last_finite)
            net.backward(loss.backward())
            norm = optimizer.step(net.named_parameters(), net.named_gradients())
            if norm is not None:
                if not math.isfinite(norm):
                    raise _diverged(epoch, b + 1, f"the gradient norm became {norm}", last_finite)
                norms.append(norm)
            last_finite = value
            running.add(value, p, yb, mb)
            seen += len(idx)
            for cb in callbacks:
                cb.on_batch_end(epoch, b + 1, batches, value, seen)
        logs: dict[str, float] = {"epoch": epoch, **running.result()}
        if norms:
            logs["grad_norm"] = float(np.mean(norms))
        if validation is not None:
            val = evaluate(net, loss, *validation, mask=validation_mask, target_scale=target_scale)
            logs.update({f"val_{k}": v for k, v in val.items()})
        logs["time"] = time.perf_counter() - started
        history.epochs.append(logs)

        stop = False
        if early_stopping is not None:
            value = logs.get(early_stopping.monitor)
            if value is None:
                known = [k for k in logs if k not in ("epoch", "time")]
                raise SpecError(
                    f"expected one of {', '.join(known)}, got {early_stopping.monitor!r}"
                    + did_you_mean(early_stopping.monitor, known),
                    field="training.early_stopping.monitor",
                )
            if early_stopping.improved(value, history.best_value):
                history.best_value, history.best_epoch, wait = value, epoch, 0
                if early_stopping.restore_best:
                    best_weights = net.get_weights()
            else:
                wait += 1
                stop = wait > early_stopping.patience
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(epoch, logs)) or stop
        if stop:
            history.stopped_early = epoch < epochs
            if early_stopping is not None and wait > early_stopping.patience:
                history.early_stop = _early_stop(history, early_stopping, epoch, best_weights)
            break

    if early_stopping is not None:
        history.monitor = early_stopping.monitor
    if early_stopping is not None and early_stopping.restore_best and best_weights is not None:
        history.last_weights = net.get_weights()  # what a resumed run continues from
        net.set_weights(best_weights)
        history.restored = True
    for cb in callbacks:
        cb.on_train_end(history)
    return history


def _augment_with(augment: Callable, rng: np.random.Generator, xb: np.ndarray) -> np.ndarray:
    return augment(xb, rng)


def _early_stop(
    history: History, early_stopping: EarlyStopping, epoch: int, best_weights: Any
) -> EarlyStop:
    return EarlyStop(
        epoch=epoch,
        monitor=early_stopping.monitor,
        patience=early_stopping.patience,
        best_epoch=int(history.best_epoch),
        best_value=float(history.best_value),
        restored=early_stopping.restore_best and best_weights is not None,
    )


def _epochs_since_best(history: History) -> int:
    if history.best_epoch is None or not history.epochs:
        return 0
    return int(history.epochs[-1]["epoch"]) - history.best_epoch


def _diverged(epoch: int, batch: int, what: str, last: float | None) -> DivergedError:
    last_text = "none" if last is None else f"{last:.6g}"
    err = DivergedError(
        f"training diverged at epoch {epoch}, batch {batch}: {what} (last finite loss {last_text})"
    )
    err.epoch, err.batch, err.last_loss = epoch, batch, last
    return err


def predict(
    net: Sequential,
    x: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    batch_size: int = PREDICT_BATCH,
) -> np.ndarray:
    """Network outputs for every row of ``x``, on the host, in order."""
    outputs = []
    for start in range(0, len(x), batch_size):
        idx = slice(start, start + batch_size)  # a view, not a copy of the rows
        xb, _, mb = _device_batch(net, x, None, mask, idx)
        out = net.backend.to_host(net.forward(xb, training=False, mask=mb))
        if mb is not None and out.ndim == 3 and out.shape[1] < x.shape[1]:
            out = np.pad(out, ((0, 0), (0, x.shape[1] - out.shape[1]), (0, 0)))
        outputs.append(out)
    if not outputs:
        return np.zeros((0, *net.output_shape), dtype=net.backend.dtype)
    return np.concatenate(outputs)


def evaluate(
    net: Sequential,
    loss: Loss,
    x: np.ndarray,
    y: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    batch_size: int = PREDICT_BATCH,
    target_scale: np.ndarray | None = None,
) -> dict[str, float]:
    """Loss and metrics (accuracy, or RMSE and MAE, in the file's units with ``target_scale``)
    over a whole set, without training."""
    fused = net.fuse_output(loss.fused_activation)
    running = RunningMetrics(loss.task, target_scale)
    for start in range(0, len(x), batch_size):
        idx = slice(start, start + batch_size)  # a view, not a copy of the rows
        xb, yb, mb = _device_batch(net, x, y, mask, idx)
        p = net.forward(xb, training=False, mask=mb)
        loss_mask = mb if mb is not None and yb.ndim == mb.ndim + 1 else None
        value = float(loss.forward(p, yb, mask=loss_mask, logits=net.logits if fused else None))
        running.add(value, p, yb, mb)
    return running.result()
