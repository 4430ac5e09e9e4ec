"""What ``fit`` reports to and what may stop it: the ``Callback`` hooks, early stopping (a
callback that keeps the best weights, recorded in the run's ``History``,
nncli/engine/history.py) and the periodic checkpoints of ``training.checkpoint_every``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nncli.backend import array_module
from nncli.engine.history import EarlyStop, History
from nncli.engine.registry import did_you_mean
from nncli.engine.schedules import improves_upwards
from nncli.errors import SpecError


class Callback:
    """Hooks ``fit`` calls; override what you need. ``on_epoch_end`` may return True to stop."""

    def on_train_begin(self, info: dict[str, Any]) -> None: ...

    def on_batch_end(
        self, epoch: int, batch: int, batches: int, loss: float, seen: int
    ) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | None: ...

    def on_train_end(self, history: History) -> None: ...


@dataclass
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs (for
    more than ``patience`` unless ``keras_patience``); with
    ``restore_best`` the network ends with the best epoch's weights.

    ``fit`` calls ``begin`` and puts it first among the callbacks, so that the best weights
    are known before any other callback (a periodic checkpoint) looks at the epoch."""

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True
    mode: str = "auto"  # auto: max for accuracy, f1, auc and r2, min otherwise
    # True: stop once ``patience`` epochs passed without improvement (Keras's rule, spec
    # version 2); False: once more than ``patience`` did (spec version 1)
    keras_patience: bool = False
    wait: int = field(default=0, init=False, repr=False, compare=False)
    best_weights: Any = field(default=None, init=False, repr=False, compare=False)
    net: Any = field(default=None, init=False, repr=False, compare=False)
    history: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def maximize(self) -> bool:
        if self.mode != "auto":
            return self.mode == "max"
        return improves_upwards(self.monitor)

    @property
    def exhausted(self) -> bool:
        """Patience ran out: the run stops here (Keras's patience 0 stops at the first epoch
        without improvement, as its patience 1 does)."""
        if self.keras_patience:
            return self.wait >= max(self.patience, 1)
        return self.wait > self.patience

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best + self.min_delta if self.maximize else value < best - self.min_delta

    def begin(self, net: Any, history: History, best_weights: dict | None) -> None:
        """Watch ``net`` from ``history`` on (a resumed run continues its wait)."""
        self.net, self.history, self.best_weights = net, history, best_weights
        self.wait = epochs_since_best(history)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        value = logs.get(self.monitor)
        if value is None:
            known = [k for k in logs if k not in ("epoch", "time")]
            raise SpecError(
                f"expected one of {', '.join(known)}, got {self.monitor!r}"
                + did_you_mean(self.monitor, known),
                field="training.early_stopping.monitor",
            )
        history = self.history
        if self.improved(value, history.best_value):
            history.best_value, history.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = self.net.get_weights()
            return False
        self.wait += 1
        return self.exhausted

    def early_stop(self, epoch: int) -> EarlyStop:
        return EarlyStop(
            epoch=epoch,
            monitor=self.monitor,
            patience=self.patience,
            best_epoch=int(self.history.best_epoch),
            best_value=float(self.history.best_value),
            restored=self.restore_best and self.best_weights is not None,
        )

    def on_train_end(self, history: History) -> None:
        history.monitor = self.monitor
        if self.restore_best and self.best_weights is not None:
            history.last_weights = self.net.get_weights()  # what a resumed run continues from
            self.net.set_weights(self.best_weights)
            history.restored = True


def epochs_since_best(history: History) -> int:
    if history.best_epoch is None or not history.epochs:
        return 0
    return int(history.epochs[-1]["epoch"]) - history.best_epoch


class PeriodicCheckpoints(Callback):
    """``training.checkpoint_every: N``: every N epochs save the latest state, and the best."""

    def __init__(
        self,
        every: int,
        save: Any,
        latest: Path,
        best: Path,
        early_stopping: EarlyStopping | None,
        history: History,
    ):
        self.every, self.save, self.latest, self.best = every, save, latest, best
        self.es, self.history = early_stopping, history
        self.last_good: Path | None = None
        self.saved_epoch: int | None = None  # the epoch ``latest`` holds

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if epoch % self.every == 0:
            self.save(self.latest)
            self.last_good, self.saved_epoch = self.latest, epoch
        if self.es is not None and self.history.best_epoch == epoch:
            self.save(self.best)


