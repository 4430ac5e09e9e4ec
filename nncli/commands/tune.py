"""``nncli tune``: search the spec's ``search:`` space with Optuna, trials shared in a database.

Each trial writes its values into the spec (as ``--set`` would), trains it in this process into
``DIR/.trial-<number>/`` and reports the monitored metric every epoch to the median pruner
(with ``--cv K``: the mean over K folds, reported fold by fold). A finished trial that is the
study's best moves its checkpoint to ``DIR/best/`` (under a lock: workers finish at once); the
others are removed. At the end ``trials.csv`` and ``best.yaml`` (the spec with the best values
written in, no ``search:``) are written from the study, which is what every process shares.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nncli.checkpoint import folder as outputs
from nncli.checkpoint.lock import hold
from nncli.checkpoint.outputs import make_folder
from nncli.commands import watch
from nncli.commands.cv import cross_validate, monitored
from nncli.commands.train import train
from nncli.commands.tune_files import (
    BEST,
    BEST_HEADER,
    best_trial,
    check_outputs,
    promote,
    trials_csv,
)
from nncli.commands.workers import wait_all
from nncli.errors import DataError, DivergedError, Interrupted, SpecError
from nncli.spec import search
from nncli.training.callbacks import MonitorReport, kept_value
from nncli.training.guards import SignalStop

if TYPE_CHECKING:
    from nncli.spec import Spec

WARMUP = 5  # the pruner waits for the first epochs // WARMUP epochs of every trial
BEST_LOCK_WAIT = 120.0  # seconds a worker waits while another moves its trial to best/


@dataclass
class TuneResult:
    output: Path
    storage: str
    study: str
    monitor: str
    maximize: bool
    params: list[str]
    rows: list[dict[str, Any]]
    best: tuple[int, dict[str, Any], float] | None
    added: int  # trials this run added (all workers together)
    files: list[Path] = field(default_factory=list)


@dataclass
class TuneSettings:
    """What ``nncli tune`` was asked (also what a worker process and the resume line repeat)."""

    path: Path
    trials: int
    output: Path
    storage: str
    study: str
    sampler: str = "tpe"
    cv: int | None = None
    timeout: float | None = None
    overrides: list[str] = field(default_factory=list)
    device: str | None = None

    def command(self, trials: int | None = None, worker: int | None = None) -> list[str]:
        words = ["tune", str(self.path), "--trials", str(trials or self.trials)]
        words += ["--output", str(self.output), "--storage", self.storage, "--study", self.study]
        words += ["--sampler", self.sampler] if self.sampler != "tpe" else []
        words += ["--cv", str(self.cv)] if self.cv else []
        words += ["--timeout", str(self.timeout)] if self.timeout else []
        words += [w for o in self.overrides for w in ("--set", o)]
        words += ["--device", self.device] if self.device else []
        return words + (["--worker", str(worker)] if worker is not None else [])


def tune(
    path: Path,
    trials: int,
    *,
    output: Path | None = None,
    storage: str | None = None,
    study: str | None = None,
    workers: int = 1,
    timeout: float | None = None,
    sampler: str = "tpe",
    cv: int | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
    worker: int | None = None,
    on_start: Callable[[list[str], str], None] | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    force: bool = False,
    note: Callable[[str], None] | None = None,
) -> TuneResult:
    """Run ``trials`` more trials of the study (in ``workers`` processes), then write
    ``trials.csv``, ``best.yaml`` and ``best/model.h5``. ``worker``: this process is one of
    another's workers (it runs trials and writes nothing else). ``on_start(keys, monitor)``
    hears what is searched before the first trial, ``on_trial`` each trial this process ran,
    as a row of ``trials.csv``. Files of an earlier tune are replaced (the study goes on);
    any other file in their place needs ``force``. ``note`` hears, once, what the spec's
    version means."""
    from nncli import spec as spec_module
    from nncli.spec.conventions import version_note, version_notes

    overrides = list(overrides)
    spec = spec_module.load(path, overrides)
    version_notes(spec, version_note(spec), None, None if worker is not None else note)
    watch.require(spec)
    params = _space(spec, path, overrides, device, check=worker is None, cv=cv)
    out = Path(output) if output is not None else Path("runs", f"{spec.name}-tune")
    out = Path(os.path.abspath(out))
    written = [out / "study.db", out / "trials.csv", out / "best.yaml", out / BEST / "model.h5"]
    inputs = [path, getattr(spec.data, "path", None)]
    outputs.check_outputs(written, inputs)
    if worker is None:
        check_outputs(out, inputs, force, storage is None)
    make_folder(out)
    url = storage or f"sqlite:///{out / 'study.db'}"
    settings = TuneSettings(Path(path), trials, out, url, study or spec.name, sampler, cv)
    settings.timeout, settings.overrides, settings.device = timeout, overrides, device
    monitor, maximize = monitored(spec)
    from nncli.search.study import Study

    warmup = 0 if cv else spec.training.epochs // WARMUP  # a slow start is not hopeless
    shared = Study(
        url, settings.study, params, monitor, maximize, sampler, spec.seed, worker or 0, warmup
    )
    before = shared.count()
    if worker is None:
        _remove_stale_trials(out, shared.rows())
    if on_start is not None:
        on_start([p.key for p in params], monitor)
    try:
        # a worker's trials are children of its caller's run (NNCLI_MLFLOW_PARENT_RUN)
        with watch.parent_run(spec, out, "tune", device) if worker is None else nullcontext():
            if workers > 1 and worker is None:
                _in_workers(settings, workers)
            else:
                _run_trials(settings, shared, params, monitor, on_trial)
    except (Interrupted, KeyboardInterrupt) as exc:
        if worker is None:  # what finished is written; nothing more is trained
            _write_outputs(settings, shared, spec, train_best=False)
        raise _interrupted(settings, exc) from None
    files = [] if worker is not None else _write_outputs(settings, shared, spec)
    rows = shared.rows()
    keys = [p.key for p in params]
    best = shared.best()
    added = shared.count() - before
    return TuneResult(out, url, settings.study, monitor, maximize, keys, rows, best, added, files)


def _space(
    spec: Spec, path: Path, overrides: list[str], device: str | None, check: bool, cv: int | None
) -> list[search.Param]:
    """The ``search:`` space; with ``check`` every bound and choice is resolved (data, shapes,
    batch size against the rows) before the first trial, and the monitor must be logged."""
    from nncli import spec as spec_module
    from nncli.spec.resolve import resolve

    def reload(assignments: Sequence[str]) -> Any:
        resolve(spec_module.load(path, [*overrides, *assignments]), device=device)

    params = search.space(spec, reload if check else None)
    if not params:
        raise SpecError(
            "the spec has no search: section; add one (docs/guides/choosing-hyperparameters.md)",
            where=str(path),
        )
    monitor = monitored(spec)[0]
    if check and not cv and monitor.startswith("val_"):
        ds = resolve(spec, device=device).ds
        if not ds.rows("validation"):
            raise SpecError(
                f"tune optimises {monitor}, which needs validation data: set "
                "data.validation_split or data.validation, or pass --cv K",
                where=str(path),
            )
    return params


def _remove_stale_trials(out: Path, rows: list[dict[str, Any]]) -> None:
    """The folders of trials a killed process left (any trial of the study not running)."""
    running = {f".trial-{row['number']}" for row in rows if row["state"] == "running"}
    for folder in out.glob(".trial-*"):
        if folder.is_dir() and folder.name not in running:
            shutil.rmtree(folder, ignore_errors=True)


def _run_trials(
    settings: TuneSettings,
    shared: Any,
    params: list[search.Param],
    monitor: str,
    on_trial: Callable[[dict[str, Any]], None] | None,
) -> None:
    """This process's trials; the best one's checkpoint goes to ``DIR/best/``."""
    from nncli import spec as spec_module

    out = settings.output
    # A Ctrl-C only sets a flag, so that Optuna's bookkeeping is never cut in half (a trial left
    # "running" for ever): a trial under way stops once its current epoch has ended (the
    # training takes this guard as its own), and between trials the next one never starts.
    stop = SignalStop(at="epoch")

    def objective(number: int, values: dict, report: Callable) -> tuple[float, dict]:
        stop.check()
        assignments = [*settings.overrides, *search.assignments(params, values)]
        trial_spec = spec_module.load(settings.path, assignments)
        if settings.cv:
            return _cv_value(trial_spec, settings, report, stop, number)
        folder = out / f".trial-{number}"
        try:
            result = train(
                trial_spec,
                output=folder / "model.h5",
                force=True,
                device=settings.device,
                callbacks=[MonitorReport(monitor, report), stop],  # a Ctrl-C before fit
                log_to=watch.Placement(out, f"trial-{number}"),  # the parent: from the env
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return kept_value(result.history, monitor), {"epochs": len(result.history.epochs)}

    def after(row: dict[str, Any]) -> None:
        folder = out / f".trial-{row['number']}"
        if row["state"] == "complete" and folder.exists():
            with hold(out, name=".best.lock", wait=BEST_LOCK_WAIT):
                best = shared.best()
                if best is not None and best[0] == row["number"]:
                    promote(folder, out / BEST, row["number"])
        shutil.rmtree(folder, ignore_errors=True)
        if on_trial is not None:
            on_trial(row)
        stop.check()

    with stop.installed():
        shared.optimize(
            settings.trials, objective, after, timeout=settings.timeout, catch=(DivergedError,)
        )


def _cv_value(
    spec: Spec, settings: TuneSettings, report: Callable, stop: SignalStop, number: int
) -> tuple[float, dict]:
    """The mean over ``--cv`` folds, the running mean reported after each fold; each fold
    logged as ``trial-<number>-fold-<I>``."""
    monitor = monitored(spec)[0]
    column = "val_" + monitor.removeprefix("val_")
    seen: list[float] = []

    def on_fold(fold: Any) -> None:
        seen.append(fold.metrics[column])
        report(fold.fold, sum(seen) / len(seen))

    try:
        result = cross_validate(
            spec,
            int(settings.cv),
            callbacks=lambda fold: [stop],
            on_fold=on_fold,
            device=settings.device,
            log_to=lambda fold: watch.Placement(settings.output, f"trial-{number}-fold-{fold}"),
        )
    except DataError as exc:
        if exc.field == "--folds":  # cv's option; tune counts its folds with --cv
            exc.field = "--cv"
        raise
    return result.objective(), {"epochs": sum(f.epochs for f in result.folds)}


def _in_workers(settings: TuneSettings, workers: int) -> None:
    """``workers`` processes (``nncli tune ... --worker I``) share the trials and the study."""
    shares = [settings.trials // workers + (i < settings.trials % workers) for i in range(workers)]
    running = {}
    for i, share in enumerate(shares, start=1):
        if share:
            words = settings.command(trials=share, worker=i)
            running[i] = subprocess.Popen([sys.executable, "-m", "nncli", *words])
    wait_all(running, "tune")


def _interrupted(settings: TuneSettings, exc: BaseException) -> Interrupted:
    words = ["nncli", *settings.command()]
    return Interrupted(
        f"tune interrupted: the running trial is marked failed, every finished one is kept in "
        f"study {settings.study!r} ({settings.storage}); continue with: {shlex.join(words)}",
        exit_code=getattr(exc, "exit_code", 130),
    )


def _write_outputs(
    settings: TuneSettings, shared: Any, spec: Spec, train_best: bool = True
) -> list[Path]:
    """``trials.csv`` and, once a trial has completed, ``best.yaml`` (and, with ``--cv``, the
    best values trained once on the spec's own split into ``best/model.h5``). The files list
    names ``best/model.h5`` only when it is the best trial's (on many machines, the one that
    ran it holds it)."""
    out = settings.output
    table = out / "trials.csv"
    outputs.write_text_atomic(table, trials_csv(shared.rows(), [p.key for p in shared.params]))
    best = shared.best()
    if best is None:
        return [table]
    number, values, value = best
    header = f"{BEST_HEADER}{number} of study {settings.study!r}, "
    header += f"{monitored(spec)[0]} {value:.6g}; train it with: nncli train best.yaml\n"
    written = out / "best.yaml"
    outputs.write_text_atomic(written, header + best_yaml(settings, shared.params, values))
    if settings.cv and train_best and best_trial(out) != number:
        _train_best(settings, written, number)  # folds keep no checkpoint: train it once
    return [table, written] + ([out / BEST / "model.h5"] if best_trial(out) == number else [])


def best_yaml(settings: TuneSettings, params: list[search.Param], values: dict) -> str:
    """The spec with the best values written in, every default filled, no ``search:``."""
    from nncli import spec as spec_module

    assignments = [*settings.overrides, *search.assignments(params, values)]
    return spec_module.resolved_yaml(spec_module.load(settings.path, assignments))


def _train_best(settings: TuneSettings, best: Path, number: int) -> None:
    from nncli import spec as spec_module

    folder = settings.output / ".trial-best"
    try:
        placement = watch.Placement(settings.output, "best")
        train(spec_module.load(best), output=folder / "model.h5", force=True, log_to=placement)
        promote(folder, settings.output / BEST, number)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
