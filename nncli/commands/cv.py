"""``nncli cv``: K-fold cross-validation of a spec, and the folds ``nncli tune --cv`` averages.

The rows the spec trains and validates on (its training and validation parts; the test part
stays out) are pooled and cut into K folds (``data/folds.py``): stratified for classification,
forward-chaining (an expanding window) for time series, shuffled K-fold otherwise. Each fold
trains the spec from its seed on the other rows and is scored on its own; the encoder keeps the
scaling it learnt from the spec's training part. ``--workers K`` trains folds in K processes
(``nncli cv ... --fold I`` each, reporting back through ``.fold-I.json``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.checkpoint import folder as outputs
from nncli.checkpoint.outputs import check_output, make_folder
from nncli.commands import watch
from nncli.commands.train import TrainingRun, fit_arrays, start
from nncli.commands.workers import wait_all
from nncli.data import folds as fold_rows
from nncli.data.dataset import Part
from nncli.engine import feeds
from nncli.engine.schedules import improves_upwards
from nncli.errors import DataError, Interrupted, SpecError
from nncli.spec.resolve import Resolved, resolve
from nncli.training.callbacks import Callback
from nncli.training.loop import evaluate

if TYPE_CHECKING:
    from nncli.spec import Spec


def monitored(spec: Spec) -> tuple[str, bool]:
    """(the metric a search optimises, whether higher is better): the early-stopping monitor
    (default ``val_loss``), its ``mode`` when not ``auto``."""
    es = spec.training.early_stopping
    monitor, mode = (es.monitor, es.mode) if es is not None else ("val_loss", "auto")
    maximize = mode == "max" if mode != "auto" else improves_upwards(monitor)
    return monitor, maximize


@dataclass
class FoldResult:
    fold: int  # 1..K
    metrics: dict[str, float]  # val_loss, val_accuracy, ... on the fold's validation rows
    epochs: int
    seconds: float
    train_rows: int = 0
    val_rows: int = 0


@dataclass
class CvResult:
    folds: list[FoldResult]
    scheme: str  # stratified, kfold or forward-chaining
    monitor: str
    files: list[Path] = field(default_factory=list)

    def columns(self) -> list[str]:
        return list(self.folds[0].metrics) + ["epochs"] if self.folds else []

    def summary(self) -> dict[str, dict[str, float]]:
        """``{"mean": {column: value}, "std": {...}}`` over the folds (sample deviation)."""
        table = {c: [_value(f, c) for f in self.folds] for c in self.columns()}
        ddof = 1 if len(self.folds) > 1 else 0
        return {
            "mean": {c: float(np.mean(v)) for c, v in table.items()},
            "std": {c: float(np.std(v, ddof=ddof)) for c, v in table.items()},
        }

    def objective(self) -> float:
        """The mean over the folds of the monitored metric."""
        return self.summary()["mean"][_column(self.monitor)]


def _value(fold: FoldResult, column: str) -> float:
    return float(fold.epochs) if column == "epochs" else fold.metrics[column]


def _column(monitor: str) -> str:
    return "val_" + monitor.removeprefix("val_")


def pooled(ds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The training and validation parts as one set of rows (in time order for time series)."""
    parts = [ds.parts["train"]] + ([ds.parts["validation"]] if ds.rows("validation") else [])
    if not all(isinstance(p.x, np.ndarray | dict) for p in parts):  # dict: several inputs
        kind = type(parts[0].x).__name__
        raise DataError(f"cross-validation needs arrays of rows, got {kind} (text windows)")
    x = feeds.concatenate([p.x for p in parts])
    y = np.concatenate([p.y for p in parts])
    masks = [p.mask for p in parts]
    mask = None if any(m is None for m in masks) else feeds.concatenate(masks)
    return x, y, mask


