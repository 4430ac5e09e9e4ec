"""Learning-rate schedules, stepped once per epoch as PyTorch's schedulers are when stepped per
epoch. The rate of epoch e (1-based) from the optimizer's ``learning_rate`` lr:

- ``step``: lr g^floor((e - 1) / N)  (``StepLR(step_size=N, gamma=g)``)
- ``exponential``: lr g^(e - 1)  (``ExponentialLR(gamma=g)``)
- ``cosine``: m + (lr - m) (1 + cos(pi (e - 1) / T)) / 2  (``CosineAnnealingLR(T_max=T)``)
- ``plateau``: lr times factor each time ``monitor`` has not improved for more than ``patience``
  epochs, never below m  (``ReduceLROnPlateau``, relative threshold 1e-4)

``warmup_epochs: k`` multiplies any of them by min(1, e / k). The rate is a pure function of the
epoch and the schedule's ``state()`` (plateau's reductions), so a resumed run continues exactly,
and a new base rate rescales it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from nncli.engine import checks
from nncli.engine.registry import Registry, did_you_mean
from nncli.errors import SpecError

SCHEDULES = Registry("schedule")

PLATEAU_THRESHOLD = 1e-4  # ReduceLROnPlateau's default relative threshold
PLATEAU_EPS = 1e-8  # ... and the smallest change of rate it makes
MAXIMIZED = ("accuracy", "f1", "auc", "r2")  # monitors that improve upwards


def improves_upwards(monitor: str) -> bool:
    """Whether a higher ``monitor`` (``val_f1``, ``test_accuracy``, ``loss``) is better: the one
    rule that early stopping's ``mode: auto``, the plateau schedule and a search share."""
    return monitor.removeprefix("val_").removeprefix("test_") in MAXIMIZED


class Schedule:
    """rate(lr, epoch) -> the learning rate of ``epoch`` (1-based); ``observe`` hears each
    epoch's logs (only plateau listens)."""

    type_name: ClassVar[str]

    def __init__(self, warmup_epochs: int = 0):
        self.warmup_epochs = checks.non_negative_int("warmup_epochs", warmup_epochs)

    def rate(self, lr: float, epoch: int) -> float:
        warm = min(1.0, epoch / self.warmup_epochs) if self.warmup_epochs else 1.0
        return self.scheduled(lr, epoch) * warm

    def scheduled(self, lr: float, epoch: int) -> float:
        raise NotImplementedError

    def begin(self, epochs: int) -> None:
        """A run of ``epochs`` epochs starts (cosine's default length)."""

    def observe(self, epoch: int, logs: dict[str, float]) -> None:
        """Plateau's step after an epoch; the others need nothing."""

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps for an exact resume (beside the spec's settings)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None: ...

    def config(self) -> dict[str, Any]:
        cfg = {"type": self.type_name, **self.settings()}
        return {**cfg, "warmup_epochs": self.warmup_epochs}

    def settings(self) -> dict[str, Any]:
        return {}


@SCHEDULES.register("step")
class StepDecay(Schedule):
    """lr g^floor((e - 1) / N)"""

    def __init__(self, step_size: int, gamma: float = 0.1, warmup_epochs: int = 0):
        super().__init__(warmup_epochs)
        self.step_size = checks.positive_int("step_size", step_size)
        self.gamma = checks.number("gamma", gamma, 0.0, low_open=True)

    def scheduled(self, lr, epoch):
        return lr * self.gamma ** ((epoch - 1) // self.step_size)

    def settings(self):
        return {"step_size": self.step_size, "gamma": self.gamma}


@SCHEDULES.register("exponential")
class ExponentialDecay(Schedule):
    """lr g^(e - 1)"""

    def __init__(self, gamma: float, warmup_epochs: int = 0):
        super().__init__(warmup_epochs)
        self.gamma = checks.number("gamma", gamma, 0.0, low_open=True)

    def scheduled(self, lr, epoch):
        return lr * self.gamma ** (epoch - 1)

    def settings(self):
        return {"gamma": self.gamma}


@SCHEDULES.register("cosine")
class CosineDecay(Schedule):
    """m + (lr - m) (1 + cos(pi (e - 1) / T)) / 2; T (``epochs``) defaults to the run's epochs,
    fixed when the run starts (``begin``) and kept in the checkpoint."""

    def __init__(
        self, epochs: int | None = None, min_learning_rate: float = 0.0, warmup_epochs: int = 0
    ):
        super().__init__(warmup_epochs)
        self.epochs = None if epochs is None else checks.positive_int("epochs", epochs)
        self.min_learning_rate = checks.number("min_learning_rate", min_learning_rate, 0.0)

    def begin(self, epochs):
        if self.epochs is None:
            self.epochs = epochs

    def scheduled(self, lr, epoch):
        m, t = self.min_learning_rate, self.epochs
        return m + (lr - m) * (1 + math.cos(math.pi * (epoch - 1) / t)) / 2

    def state(self):
        return {"epochs": self.epochs}

    def load_state(self, state):
        self.epochs = int(state["epochs"])

    def settings(self):
        return {"epochs": self.epochs, "min_learning_rate": self.min_learning_rate}


@SCHEDULES.register("plateau")
class ReduceOnPlateau(Schedule):
    """lr factor^n, n the reductions so far, never below m: a reduction each time ``monitor``
    has not improved (relatively by 1e-4) for more than ``patience`` epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_learning_rate: float = 0.0,
        warmup_epochs: int = 0,
    ):
        super().__init__(warmup_epochs)
        if not isinstance(monitor, str) or not monitor:
            raise SpecError(f"expected a metric name, got {monitor!r}", field="monitor")
        self.monitor = monitor
        self.factor = checks.number("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        self.patience = checks.non_negative_int("patience", patience)
        self.min_learning_rate = checks.number("min_learning_rate", min_learning_rate, 0.0)
        self.scale, self.best, self.bad_epochs, self.last_lr = 1.0, None, 0, None

    @property
    def maximize(self) -> bool:
        return improves_upwards(self.monitor)

    def scheduled(self, lr, epoch):
        self.last_lr = max(lr * self.scale, self.min_learning_rate)
        return self.last_lr

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.maximize:
            return value > self.best * (1 + PLATEAU_THRESHOLD)
        return value < self.best * (1 - PLATEAU_THRESHOLD)

    def observe(self, epoch, logs):
        value = logs.get(self.monitor)
        if value is None:
            known = [k for k in logs if k not in ("epoch", "time", "lr")]
            raise SpecError(
                f"expected one of {', '.join(known)}, got {self.monitor!r}"
                + did_you_mean(self.monitor, known),
                field="monitor",
            )
        if self.improved(value):
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            lr = self.last_lr
            if lr is not None and lr - max(lr * self.factor, self.min_learning_rate) > PLATEAU_EPS:
                self.scale *= self.factor
            self.bad_epochs = 0

    def state(self):
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state(self, state):
        best = state.get("best")
        self.scale, self.bad_epochs = float(state["scale"]), int(state["bad_epochs"])
        self.best = None if best is None or math.isnan(float(best)) else float(best)

    def settings(self):
        return {
            "monitor": self.monitor,
            "factor": self.factor,
            "patience": self.patience,
            "min_learning_rate": self.min_learning_rate,
        }
