"""``nncli train``: data -> network -> fit -> checkpoint, history and resolved spec on disk.

Also ``--resume`` (``nncli.commands.resume``), ``--smoke`` (a tiny run in a temporary folder
with a predict round trip) and ``training.checkpoint_every`` (latest and best files).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.checkpoint import folder as outputs
from nncli.checkpoint import model as model_io
from nncli.checkpoint import runs
from nncli.checkpoint.lock import hold
from nncli.checkpoint.outputs import check_writable
from nncli.commands import stopping, watch
from nncli.commands.init_from import start_from
from nncli.commands.resume import resume as resume_from
from nncli.commands.run_checks import check_round_trip, refuse_outputs_on_inputs
from nncli.data.digest import content_digest
from nncli.engine import feeds
from nncli.engine.history import History
from nncli.errors import CheckpointError, DivergedError
from nncli.spec.conventions import version_note, version_notes
from nncli.spec.loading import resolved_yaml
from nncli.spec.resolve import Resolved, resolve
from nncli.training.callbacks import Callback, LastEpoch, PeriodicCheckpoints
from nncli.training.guards import FiniteWeights, SignalStop
from nncli.training.loop import FitConfig, evaluate, fit
from nncli.training.parallel import SINGLE, World, run_facts
from nncli.training.spread import share_dataset, whole_rows

if TYPE_CHECKING:
    from nncli.spec import Spec

SMOKE_ROWS = 64


@dataclass
class TrainResult:
    output: Path
    history: History
    files: list[Path] = field(default_factory=list)
    test: dict[str, float] | None = None  # metrics on the test part, when there is one
    notes: list[str] = field(default_factory=list)  # what the run was told (``note``)
    started: list[Any] = field(default_factory=list)  # model.init_from: each layer's source


def train(
    spec: Spec,
    *,
    output: Path | None = None,
    resume: Path | None = None,
    force: bool = False,
    smoke: bool = False,
    device: str | None = None,
    callbacks: list[Callback] | tuple = (),
    overrides: Sequence[str] = (),
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
    on_resolved: Callable[[Resolved], None] | None = None,
    note: Callable[[str], None] | None = None,
    world: World = SINGLE,
    log_to: watch.Placement | None = None,
) -> TrainResult:
    """Refuse outputs on inputs, hold the checkpoint's lock, refuse to replace files without
    ``force`` and another run's files at all, remove a stopped run's temporary files (told to
    ``note``), then train
    (``overrides``: the ``--set`` values, repeated in the resume command an interruption
    prints). ``skip_bad``: leave out unreadable images; ``warn`` gets the data's warnings;
    ``on_resolved`` gets the resolved run (the device it chose) before training starts.
    ``world``: the processes sharing each batch; they first check they hold the same spec,
    data and nncli, and only rank 0 holds the lock and writes files (and logs to
    ``training.log``'s backends: ``log_to``, a trial's or fold's place instead of the output's)."""
    watch.require(spec)
    run = dict(resume=resume, device=device, callbacks=callbacks, overrides=overrides)
    run.update(skip_bad=skip_bad, warn=warn, on_resolved=on_resolved, world=world, note=note)
    run.update(log_to=log_to)
    if world.parallel:
        world.agree(_facts(spec))
    if smoke:
        return _train(spec, output=output, smoke=True, **run)
    out, files = refuse_outputs_on_inputs(spec, output, resume)
    if not world.lead:  # rank 0 checks and holds the outputs; the others only train
        return _train(spec, output=out, smoke=False, **run)
    check_writable(out, makes_folder=True)
    claims = [path.name for path in files.written()]  # what other runs there leave alone
    with hold(out.parent, *([warn] if warn else []), name=files.lock.name, claims=claims):
        outputs.check_replace(files, force=force, resume=resume)
        runs.check_claims(files)
        removed = runs.remove_stale_temps(out.parent, files)
        if removed and note:
            note(runs.removed_note(removed))
        return _train(spec, output=out, smoke=False, **run)


def _train(
    spec: Spec,
    *,
    output: Path | None,
    resume: Path | None,
    smoke: bool,
    device: str | None,
    callbacks: list[Callback] | tuple,
    overrides: Sequence[str],
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
    on_resolved: Callable[[Resolved], None] | None = None,
    world: World = SINGLE,
    note: Callable[[str], None] | None = None,
    log_to: watch.Placement | None = None,
) -> TrainResult:
    """The steps of a run: resolve, the arrays to fit, resume, callbacks, fit, save outputs."""
    mine = world.device_for(device or spec.device)  # several ranks: a GPU each
    ready = _resolve(spec, mine, skip_bad, warn, world)
    if resume is None:  # a resumed run continues its own weights
        start(spec, ready)
    if on_resolved is not None:
        on_resolved(ready)
    warning = world.use_device(ready.backend)  # GPU ranks: NCCL, or the host path said once
    if warning and warn is not None:
        warn(warning)
    x, y, config = fit_arrays(spec, ready.ds, smoke)
    config.world = world
    tmp = tempfile.TemporaryDirectory(prefix="nncli-smoke-") if smoke else None
    out = Path(tmp.name) / "model.h5" if tmp else Path(output or spec.output)
    run = TrainingRun(spec, ready, out, world)
    run.warn = warn
    unversioned = version_note(spec)  # before a resume makes it the checkpoint's version
    if resume is not None:
        run.resume(resume)
    notes = version_notes(spec, unversioned, run.version_kept, note if world.lead else None)
    run.log = None if smoke else watch.run_log(run, log_to)
    with watch.watching(run.log):
        run.fit(x, y, config, [*callbacks], periodic=not smoke, overrides=overrides, device=device)
    if tmp is not None:
        try:
            if world.lead:  # the one rank that saves checks the round trip
                run.save(out)
                rows = whole_rows(x)  # rank 0 holds every row of a shared run
                check_round_trip(
                    out, ready.net, rows, config.mask, ready.backend.device, spec.dtype
                )
        finally:
            tmp.cleanup()
        return TrainResult(output=out, history=run.history, notes=notes, started=ready.started)
    with watch.watching(run.log):
        result = run.save_outputs()
    result.notes, result.started = notes, ready.started
    if run.log is not None:
        run.log.end(watch.FINISHED, result.files)
    return result


def start(spec: Spec, ready: Resolved) -> None:
    """``model.init_from``: the layers that match take the checkpoint's weights
    (``ready.started`` says which did)."""
    if spec.model.init_from is not None:
        where = spec.line_of("model.init_from")
        ready.started = start_from(ready.net, spec.model.init_from, where)


def _resolve(
    spec: Spec, device: str, skip_bad: bool, warn: Callable | None, world: World
) -> Resolved:
    """``resolve`` the run; with several ranks, rank 0 alone reads the data and sends the
    others what they need of it (nncli/training/spread.py)."""
    if not world.parallel or getattr(spec.data, "streaming", False):  # each rank reads its own
        return resolve(spec, device=device, skip_bad=skip_bad, warn=warn)
    ready = resolve(spec, device=device, skip_bad=skip_bad, warn=warn) if world.lead else None
    ds = share_dataset(world, ready.ds if ready is not None else None)
    if ready is not None:
        ready.ds = ds
        return ready
    return resolve(spec, device=device, dataset=ds)


def _facts(spec: Spec) -> dict[str, str]:
    """What every rank must hold alike before a shared run starts (``World.agree``)."""
    from nncli import __version__
    from nncli.spec import resolved_yaml

    paths = [getattr(spec.data, key, None) for key in ("path", "validation", "test")]
    return run_facts(resolved_yaml(spec), [Path(p) for p in paths if p], __version__)


def fit_arrays(spec: Spec, ds: Any, smoke: bool) -> tuple[np.ndarray, np.ndarray, FitConfig]:
    """(x, y, how to fit them) from the spec's training section and the loaded data; a smoke
    run takes at most ``SMOKE_ROWS`` rows for one epoch."""
    train, held = ds.parts["train"], ds.parts.get("validation")
    x, y, mask, validation = train.x, train.y, train.mask, None
    validation_mask = None if held is None else held.mask
    if ds.rows("validation"):
        validation = (held.x, held.y)
    epochs, batch_size = spec.training.epochs, spec.training.batch_size
    if smoke:
        first = slice(SMOKE_ROWS)
        x, y, mask = feeds.take(x, first), y[first], feeds.take(mask, first)
        validation = (
            None if validation is None else (feeds.take(validation[0], first), validation[1][first])
        )
        validation_mask = feeds.take(validation_mask, first)
        epochs, n = 1, feeds.rows(x)
        batch_size = min(n, 16) if batch_size == "full" else min(batch_size, n)
    config = FitConfig(epochs=epochs, batch_size=batch_size, shuffle=spec.training.shuffle)
    config.seed, config.validation, config.validation_mask = spec.seed, validation, validation_mask
    config.mask, config.augment, config.target_scale = mask, ds.augment, ds.target_scale
    config.metrics = tuple(spec.metrics)
    return x, y, config


def data_state(spec: Spec, ds: Any) -> dict[str, Any]:
    """What a checkpoint stores about its data: kind, input shape, task, the fitted encoder."""
    state = {
        "kind": ds.encoder.kind,  # ``table`` is stored as ``csv`` (data.kinds.SYNONYMS)
        **input_state(ds.input_shape),
        "dtype": spec.dtype,
        "task": ds.task,
        "encoder": ds.encoder.to_state(),
    }
    if ds.labels is not None:
        state["labels"] = [str(v) for v in ds.labels]
    if ds.target_scale is not None:  # evaluate reports RMSE and MAE in the file's units too
        state["target_scale"] = np.asarray(ds.target_scale, dtype=np.float64)
    return state


def input_state(shape: Any) -> dict[str, Any]:
    """A checkpoint's input: ``input_shape``, or for several inputs their ``input_names`` in
    order and ``input_shapes`` by name."""
    if not isinstance(shape, dict):
        return {"input_shape": list(shape)}
    return {"input_names": list(shape), "input_shapes": {k: list(v) for k, v in shape.items()}}


class TrainingRun:
    """One run's state between its steps: the history, where it saves, its last good file."""

    def __init__(self, spec: Spec, ready: Resolved, out: Path, world: World = SINGLE):
        from nncli.spec import resolved_yaml

        self.spec, self.ready, self.out, self.world = spec, ready, out, world
        self.data = data_state(spec, ready.ds)
        self.spec_yaml = resolved_yaml(spec)
        self.history, self.initial_epoch, self.best = History(), 0, None
        self.resumed_from: Path | None = None
        self.periodic: PeriodicCheckpoints | None = None
        self.last_epoch: LastEpoch | None = None  # what an interruption saves (rank 0)
        self.kept: Path | None = None  # where it saved it
        self.warn: Callable[[str], None] | None = None  # hears a loss that grows a thousandfold
        self.version_kept: tuple[int, int] | None = None  # (the spec's, the checkpoint's)
        self.log: Callback | None = None  # training.log's backends (nncli/commands/watch.py)

    def resume(self, path: Path) -> None:
        ready, written = self.ready, self.spec.version
        self.initial_epoch, self.history, self.best = resume_from(
            Path(path),
            self.spec,
            ready.net,
            ready.optimizer,
            self.data["encoder"],
            ready.backend,
            schedule=ready.schedule,
            early_stopping=ready.early_stopping,
        )
        self.resumed_from = path
        if written != self.spec.version:  # the checkpoint's version, kept: what patience meant
            self.version_kept = (written, self.spec.version)
            self.spec_yaml = resolved_yaml(self.spec)

    def save(
        self, path: Path, resume_weights: dict | None = None, scores: dict | None = None
    ) -> None:
        if not self.world.lead:  # rank 0 alone writes; every rank holds the same weights
            return
        try:  # created only now, so a run that fails early leaves nothing behind
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                f"cannot create the output folder ({exc.strerror})", where=str(path.parent)
            ) from None
        ready = self.ready
        model_io.save(
            path,
            net=ready.net,
            loss=ready.loss,
            data=self.data,
            spec_yaml=self.spec_yaml,
            optimizer=ready.optimizer,
            history=self.history,
            seed=self.spec.seed,
            resume_weights=resume_weights,
            scores=scores,
            schedule=None if ready.schedule is None else ready.schedule.state(),
            data_sha256=self.data_sha256,
        )

    @cached_property
    def data_sha256(self) -> str:
        """The training data's content digest, taken once, when the run first saves."""
        return content_digest(Path(self.spec.data.path))

    def last_good(self) -> Path | None:
        """The newest complete checkpoint of this run, or the one it resumed from."""
        periodic = self.periodic
        if self.kept is not None:
            return self.kept
        return periodic.last_good if periodic and periodic.last_good else self.resumed_from

    def callbacks(self, extra: list[Callback], periodic: bool) -> list[Callback]:
        """Finite weights first, the state an interruption saves, the caller's, periodic
        checkpoints, the signal guard last (an epoch's checkpoints are complete before a signal
        stops the run)."""
        every = self.spec.training.checkpoint_every
        ready, es = self.ready, self.ready.early_stopping
        if periodic and self.world.lead:
            self.last_epoch = LastEpoch(
                ready.net, ready.optimizer, ready.schedule, self.history, es
            )
        if every and periodic:
            files = outputs.run_files(self.out)
            self.periodic = PeriodicCheckpoints(
                every, self.save, files.latest, files.best, es, self.history
            )
            extra = [*extra, self.periodic]
        # the caller's own signal guard (a search's, which stops at an epoch's end) replaces ours
        given = [c for c in extra if isinstance(c, SignalStop)]
        guard = given[-1] if given else SignalStop(self.world.any if self.world.parallel else None)
        extra = [c for c in extra if not isinstance(c, SignalStop)]
        kept = [self.last_epoch] if self.last_epoch is not None else []
        logged = [self.log] if self.log is not None else []
        return [FiniteWeights(ready.net), *kept, *logged, *extra, guard]

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        config: FitConfig,
        extra: list[Callback],
        *,
        periodic: bool,
        overrides: Sequence[str],
        device: str | None,
    ) -> None:
        """Train; an interruption or a divergence names the last good checkpoint."""
        ready = self.ready
        config.callbacks = self.callbacks([*extra, *stopping.growth(self, x, y, config)], periodic)
        config.early_stopping, config.initial_epoch = ready.early_stopping, self.initial_epoch
        config.history, config.best_weights = self.history, self.best
        config.schedule = ready.schedule
        stop = config.callbacks[-1]
        try:
            # a diverging run overflows on its way to NaN; the check after each batch reports it
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"), stop.installed():
                try:
                    self.history = fit(ready.net, ready.loss, ready.optimizer, x, y, config)
                except KeyboardInterrupt:
                    if not stop.forced:  # saved under the guard: a second signal abandons it
                        stopping.keep_last_epoch(self)
                    raise
        except KeyboardInterrupt as exc:
            raise stopping.interrupted(self, exc, overrides, device) from None
        except DivergedError as exc:
            stopping.explain(self, exc)
            raise

    def save_outputs(self) -> TrainResult:
        """The final checkpoint (with the test part's scores), resolved spec and history."""
        ready, history, ds = self.ready, self.history, self.ready.ds
        test = None  # the final model (best weights when restored) on the held-out test part
        if ds.rows("test"):
            part = ds.parts["test"]
            test = evaluate(
                ready.net,
                ready.loss,
                part.x,
                part.y,
                mask=part.mask,
                target_scale=ds.target_scale,
                metrics=self.spec.metrics,
                world=self.world,
            )
        scores = {f"test_{k}": v for k, v in (test or {}).items()}
        self.save(self.out, resume_weights=history.last_weights, scores=scores)
        files = outputs.run_files(self.out)
        if self.world.lead:
            outputs.write_text_atomic(files.resolved, self.spec_yaml)
            outputs.write_text_atomic(files.history, outputs.history_csv(history))
        out = self.out
        return TrainResult(
            output=out, history=history, files=[out, files.resolved, files.history], test=test
        )
