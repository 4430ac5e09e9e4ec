"""Training, evaluation and prediction over host arrays. Reports through callbacks; never prints.

``fit`` moves one batch at a time onto the network's device, runs forward, loss, backward and one
optimizer step, and keeps per-epoch history. The batch order and dropout masks derive from the
seed and the epoch number, so a run resumed at an epoch boundary continues bit for bit.

With several processes (``FitConfig.world``, nncli/training/parallel.py) each takes its share
of every batch; the hooks here are the share, the global loss before backward, the gradient sum
before the optimizer step and the metrics' sums at the end of an epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from nncli.data.streaming import Streamed
from nncli.data.streams import STREAM_AUGMENT, STREAM_DROPOUT, rng_for
from nncli.engine import feeds
from nncli.engine.history import History
from nncli.engine.losses import Loss
from nncli.engine.network import Sequential
from nncli.engine.optimizers import Optimizer
from nncli.engine.schedules import Schedule
from nncli.errors import DataError, SpecError
from nncli.training.batching import epoch_batches, resolve_batch_size
from nncli.training.callbacks import Callback, EarlyStopping
from nncli.training.deferred import FiniteChecks, mean_norm
from nncli.training.metrics import RunningMetrics
from nncli.training.parallel import SINGLE, World
from nncli.training.scores import scores
from nncli.training.spread import batch_positions, hold, is_spread

PREDICT_BATCH = 1024


@dataclass
class FitConfig:
    """How ``fit`` trains: epochs ``initial_epoch + 1 .. epochs`` in batches of ``batch_size``.

    ``target_scale`` (k,): scaled targets times it are in the file's units; RMSE and MAE are
    reported in those units (see ``RunningMetrics``). ``augment(x_batch, rng)`` changes each
    training batch on the host (never validation; ``augment(x_share, rng, share, rows)`` when a
    process holds part of a batch of ``rows``); its generator is made once per epoch from
    (seed, STREAM_AUGMENT, epoch), so resuming is exact. ``history`` and ``best_weights``
    continue a resumed run. ``schedule`` sets the optimizer's rate at each epoch's start from
    the rate the optimizer starts with; every epoch logs its rate as ``lr``. ``metrics``: the
    spec's ``metrics``, logged on the validation set as ``val_<name>``."""

    epochs: int
    batch_size: int | str = 32
    shuffle: bool = True
    seed: int = 0
    validation: tuple[np.ndarray, np.ndarray] | None = None
    mask: np.ndarray | None = None
    validation_mask: np.ndarray | None = None
    callbacks: Sequence[Callback] = ()
    early_stopping: EarlyStopping | None = None
    initial_epoch: int = 0
    history: History | None = None
    best_weights: dict[str, np.ndarray] | None = None
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None
    target_scale: np.ndarray | None = None
    schedule: Schedule | None = None
    metrics: Sequence[str] = ()
    world: World = SINGLE  # the processes sharing each batch (nncli/training/parallel.py)


def _steps(mask: np.ndarray) -> int:
    """The batch's longest real sequence (padded steps past it need not run)."""
    return int(mask.any(axis=0).nonzero()[0].max()) + 1 if mask.any() else 1


def _rows(idx: Any, share: slice | None) -> Any:
    """The rows of batch ``idx`` (indices or a slice of the set) this process holds."""
    if share is None:
        return idx
    if isinstance(idx, slice):
        return slice(idx.start + share.start, idx.start + share.stop)
    return idx[share]


def _host_batch(
    x: np.ndarray,
    y: np.ndarray | None,
    mask: np.ndarray | None,
    idx: Any,
    change: Callable[[np.ndarray], np.ndarray] | None = None,
    share: slice | None = None,
) -> tuple[Any, Any, Any]:
    """This process's ``share`` of batch ``idx`` (all of it when None) as host arrays x, y and
    the mask; augmentation and the trim of padded steps follow the whole batch, so they do not
    depend on how many processes share it. ``backend.to_device`` moves them in one transfer."""
    rows = _rows(idx, share)
    xb, mb = feeds.take(x, rows), feeds.take(mask, rows)
    if change is not None:  # training augmentation, drawn for the whole batch, applied to rows
        xb = change(xb) if share is None else change(xb, share, len(idx))
    yb = None if y is None else y[rows]
    if isinstance(mb, dict):  # several inputs: each padded one trimmed to its own steps
        for name, m in mb.items():
            steps = _steps(m if share is None else mask[name][idx])
            xb[name], mb[name] = xb[name][:, :steps], m[:, :steps]
    elif mb is not None:
        steps = _steps(mb if share is None else mask[idx])
        xb, mb = xb[:, :steps], mb[:, :steps]
        if yb is not None and yb.ndim == 3:
            yb = yb[:, :steps]
    return xb, yb, mb


def _targets_mask(mask: Any) -> Any:
    """The mask that may weigh the targets: several inputs' masks ({input name: (N, T)}) mark
    their own padding, never the targets' steps."""
    return None if isinstance(mask, dict) else mask


