"""nncli's side of a workload, through the engine's public API (``Sequential`` and ``fit``).

A timed run restores the state saved after the warm-up (weights and the optimizer's exported
state, into a fresh optimizer) and replays the same epoch with ``fit(initial_epoch=...)``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from child import rss_kib
from workloads import Workload, make_data, one_hot

FIRST_LOSSES = 8


def _fresh(w: Workload, weights: Any, backend: Any) -> tuple[Any, Any, Any]:
    from nncli.engine.losses import make_loss
    from nncli.engine.network import Sequential
    from nncli.engine.optimizers import Adam

    net = Sequential(w.layers, w.input_shape, backend=backend, seed=0)
    if weights is not None:
        net.set_weights(weights)
    return net, make_loss("cross_entropy"), Adam(learning_rate=1e-3)


def run(w: Workload, args: Any) -> dict[str, Any]:
    import nncli
    from nncli.backend import get_backend
    from nncli.training.callbacks import Callback
    from nncli.training.loop import fit, predict

    backend = get_backend(getattr(args, "device", "cpu"))  # the GPU: CuPy, data still on the host
    weights = dict(np.load(args.weights)) if args.weights else None
    x, labels = make_data(w, args.quick)
    y = one_hot(labels, w.classes)
    net, loss, opt = _fresh(w, weights, backend)
    out: dict[str, Any] = {"version": nncli.__version__, "numpy": np.__version__}
    try:
        from nncli.engine import kernels

        out["kernels"] = kernels.active()
    except ImportError:  # an nncli from before the optional kernels
        out["kernels"] = "numpy"

    if w.kind == "infer":
        predict(net, x[: w.infer_batch], batch_size=w.infer_batch)  # warm-up
        out["rss_setup_kib"] = rss_kib()
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            predict(net, x, batch_size=w.infer_batch)
            times.append(time.perf_counter() - t0)
        out["times"], out["samples"] = times, len(x)
        return out

    class Losses(Callback):
        def __init__(self) -> None:
            self.values: list[float] = []

        def on_batch_end(self, epoch, batch, batches, value, seen):
            if len(self.values) < FIRST_LOSSES:
                self.values.append(float(value))

    def train(epochs: int, initial: int, callbacks=()) -> Any:
        return fit(net, loss, opt, x, y, epochs=epochs, batch_size=w.batch, seed=0,
                   initial_epoch=initial, callbacks=callbacks)  # fmt: skip

    out["rss_setup_kib"] = rss_kib()
    if args.mode in ("long", "epochs"):  # consecutive epochs from the initial weights
        history = train(args.epochs, 0)
        out["epoch_times"] = [e["time"] for e in history.epochs]
        return out

    first = Losses()
    start = 0 if w.epochs > 1 else 1  # W4 times its whole fit; others replay epoch 2
    if start == 0:
        saved = (net.get_weights(), {}, 0)
        train(w.epochs, 0, [first])  # the warm-up is the same whole fit
    else:
        train(1, 0, [first])
        saved = (net.get_weights(), _copy(opt.export_state()), opt.step_count)
    out["losses"] = first.values
    times = []
    for _ in range(args.reps):
        net.set_weights(saved[0])
        opt = type(opt)(learning_rate=opt.learning_rate)
        if saved[2]:
            opt.load_state(_copy(saved[1]), saved[2], backend)
        t0 = time.perf_counter()
        history = train(start + w.epochs, start)
        times.append(time.perf_counter() - t0)
    out["times"] = times
    out["final_loss"] = history.epochs[-1]["loss"]
    out["final_accuracy"] = history.epochs[-1].get("accuracy")
    return out


def _copy(state: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: {s: np.array(a, copy=True) for s, a in slots.items()} for n, slots in state.items()}
