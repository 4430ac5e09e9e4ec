"""The training loop's side of ``data.streaming`` (nncli/data/streaming.py): a streamed part's
batches come from its own seeded order (chunks drawn by epoch, rows shuffled in a bounded
buffer) rather than from indices into arrays held whole; its metrics add up batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from nncli.data.streaming import Streamed
from nncli.engine import feeds
from nncli.engine.losses import Loss
from nncli.engine.network import Sequential
from nncli.training.loop import loss_value
from nncli.training.metrics import RunningMetrics
from nncli.training.parallel import SINGLE, World
from nncli.training.scores import scores


def streamed_batches(
    x: Streamed, size: int, config: Any, epoch: int, change: Callable | None, world: World
) -> Iterator[tuple[tuple[range, slice | None], tuple[np.ndarray, np.ndarray, None]]]:
    """One epoch's training batches of ``x``'s stream as ``fit`` takes them: ((the global
    batch's rows, this process's share of them or None), (x, y, no mask)), augmented by
    ``change`` when there is one. Several processes: each reads its own chunks
    (``Stream.shares``)."""
    seed, shuffle = config.seed, config.shuffle
    if not world.parallel:
        for xb, yb in x.stream.batches(size, seed, epoch, shuffle):
            yield (range(len(xb)), None), (xb if change is None else change(xb), yb, None)
        return
    for xb, yb, first, rows in x.stream.shares(size, seed, epoch, shuffle, world.rank, world.size):
        yield (range(rows), slice(first, first + len(xb))), (xb, yb, None)


def evaluate_streamed(
    net: Sequential,
    loss: Loss,
    x: Streamed,
    batch_size: int,
    target_scale: np.ndarray | None = None,
    metrics: Sequence[str] = (),
    world: World = SINGLE,
) -> dict[str, float]:
    """``evaluate`` over a streamed part, in file order: loss, accuracy or RMSE and MAE summed
    batch by batch; the named ``metrics`` from the outputs and targets gathered (N, K) each.
    Several processes: each scores its own chunks and the sums are combined (with named
    ``metrics`` every process scores every row)."""
    fused = net.fuse_output(loss.fused_activation)
    running = RunningMetrics(loss.task, target_scale)
    outputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    extra = [m for m in metrics if m not in RunningMetrics(loss.task).result()]
    shared = world.parallel and not extra
    batches = x.stream.batches(batch_size)
    if shared:
        every = x.stream.shares(batch_size, 0, 0, False, world.rank, world.size)
        batches = ((xb, yb) for xb, yb, *_ in every)
    for host in batches:
        xb, yb, _ = feeds.to_device(net.backend, host[0], host[1], None)
        p = net.forward(xb, training=False)
        value = loss_value(net, loss, p, yb, None, fused)
        if shared:  # the global batch's loss: a share may hold no rows
            value, _ = world.mean_loss(value, loss.total)
        running.add(value, p, yb, None)
        if extra:
            outputs.append(net.backend.to_host(p))
            targets.append(host[1])
    if shared:
        running.combine(world.sum)
    result = running.result()
    if extra and outputs:
        y, p = np.concatenate(targets), np.concatenate(outputs)
        result.update(scores(extra, y, p, None, target_scale))
    return result
