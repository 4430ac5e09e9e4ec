"""The training loop's side of ``data.streaming`` (nncli/data/streaming.py): a streamed part's
batches come from its own seeded order (chunks drawn by epoch, rows shuffled in a bounded
buffer) rather than from indices into arrays held whole; its metrics add up batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from nncli.data.streaming import Streamed
from nncli.engine.losses import Loss
from nncli.engine.network import Sequential
from nncli.training.loop import BATCH_TYPES, loss_value
from nncli.training.metrics import RunningMetrics
from nncli.training.scores import scores


def streamed_batches(
    x: Streamed, size: int, seed: int, epoch: int, shuffle: bool, change: Callable | None
) -> Iterator[tuple[tuple[range, None], tuple[np.ndarray, np.ndarray, None]]]:
    """One epoch's training batches of ``x``'s stream as ``fit`` takes them: ((rows, no share),
    (x, y, no mask)), augmented by ``change`` when there is one."""
    for xb, yb in x.stream.batches(size, seed, epoch, shuffle):
        yield (range(len(xb)), None), (xb if change is None else change(xb), yb, None)


def evaluate_streamed(
    net: Sequential,
    loss: Loss,
    x: Streamed,
    batch_size: int,
    target_scale: np.ndarray | None = None,
    metrics: Sequence[str] = (),
) -> dict[str, float]:
    """``evaluate`` over a streamed part, in file order: loss, accuracy or RMSE and MAE summed
    batch by batch; the named ``metrics`` from the outputs and targets gathered (N, K) each."""
    fused = net.fuse_output(loss.fused_activation)
    running = RunningMetrics(loss.task, target_scale)
    outputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for host in x.stream.batches(batch_size):
        xb, yb = net.backend.to_device(*host, dtypes=BATCH_TYPES[:2])
        p = net.forward(xb, training=False)
        running.add(loss_value(net, loss, p, yb, None, fused), p, yb, None)
        if metrics:
            outputs.append(net.backend.to_host(p))
            targets.append(host[1])
    result = running.result()
    extra: list[Any] = [m for m in metrics if m not in result]
    if extra and outputs:
        y, p = np.concatenate(targets), np.concatenate(outputs)
        result.update(scores(extra, y, p, None, target_scale))
    return result