@dataclass
class EpochState:
    """A run at the end of ``epoch``: copies of the weights (parameters and state) and of the
    optimizer's slots where they live (on a GPU they stay there), the optimizer's step, the
    schedule's state, how many history rows, and early stopping's best."""

    epoch: int
    weights: dict[str, Any]
    slots: dict[str, dict[str, Any]]
    step: int
    schedule: dict[str, Any] | None
    rows: int
    best_epoch: int | None
    best_value: float | None
    best_weights: dict[str, np.ndarray] | None


def _copies(arrays: Any) -> dict[str, Any]:
    """A copy of each array on its own device: no transfer, no synchronisation."""
    return {name: array_module(a).copy(a) for name, a in arrays.items()}


class LastEpoch(Callback):
    """Keeps the state at the end of the last completed epoch (replaced each epoch), so that a
    run stopped in the middle of the next one can save it: ``restore`` writes it back into the
    network, optimizer, schedule and history. Put it right after the checks of an epoch's
    weights and before any callback that may stop the run."""

    def __init__(self, net: Any, optimizer: Any, schedule: Any, history: History, stopper: Any):
        self.net, self.optimizer, self.schedule = net, optimizer, schedule
        self.history, self.stopper = history, stopper
        self.state: EpochState | None = None

    def _arrays(self) -> dict[str, Any]:
        return {**self.net.named_parameters(), **self.net.named_state()}

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        history, optimizer = self.history, self.optimizer
        self.state = EpochState(  # built whole, then kept: a signal never leaves half of one
            epoch=epoch,
            weights=_copies(self._arrays()),
            slots={name: _copies(slots) for name, slots in optimizer.state.items()},
            step=optimizer.step_count,
            schedule=None if self.schedule is None else dict(self.schedule.state()),
            rows=len(history.epochs),
            best_epoch=history.best_epoch,
            best_value=history.best_value,
            best_weights=None if self.stopper is None else self.stopper.best_weights,
        )

    def restore(self) -> EpochState | None:
        """Write the kept state back, in place (the history loses any later row) -> it, or None
        when no epoch has completed."""
        state = self.state
        if state is None:
            return None
        for name, array in self._arrays().items():
            array[...] = state.weights[name]
        optimizer = self.optimizer
        for name, slots in state.slots.items():
            for slot, array in slots.items():
                optimizer.state[name][slot][...] = array
        optimizer.step_count = state.step
        if self.schedule is not None and state.schedule is not None:
            self.schedule.load_state(state.schedule)
        history = self.history
        del history.epochs[state.rows :]
        history.best_epoch, history.best_value = state.best_epoch, state.best_value
        return state


class MonitorReport(Callback):
    """After each epoch, ``report(epoch, logs[monitor])``: how a search's pruner watches a trial
    (``report`` may raise to stop a hopeless one)."""

    def __init__(self, monitor: str, report: Any):
        self.monitor, self.report = monitor, report

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor in logs:
            self.report(epoch, float(logs[self.monitor]))


def kept_value(history: History, monitor: str) -> float:
    """The monitored metric of the weights a run keeps: the best epoch's when early stopping
    restored them, else the last epoch's (NaN when the run logged no such metric)."""
    if history.restored and history.best_value is not None and history.monitor == monitor:
        return float(history.best_value)
    if not history.epochs:
        return math.nan
    return float(history.epochs[-1].get(monitor, math.nan))


FIRST = ("loss", "accuracy", "rmse", "mae")  # the epoch line's order; other metrics follow
NOT_METRICS = ("epoch", "time", "lr", "grad_norm")


def beside(logs: dict[str, float], monitor: str) -> str:
    """An epoch's other metrics of the monitor's set, for the lines that name a best epoch:
    the validation ones beside a ``val_*`` monitor, the training ones beside any other, e.g.
    ``val_accuracy 0.9333, val_f1 0.9`` beside val_loss ("" when there are none)."""
    validation = monitor.startswith("val_")

    def rank(name: str) -> tuple[int, str]:
        bare = name.removeprefix("val_")
        return (FIRST.index(bare) if bare in FIRST else len(FIRST), bare)

    names = [
        name
        for name, value in logs.items()
        if name != monitor
        and name not in NOT_METRICS
        and name.startswith("val_") == validation
        and not math.isnan(float(value))
    ]
    return ", ".join(f"{name} {float(logs[name]):.4g}" for name in sorted(names, key=rank))