def plan(spec: Spec, ds: Any, folds: int) -> tuple[str, list[fold_rows.Fold]]:
    """The folds of the pooled rows and how they were cut."""
    _, y, _ = pooled(ds)
    if spec.data.kind == "timeseries":
        return "forward-chaining", fold_rows.forward_chaining(len(y), folds)
    if ds.task == "classification" and y.ndim == 2:
        codes = fold_rows.class_codes(y)
        return "stratified", fold_rows.kfold(len(y), folds, spec.seed, codes)
    return "kfold", fold_rows.kfold(len(y), folds, spec.seed)


def _fold_data(ready: Resolved, rows: fold_rows.Fold) -> Any:
    x, y, mask = pooled(ready.ds)
    train, val = rows

    return replace(
        ready.ds,
        parts={
            "train": Part(feeds.take(x, train), y[train], feeds.take(mask, train)),
            "validation": Part(feeds.take(x, val), y[val], feeds.take(mask, val)),
        },
    )


def train_fold(
    spec: Spec,
    number: int,
    folds: int,
    callbacks: Sequence[Callback] = (),
    device: str | None = None,
    log_to: watch.Placement | None = None,
) -> FoldResult:
    """Fold ``number`` (1..K): a network from the spec's seed trained on the other folds and
    scored on this one (the kept weights: the best epoch's with early stopping); logged as
    ``log_to`` says (``training.log``; by default as ``fold-<number>`` in the output's folder)."""
    started = time.perf_counter()
    ready = resolve(spec, device=device)
    start(spec, ready)  # model.init_from: each fold starts from the checkpoint
    _, rows = plan(spec, ready.ds, folds)
    ds = ready.ds = _fold_data(ready, rows[number - 1])
    x, y, config = fit_arrays(spec, ds, smoke=False)
    run = TrainingRun(spec, ready, Path(spec.output))
    run.log = watch.run_log(
        run, log_to or watch.Placement(Path(spec.output).parent, f"fold-{number}")
    )
    try:
        with watch.watching(run.log):
            run.fit(x, y, config, list(callbacks), periodic=False, overrides=(), device=device)
    except Interrupted as exc:
        exc.message = f"interrupted in fold {number} of {folds}"
        raise
    if run.log is not None:
        run.log.end(watch.FINISHED)
    held = ds.parts["validation"]
    scores = evaluate(
        ready.net,
        ready.loss,
        held.x,
        held.y,
        mask=held.mask,
        target_scale=ds.target_scale,
        metrics=spec.metrics,
    )
    return FoldResult(
        fold=number,
        metrics={f"val_{k}": float(v) for k, v in scores.items()},
        epochs=len(run.history.epochs),
        seconds=time.perf_counter() - started,
        train_rows=feeds.rows(x),
        val_rows=len(held),
    )


def cross_validate(
    spec: Spec,
    folds: int,
    *,
    callbacks: Callable[[int], Sequence[Callback]] | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
    device: str | None = None,
    log_to: Callable[[int], watch.Placement] | None = None,
) -> CvResult:
    """Every fold in this process; ``callbacks(fold)`` for each fold's training, ``on_fold``
    hears each result, ``log_to(fold)`` says where it is logged."""
    ready = resolve(spec, device=device)  # the folds are planned (and checked) before training
    scheme, _ = plan(spec, ready.ds, folds)
    results = []
    for number in range(1, folds + 1):
        extra = callbacks(number) if callbacks else ()
        place = log_to(number) if log_to else None
        results.append(train_fold(spec, number, folds, extra, device, place))
        if on_fold is not None:
            on_fold(results[-1])
    return CvResult(results, scheme, monitored(spec)[0])


def csv_text(result: CvResult) -> str:
    """``cv.csv``: fold 1..K, then ``mean`` and ``std``, one column per metric and epochs."""
    columns = result.columns()
    lines = [",".join(["fold", *columns])]
    for f in result.folds:
        cells = [str(f.epochs) if c == "epochs" else repr(f.metrics[c]) for c in columns]
        lines.append(",".join([str(f.fold), *cells]))
    for name, row in result.summary().items():
        lines.append(",".join([name, *(repr(row[c]) for c in columns)]))
    return "\n".join(lines) + "\n"


