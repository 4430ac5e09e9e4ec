"""``training.log`` for the commands that train: the ``LogPlan`` of a run (its folder, names,
tags and spec), the ``RunLog`` callback it adds on rank 0, how the run's logging ends, and the
parent run of a tune's trials or a cv's folds (nncli/tracking/)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nncli import tracking
from nncli.backend import processor
from nncli.errors import Interrupted
from nncli.tracking.callback import FAILED, FINISHED, KILLED, RunLog, close_parent, open_parent
from nncli.tracking.plan import PARENT_ENV, LogPlan

if TYPE_CHECKING:
    from nncli.spec import Spec


@dataclass
class Placement:
    """Where a trial or a fold logs instead of beside its checkpoint: ``folder`` (the tune's
    or cv's output: ``tensorboard/<run_name>/``, the local MLflow store) and its parent run."""

    folder: Path
    run_name: str
    parent: str | None = None


def require(spec: Spec, field: str = "training.log") -> None:
    """Exit 2 with the install command, before any training, when a backend's package is
    missing."""
    tracking.require(spec.training.log, field)


def log_plan(
    spec: Spec, out: Path, device: str, placement: Placement | None = None
) -> LogPlan | None:
    """The logging of a run whose checkpoint is ``out`` (None without ``training.log``): event
    files in ``<out's folder>/tensorboard/<out's stem>/``, the MLflow store beside ``out``."""
    from nncli import __version__
    from nncli.spec import resolved_yaml, to_dict

    if not spec.training.log:
        return None
    out = Path(out)
    folder, name = (out.parent, out.with_suffix("").name)
    parent = os.environ.get(PARENT_ENV) or None
    if placement is not None:
        folder, name, parent = placement.folder, placement.run_name, placement.parent or parent
    tags = {"nncli.version": __version__, "nncli.device": device, "nncli.seed": str(spec.seed)}
    tags["nncli.processor"] = processor()
    return LogPlan(
        backends=tuple(spec.training.log),
        tensorboard=folder / "tensorboard" / name,
        local_store=folder,
        experiment=spec.name,
        run_name=name,
        spec_yaml=resolved_yaml(spec),
        spec=to_dict(spec),
        tags=tags,
        parent=parent,
    )


def run_log(run: Any, placement: Placement | None = None) -> RunLog | None:
    """The logging callback of a ``TrainingRun`` (after its resume: the MLflow run it
    continues), or None without ``training.log`` or on a rank other than 0."""
    if not run.world.lead:
        return None
    plan = log_plan(run.spec, run.out, run.ready.backend.label, placement)
    if plan is None:
        return None
    plan.run_id = run.history.mlflow_run_id
    return RunLog(plan, run.history, run.warn)


@contextmanager
def watching(log: RunLog | None) -> Iterator[None]:
    """A run's logging marked KILLED when it is interrupted, FAILED when it fails (FINISHED,
    with its files, is the caller's ``log.end`` once they are written)."""
    try:
        yield
    except (KeyboardInterrupt, Interrupted):
        if log is not None:
            log.end(KILLED)
        raise
    except BaseException:
        if log is not None:
            log.end(FAILED)
        raise


@contextmanager
def parent_run(
    spec: Spec,
    folder: Path,
    name: str,
    device: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[str | None]:
    """The MLflow run ``name`` a tune's trials or a cv's folds are children of (None without
    mlflow in ``training.log``); worker processes find it in ``NNCLI_MLFLOW_PARENT_RUN``."""
    plan = log_plan(spec, folder / name, str(device or spec.device))
    if plan is not None:
        plan.parent = None
    run_id = None if plan is None else open_parent(plan, warn)
    before = os.environ.get(PARENT_ENV)
    if run_id is not None:
        os.environ[PARENT_ENV] = run_id
    status = FAILED
    try:
        yield run_id
        status = FINISHED
    except (KeyboardInterrupt, Interrupted):
        status = KILLED
        raise
    finally:
        if run_id is not None:
            close_parent(plan, run_id, status)
            _restore(before)


def _restore(before: str | None) -> None:
    if before is None:
        os.environ.pop(PARENT_ENV, None)
    else:
        os.environ[PARENT_ENV] = before
