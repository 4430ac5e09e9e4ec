"""How a training run ends other than by finishing, and what it says then: the last completed
epoch saved when a signal stops it (``keep_last_epoch``), the line an interruption prints
(``interrupted``), the likely cause added to a divergence (``explain``), and the warning of a
loss that grows a thousandfold before it overflows (``growth``). Each takes the
``commands.train.TrainingRun`` whose state it reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nncli.checkpoint import folder as outputs
from nncli.commands.resume import resume_command
from nncli.engine import feeds
from nncli.errors import DivergedError, Interrupted
from nncli.training.callbacks import Callback
from nncli.training.guards import LossGrowth
from nncli.training.loop import PREDICT_BATCH, FitConfig, evaluate
from nncli.training.spread import whole_rows


def keep_last_epoch(run: Any) -> None:
    """Ctrl-C or SIGTERM: back to the end of the last completed epoch, saved as the run's
    ``.latest.h5`` (what its resume command continues) unless that holds it already. With early
    stopping's best weights from another epoch, the file takes the final checkpoint's layout:
    the best weights as the model, the last epoch's as ``resume_weights``."""
    state = run.last_epoch.restore() if run.last_epoch is not None else None
    periodic = run.periodic
    if state is None or (periodic is not None and periodic.saved_epoch == state.epoch):
        return
    es, last = run.ready.early_stopping, None
    best = state.best_weights if es is not None and es.restore_best else None
    if best is not None and state.best_epoch != state.epoch:
        last = run.ready.net.get_weights()  # the last epoch's, on the host
        run.ready.net.set_weights(best)
    latest = outputs.run_files(run.out).latest
    run.save(latest, resume_weights=last)
    run.kept = latest


def interrupted(
    run: Any, exc: KeyboardInterrupt, overrides: Sequence[str], device: str | None
) -> Interrupted:
    """The error an interrupted run ends with: the last completed epoch, the last good
    checkpoint and the command that resumes it (exit 130, 143 for SIGTERM)."""
    last, history = run.last_good(), run.history
    done = history.epochs[-1]["epoch"] if history.epochs else run.initial_epoch
    how = (
        f"; resume with: {resume_command(run.spec, last, run.out, overrides, device)}"
        if last
        else "; no epoch had completed, nothing was saved"
        if not history.epochs
        else "; nothing was saved"
    )
    return Interrupted(
        f"training interrupted after epoch {done}; last good checkpoint: {last or 'none'}{how}",
        exit_code=getattr(exc, "exit_code", 130),
    )


def explain(run: Any, exc: DivergedError) -> None:
    """Add the likely cause (the learning rate, and where the spec sets it)."""
    last = run.last_good()
    exc.message += (
        f"; likely cause: a learning rate too large ({learning_rate(run)}); last good "
        f"checkpoint: {last if last else 'none saved yet'}"
    )


def growth(run: Any, x: Any, y: np.ndarray, config: FitConfig) -> list[Callback]:
    """The warning of a loss that grows a thousandfold, when someone hears warnings: the
    untrained network's loss is measured on the first training rows (one evaluation batch; rank
    0 holds them all), as a single batch's would be too noisy for small batches."""
    if run.warn is None:
        return []
    ready, rows = run.ready, slice(0, PREDICT_BATCH)
    mask = feeds.take(config.mask, rows)

    def first() -> float:
        whole = whole_rows(x)  # rank 0's rows of a shared run
        return evaluate(ready.net, ready.loss, feeds.take(whole, rows), y[rows], mask=mask)["loss"]

    hint = f"; lower optimizer.learning_rate ({learning_rate(run)})"
    return [LossGrowth(run.warn, first, run.history, hint)]


def learning_rate(run: Any) -> str:
    """The optimizer's learning rate and where the spec sets it."""
    spec = run.spec
    place = spec.line_of("optimizer.learning_rate") or spec.line_of("optimizer")
    return f"{run.ready.optimizer.learning_rate}{', ' + place if place else ''}"