def cv(
    path: Path,
    folds: int,
    *,
    output: Path | None = None,
    workers: int = 1,
    force: bool = False,
    overrides: Sequence[str] = (),
    device: str | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
    only: Sequence[int] = (),
    warn: Callable[[str], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> CvResult:
    """``nncli cv``: the spec's K folds (in ``workers`` processes), ``cv.csv`` in ``output``
    (default ``runs/<name>-cv/``); with ``training.log`` each fold is logged as ``fold-<I>``
    in ``output`` (a child of one MLflow run ``cv``). ``only``: these folds, each result in
    ``.fold-<I>.json`` (what a worker process does). ``note`` hears, once, what the spec's
    version means."""
    from nncli import spec as spec_module
    from nncli.spec.conventions import version_note, version_notes

    spec = spec_module.load(path, overrides)
    version_notes(spec, version_note(spec), None, None if only else note)
    watch.require(spec)
    if getattr(spec.data, "streaming", False):  # folds are rows held in memory
        raise SpecError(
            "cross-validation holds every row in memory; leave it out (--set data.streaming=false)",
            field="data.streaming",
            where=spec.line_of("data.streaming"),
        )
    out = Path(output) if output is not None else Path("runs", f"{spec.name}-cv")
    table = out / "cv.csv"
    if only:
        done = [
            train_fold(spec, number, folds, device=device, log_to=_placement(out, number))
            for number in only
        ]
        for result in done:
            outputs.write_text_atomic(_fold_file(out, result.fold), json.dumps(result.__dict__))
        return CvResult(done, "", monitored(spec)[0])
    inputs = [path, getattr(spec.data, "path", None)]
    check_output(table, inputs, force=force, makes_folder=True)
    with watch.parent_run(spec, out, "cv", device, warn) as parent:
        if workers > 1:
            args = [str(path), "--folds", str(folds), "--output", str(out)]
            args += [a for o in overrides for a in ("--set", o)]
            args += ["--device", device] if device else []
            result = _in_workers(spec, folds, workers, out, args, on_fold)
        else:
            place = partial(_placement, out, parent=parent)
            result = cross_validate(spec, folds, on_fold=on_fold, device=device, log_to=place)
    make_folder(out)
    outputs.write_text_atomic(table, csv_text(result))
    result.files = [table]
    return result


def _placement(out: Path, number: int, parent: str | None = None) -> watch.Placement:
    """Fold ``number``'s logs: ``out/tensorboard/fold-<number>/``, MLflow run ``fold-<number>``."""
    return watch.Placement(out, f"fold-{number}", parent)


def _fold_file(out: Path, number: int) -> Path:
    make_folder(out)
    return out / f".fold-{number}.json"


def _in_workers(
    spec: Spec,
    folds: int,
    workers: int,
    out: Path,
    args: list[str],
    on_fold: Callable[[FoldResult], None] | None,
) -> CvResult:
    """Worker I of ``workers`` trains folds I, I + workers, ... (``nncli cv ... --fold I``)."""
    ready = resolve(spec)  # the folds are planned (and checked) before any process starts
    scheme, _ = plan(spec, ready.ds, folds)
    command = [sys.executable, "-m", "nncli", "cv", *args, "--quiet"]
    running = {}
    for first in range(1, min(workers, folds) + 1):
        mine = [w for n in range(first, folds + 1, workers) for w in ("--fold", str(n))]
        running[first] = subprocess.Popen([*command, *mine])
    wait_all(running, "cv")
    results = []
    for number in range(1, folds + 1):
        file = _fold_file(out, number)
        results.append(FoldResult(**json.loads(file.read_text(encoding="utf-8"))))
        file.unlink()
        if on_fold is not None:
            on_fold(results[-1])
    return CvResult(results, scheme, monitored(spec)[0])
