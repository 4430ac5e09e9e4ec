"""``RunLog``: the training loop's one door to the logging backends, a callback like the
others (``nncli/training/callbacks.py``). A backend that fails is said once and dropped: the
run goes on, and its checkpoint, history.csv and resolved spec are written as ever."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nncli.engine.history import History
from nncli.tracking.mlflow_runs import MlflowWriter, end_run, start_run
from nncli.tracking.plan import LogPlan
from nncli.tracking.tensorboard import TensorBoardWriter
from nncli.training.callbacks import Callback

WRITERS: dict[str, Callable[[], Any]] = {"tensorboard": TensorBoardWriter, "mlflow": MlflowWriter}
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"  # how a run ended, in MLflow's words


def failed(name: str, exc: BaseException) -> str:
    """The one warning a failing backend gets."""
    return (
        f"logging to {name} failed ({type(exc).__name__}: {exc}); training goes on without it "
        "(history.csv and the checkpoint are written as ever)"
    )


def _python_warning(message: str) -> None:
    """Where no one listens (a trial's or fold's run): a Python warning, which the command line
    prints as one ``nncli: warning:`` line when the command ends."""
    warnings.warn(message, RuntimeWarning, stacklevel=3)


class RunLog(Callback):
    """Hands each epoch's logs (the row history.csv gets) to every backend of ``plan``; the
    MLflow run's id goes into ``history`` (so the checkpoint keeps it for ``--resume``)."""

    def __init__(self, plan: LogPlan, history: History, warn: Callable[[str], None] | None):
        self.plan, self.history = plan, history
        self.warn = warn or _python_warning
        self.writers = [WRITERS[name]() for name in plan.backends]

    def _safely(self, writer: Any, method: str, *args: Any) -> None:
        try:
            getattr(writer, method)(*args)
        except Exception as exc:  # a backend's own error, whatever its kind: said once
            self.writers.remove(writer)
            self.warn(failed(writer.name, exc))

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self.plan.initial_epoch = int(info.get("initial_epoch", 0))
        for writer in list(self.writers):
            self._safely(writer, "begin", self.plan)
            if writer in self.writers and writer.run_id is not None:
                self.history.mlflow_run_id = writer.run_id

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        for writer in list(self.writers):
            self._safely(writer, "epoch", epoch, logs)

    def end(self, status: str, files: list[Path] | tuple = ()) -> None:
        """Close every backend: the run's ``files`` as MLflow artifacts, the run marked
        ``status`` (FINISHED, FAILED or KILLED)."""
        for writer in list(self.writers):
            self._safely(writer, "end", status, list(files))
        self.writers = []


def open_parent(plan: LogPlan, warn: Callable[[str], None] | None) -> str | None:
    """The MLflow parent run of a tune's trials or a cv's folds, or None (no mlflow in the
    plan, or it failed: said once, and the children are logged on their own)."""
    if "mlflow" not in plan.backends:
        return None
    try:
        return start_run(plan)[1]
    except Exception as exc:
        (warn or _python_warning)(failed("mlflow", exc))
        return None


def close_parent(plan: LogPlan, run_id: str | None, status: str) -> None:
    if run_id is not None:  # on failure the children are logged; the parent stays running
        with contextlib.suppress(Exception):
            end_run(plan, run_id, status)
