"""What a run records: one row of logs per epoch and what early stopping found. ``fit``
(nncli/training/loop.py) fills a ``History``; a checkpoint stores it (``/training/history``,
nncli/checkpoint/model.py) and ``--resume`` reads it back, so it sits below both rooms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


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
    mlflow_run_id: str | None = None  # the MLflow run it logs to (training.log), for --resume

    def column(self, key: str) -> list[float]:
        return [e.get(key, math.nan) for e in self.epochs]