def loss_value(net: Sequential, loss: Loss, p: Any, y: Any, mask: Any, fused: bool) -> Any:
    """The loss of outputs ``p`` against ``y`` (a fused output layer hands over its logits), a
    0-d array on the network's device (read it with ``float``: on a GPU that syncs); a mask
    weighs the loss only when the targets have a time axis like the mask's."""
    mask = _targets_mask(mask)
    loss_mask = mask if mask is not None and y.ndim == mask.ndim + 1 else None
    return loss.forward(p, y, mask=loss_mask, logits=net.logits if fused else None)


class _Epochs:
    """One training run's steps: a batch (forward, loss, backward, optimizer step), an epoch of
    batches, and the validation after it."""

    def __init__(self, net: Sequential, loss: Loss, optimizer: Optimizer, config: FitConfig):
        self.net, self.loss, self.optimizer, self.config = net, loss, optimizer, config
        self.world = config.world
        self.fused = net.fuse_output(loss.fused_activation)
        self.checks = FiniteChecks(net.backend, None)
        self.base_rate = optimizer.learning_rate
        if config.schedule is not None:
            config.schedule.begin(config.epochs)

    def rate(self, epoch: int) -> float:
        """Set the optimizer's learning rate for ``epoch`` -> that rate."""
        schedule = self.config.schedule
        if schedule is not None:
            self.optimizer.learning_rate = schedule.rate(self.base_rate, epoch)
        return self.optimizer.learning_rate

    def end(self) -> None:
        self.optimizer.learning_rate = self.base_rate
        self.net.share_batches(None)

    def batch(self, epoch: int, b: int, xb: Any, yb: Any, mb: Any) -> tuple[Any, Any, Any]:
        """One optimizer step -> (loss, outputs, the loss for callbacks); loss and gradient norm
        checked finite (on a GPU at the epoch's end, see ``deferred``)."""
        net = self.net
        p = net.forward(xb, training=True, mask=mb)
        value = loss_value(net, self.loss, p, yb, mb, self.fused)
        # several processes: the global batch's loss, and this share's weight in its gradient
        value, factor = self.world.mean_loss(value, self.loss.total)
        self.checks.loss(epoch, b, value)
        dy = self.loss.backward()
        net.backward(dy if factor == 1.0 else dy * factor)
        grads = net.trainable(net.named_gradients())  # a frozen layer's: neither summed nor used
        self.world.sum_gradients(grads)
        norm = self.optimizer.step(net.trainable(net.named_parameters()), grads)
        return value, p, self.checks.step(epoch, b, value, norm)

    def epoch(
        self, epoch: int, x: np.ndarray, y: np.ndarray, size: int, callbacks: Sequence[Callback]
    ) -> dict[str, float]:
        """Every batch of one epoch, in the order the seed gives it -> the epoch's logs."""
        config, net = self.config, self.net
        net.set_rng(rng_for(config.seed, STREAM_DROPOUT, epoch))
        change = None
        if config.augment is not None:
            rng = rng_for(config.seed, STREAM_AUGMENT, epoch)
            change = partial(_augment_with, config.augment, rng)
        running = RunningMetrics(self.loss.task, config.target_scale)
        seen, batches = 0, math.ceil(feeds.rows(x) / size)
        streamed = isinstance(x, Streamed)  # its own order: no permutation of every row here
        rows = 0 if streamed else feeds.rows(x)
        order = list(
            epoch_batches(rows, size, seed=config.seed, epoch=epoch, shuffle=config.shuffle)
        )
        if is_spread(x):  # rank 0 sends each rank its rows of this epoch's batches
            x = hold(x, batch_positions(self.world, order))
        shares = (
            (idx, self.world.share(len(idx)) if self.world.parallel else None) for idx in order
        )
        host = (((i, s), _host_batch(x, y, config.mask, i, change, s)) for i, s in shares)
        if streamed:  # larger than memory: batches in the stream's own seeded order
            from nncli.training.streamed import streamed_batches

            host = streamed_batches(x, size, config, epoch, change, self.world)
        ready = feeds.prefetched(net.backend, host)  # batch b + 1 moves while b computes
        for b, ((idx, share), (xb, yb, mb)) in enumerate(ready, start=1):
            if share is not None:
                net.set_share(share.start, len(idx))
            value, p, shown = self.batch(epoch, b, xb, yb, mb)
            running.add(value, p, yb, _targets_mask(mb))
            seen += len(idx)
            for cb in callbacks:
                cb.on_batch_end(epoch, b, batches, shown, seen)
        norms = self.checks.epoch_end(epoch)
        if self.world.parallel:
            running.combine(self.world.sum)
        return {"epoch": epoch, **running.result(), **mean_norm(norms)}

    def validate(self) -> dict[str, float]:
        """``val_*`` logs on the validation set; none without one."""
        config = self.config
        if config.validation is None:
            return {}
        val = evaluate(
            self.net,
            self.loss,
            *config.validation,
            mask=config.validation_mask,
            target_scale=config.target_scale,
            metrics=config.metrics,
            world=self.world,
        )
        return {f"val_{k}": v for k, v in val.items()}


