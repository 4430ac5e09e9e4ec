"""Each batch's loss and gradient norm, checked finite: at once on the CPU, where reading a value
costs nothing, and once an epoch on a GPU, where each read would stop the device until it caught
up (one transfer of every batch's values at the epoch's end instead of one sync a batch).

A GPU run that diverges so trains on to its epoch's end before it stops, and names the same
first bad batch as a CPU run; its weights are then not finite, but a run keeps only the
checkpoints of finished epochs, so the last good one is kept all the same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nncli.backend import Backend
from nncli.training.guards import diverged


class DeviceScalar:
    """A loss still on the device, handed to ``on_batch_end``: reading it (``float``, a format)
    syncs, so a progress bar that shows it a few times a second syncs only then."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __float__(self) -> float:
        return float(self.value)

    def __format__(self, spec: str) -> str:
        return format(float(self), spec)

    def __repr__(self) -> str:
        return f"DeviceScalar({float(self)!r})"


class FiniteChecks:
    """``loss`` and ``step`` each batch; ``epoch_end`` -> the epoch's host norms. Raises
    ``DivergedError`` (through ``guards.diverged``) naming the first non-finite batch."""

    def __init__(self, backend: Backend, last_finite: float | None):
        self.backend, self.last_finite = backend, last_finite
        self.deferred = backend.name != "cpu"
        self.values: list[Any] = []
        self.norms: list[Any] = []

    def loss(self, epoch: int, batch: int, value: Any) -> None:
        """Before the backward pass: on the CPU a non-finite loss stops before its step."""
        if not self.deferred and not math.isfinite(float(value)):
            raise diverged(epoch, batch, f"the loss became {float(value)}", self.last_finite)

    def step(self, epoch: int, batch: int, value: Any, norm: Any) -> Any:
        """After the step -> what ``on_batch_end`` gets: a float, or on a GPU a ``DeviceScalar``."""
        if norm is not None:
            self.norms.append(norm if self.deferred else float(norm))
        if self.deferred:
            self.values.append(value)
            return DeviceScalar(value)
        value = float(value)
        self._check(epoch, batch, value, self.norms[-1] if norm is not None else None)
        return value

    def _check(self, epoch: int, batch: int, value: float, norm: float | None) -> None:
        if not math.isfinite(value):
            raise diverged(epoch, batch, f"the loss became {value}", self.last_finite)
        if norm is not None and not math.isfinite(norm):
            raise diverged(epoch, batch, f"the gradient norm became {norm}", self.last_finite)
        self.last_finite = value

    def epoch_end(self, epoch: int) -> list[float]:
        """Check the epoch's deferred values (one transfer) -> its gradient norms on the host."""
        if self.deferred and self.values:  # batch b's norm is norms[b - 1] when clipping
            xp = self.backend.xp
            host = self.backend.to_host(xp.stack([xp.asarray(v) for v in self.values + self.norms]))
            values, norms = host[: len(self.values)], host[len(self.values) :]
            for b, value in enumerate(values, start=1):
                self._check(epoch, b, float(value), float(norms[b - 1]) if len(norms) else None)
            self.norms = [float(n) for n in norms]
        norms, self.values, self.norms = self.norms, [], []
        return norms


def mean_norm(norms: list[float]) -> dict[str, float]:
    return {"grad_norm": float(np.mean(norms))} if norms else {}
