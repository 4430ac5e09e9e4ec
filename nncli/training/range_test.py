"""Smith's learning-rate range test (Cyclical Learning Rates, 2017; fastai's ``lr_find``): train
from the initial weights with a rate growing exponentially from ``low`` to ``high`` over at most
``steps`` batches, follow the loss smoothed by an exponential moving average (with the bias
correction Adam uses), stop once it explodes, and suggest the rate where the smoothed loss falls
fastest (its steepest descent against log rate). Never prints; ``nncli lr-find`` says it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncli.engine.losses import Loss
from nncli.engine.network import Network
from nncli.engine.optimizers import Optimizer
from nncli.training.batching import epoch_batches, resolve_batch_size
from nncli.training.loop import loss_value

BETA = 0.98  # the moving average's weight of the past (fastai's)
EXPLODES = 4.0  # the smoothed loss over this many times its best so far: the test stops


@dataclass
class RangeTest:
    """Each step's rate, loss and smoothed loss (as many as ran), why it stopped, the rate it
    suggests and the bounds swept."""

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stopped: str  # "exploded", "non-finite loss" or "last step"
    suggestion: float
    low: float
    high: float


def rate_at(step: int, steps: int, low: float, high: float) -> float:
    """low (high / low)^(step / (steps - 1)): ``low`` at step 0, ``high`` at the last."""
    return low * (high / low) ** (step / max(steps - 1, 1))


def steepest(rates: np.ndarray, smoothed: np.ndarray) -> float:
    """The rate where the smoothed loss falls fastest against log rate, before its minimum and
    past the first tenth of the steps (the average still settling); with too few points before
    the minimum, a tenth of the rate there, never below the first rate swept."""
    skip = max(1, len(rates) // 10)
    lowest = int(np.argmin(smoothed))
    if lowest - skip < 2:
        return float(max(rates[lowest] / 10, rates[0]))
    slope = np.gradient(smoothed[: lowest + 1], np.log(rates[: lowest + 1]))
    return float(rates[skip + int(np.argmin(slope[skip:]))])


def range_test(
    net: Network,
    loss: Loss,
    optimizer: Optimizer,
    data: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    *,
    batch_size: int | str,
    seed: int,
    steps: int = 100,
    low: float = 1e-7,
    high: float = 10.0,
) -> RangeTest:
    """Train ``net`` (changed in place: hand it a copy) on ``data`` (x, y, mask) in the seed's
    batch order, epoch after epoch, one rate per step -> what the test saw."""
    x, y, mask = data
    size = resolve_batch_size(batch_size, len(x))
    fused = net.fuse_output(loss.fused_activation)
    rates, losses, smoothed = [], [], []
    average, best, stopped = 0.0, math.inf, "last step"
    for step, idx in enumerate(_batches(len(x), size, seed, steps)):
        optimizer.learning_rate = rate_at(step, steps, low, high)
        value = _step(
            net, loss, optimizer, (x[idx], y[idx], None if mask is None else mask[idx]), fused
        )
        if not math.isfinite(value):
            stopped = "non-finite loss"
            break
        average = BETA * average + (1 - BETA) * value
        rates.append(optimizer.learning_rate)
        losses.append(value)
        smoothed.append(average / (1 - BETA ** (step + 1)))
        best = min(best, smoothed[-1])
        if step > steps // 10 and smoothed[-1] > EXPLODES * best:
            stopped = "exploded"
            break
    r, s = np.asarray(rates), np.asarray(smoothed)
    suggestion = steepest(r, s) if len(r) else low
    return RangeTest(r, np.asarray(losses), s, stopped, suggestion, low, high)


def _batches(n: int, size: int, seed: int, steps: int):
    """``steps`` batches of the seed's order, epoch after epoch."""
    epoch, given = 1, 0
    while True:
        for idx in epoch_batches(n, size, seed=seed, epoch=epoch):
            if given == steps:
                return
            yield idx
            given += 1
        epoch += 1


def _step(net: Network, loss: Loss, optimizer: Optimizer, batch: tuple, fused: bool) -> float:
    """One forward, backward and optimizer step -> the batch's loss."""
    xb, yb, mb = net.backend.to_device(*batch, dtypes=(None, None, bool))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p = net.forward(xb, training=True, mask=mb)
        value = float(loss_value(net, loss, p, yb, mb, fused))
        if not math.isfinite(value):
            return value
        net.backward(loss.backward())
        optimizer.step(net.trainable(net.named_parameters()), net.trainable(net.named_gradients()))
    return value


def pairs(test: RangeTest) -> list[dict[str, Any]]:
    """The CSV's rows: step, learning_rate, loss, smoothed_loss."""
    return [
        {"step": i + 1, "learning_rate": float(r), "loss": float(v), "smoothed_loss": float(s)}
        for i, (r, v, s) in enumerate(zip(test.rates, test.losses, test.smoothed, strict=True))
    ]