def _batch_size(batch_size: int | str, n: int) -> int:
    if n == 0:
        raise DataError("no training rows")
    size = resolve_batch_size(batch_size, n)
    if size > n:
        raise SpecError(
            f"expected at most {n} (the training rows), got {size}", field="training.batch_size"
        )
    return size


def fit(
    net: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    config: FitConfig | None = None,
    **options: Any,
) -> History:
    """Train for epochs ``initial_epoch + 1 .. epochs``; returns the history (all epochs).

    ``options`` are the fields of ``FitConfig`` (``epochs=``, ``batch_size=``, ...), or pass
    ``config`` itself."""
    config = config or FitConfig(**options)
    size = _batch_size(config.batch_size, feeds.rows(x))
    history = config.history or History()
    stopper = config.early_stopping
    callbacks = [*([stopper] if stopper is not None else []), *config.callbacks]
    if stopper is not None:
        stopper.begin(net, history, config.best_weights)
    run = _Epochs(net, loss, optimizer, config)
    net.share_batches(config.world.sum if config.world.parallel else None)
    run.checks.last_finite = next((e["loss"] for e in reversed(history.epochs)), None)
    n = feeds.rows(x)
    info = {"samples": n, "batches": math.ceil(n / size), "epochs": config.epochs}
    info["initial_epoch"] = config.initial_epoch
    for cb in callbacks:
        cb.on_train_begin(info)
    for epoch in range(config.initial_epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        lr = run.rate(epoch)
        logs = run.epoch(epoch, x, y, size, callbacks)
        logs.update(run.validate())
        logs["lr"] = lr
        if config.schedule is not None:  # before the callbacks, so a checkpoint holds its state
            config.schedule.observe(epoch, logs)
        logs["time"] = time.perf_counter() - started
        history.epochs.append(logs)
        stop = False
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(epoch, logs)) or stop
        if stop:
            history.stopped_early = epoch < config.epochs
            if stopper is not None and stopper.exhausted:
                history.early_stop = stopper.early_stop(epoch)
            break
    run.end()
    for cb in callbacks:
        cb.on_train_end(history)
    return history


def _augment_with(augment: Callable, rng: np.random.Generator, xb: np.ndarray, *share: Any) -> Any:
    """``share``: (this process's slice of the batch, the batch's rows), when it holds part."""
    return augment(xb, rng, *share)


def predict(
    net: Sequential,
    x: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    batch_size: int = PREDICT_BATCH,
) -> np.ndarray:
    """Network outputs for every row of ``x``, on the host, in order."""
    outputs = []
    for start in range(0, feeds.rows(x), batch_size):
        idx = slice(start, start + batch_size)  # a view, not a copy of the rows
        host = _host_batch(x, None, mask, idx)
        xb, _, mb = feeds.to_device(net.backend, *host)
        out = net.backend.to_host(net.forward(xb, training=False, mask=mb))
        stepped = mb is not None and not isinstance(mb, dict) and out.ndim == 3
        if stepped and out.shape[1] < x.shape[1]:
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
    metrics: Sequence[str] = (),
    world: World = SINGLE,
) -> dict[str, float]:
    """Loss and metrics (accuracy, or RMSE and MAE, in the file's units with ``target_scale``,
    and the named ``metrics``) over a whole set, without training; with several processes each
    takes its share of every batch and the sums are combined."""
    if isinstance(x, Streamed):  # larger than memory: summed batch by batch in file order
        from nncli.training.streamed import evaluate_streamed

        return evaluate_streamed(net, loss, x, batch_size, target_scale, metrics, world)
    fused = net.fuse_output(loss.fused_activation)
    running = RunningMetrics(loss.task, target_scale)
    outputs, positions = [], []
    n = feeds.rows(x)
    if is_spread(x):  # each rank's rows of every batch, sent once and kept
        chunks = [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        x = hold(x, batch_positions(world, chunks), keep=("evaluate", batch_size))
    for start in range(0, n, batch_size):
        idx = slice(start, min(start + batch_size, n))  # a view, not a copy of the rows
        share = world.share(idx.stop - start) if world.parallel else None
        host = _host_batch(x, y, mask, idx, share=share)
        xb, yb, mb = feeds.to_device(net.backend, *host)
        p = net.forward(xb, training=False, mask=mb)
        value, _ = world.mean_loss(loss_value(net, loss, p, yb, mb, fused), loss.total)
        running.add(value, p, yb, _targets_mask(mb))
        if metrics:
            outputs.append(_padded(net.backend.to_host(p), y.shape))
            rows = _rows(idx, share)
            positions.append(np.arange(rows.start, rows.stop))
    if world.parallel:
        running.combine(world.sum)
    result = running.result()
    extra = [m for m in metrics if m not in result]
    if extra and outputs:
        p = world.gather(np.concatenate(outputs), np.concatenate(positions), n)
        result.update(scores(extra, y, p, _targets_mask(mask), target_scale))
    return result


def _padded(p: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A trimmed sequence batch's outputs padded back to the set's time steps."""
    if p.ndim == 3 and p.shape[1] < shape[1]:
        return np.pad(p, ((0, 0), (0, shape[1] - p.shape[1]), (0, 0)))
    return p
