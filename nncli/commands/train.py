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

from nncli.bounds.files import output_problem
from nncli.checkpoint import folder as outputs
from nncli.checkpoint import model as model_io
from nncli.checkpoint import runs
from nncli.checkpoint.lock import hold
from nncli.checkpoint.outputs import check_writable
from nncli.commands import stopping
from nncli.commands.resume import resume as resume_from
from nncli.data.digest import content_digest
from nncli.engine.history import History
from nncli.errors import CheckpointError, DataError, DivergedError, SpecError
from nncli.spec.resolve import Resolved, resolve
from nncli.training.callbacks import Callback, LastEpoch, PeriodicCheckpoints
from nncli.training.guards import FiniteWeights, SignalStop
from nncli.training.loop import FitConfig, evaluate, fit, predict
from nncli.training.parallel import SINGLE, World, run_facts
from nncli.training.spread import share_dataset

if TYPE_CHECKING:
    from nncli.spec import Spec

SMOKE_ROWS = 64


@dataclass
class TrainResult:
    output: Path
    history: History
    files: list[Path] = field(default_factory=list)
    test: dict[str, float] | None = None  # metrics on the test part, when there is one


def refuse_outputs_on_inputs(
    spec: Spec, output: Path | None = None, resume: Path | None = None
) -> tuple[Path, outputs.RunFiles]:
    """The run's checkpoint path and files, after checking the path can hold a checkpoint
    (``files.output_problem``) and no file the run writes is one of its inputs (the spec, the
    data, and the checkpoint it resumes from unless it continues it)."""
    out = Path(output or spec.output)
    field, where = ("--output", None) if output else ("output", spec.line_of("output"))
    outputs.check_kind(out, field, example=out / "model.h5")  # a folder: name a file inside it
    problem = output_problem(out)
    if problem is not None:
        raise SpecError(f"cannot write a checkpoint there: {problem}", field=field, where=where)
    files = outputs.run_files(out)
    inputs = [getattr(spec.data, key, None) for key in ("path", "validation", "test")]
    inputs += [spec.source, None if outputs.continues(files, resume) else resume]
    outputs.check_outputs(files.written(), inputs)
    return out, files


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
) -> TrainResult:
    """Refuse outputs on inputs, hold the checkpoint's lock, refuse to replace files without
    ``force`` and another run's files at all, remove a stopped run's temporary files (told to
    ``note``), then train
    (``overrides``: the ``--set`` values, repeated in the resume command an interruption
    prints). ``skip_bad``: leave out unreadable images; ``warn`` gets the data's warnings;
    ``on_resolved`` gets the resolved run (the device it chose) before training starts.
    ``world``: the processes sharing each batch; they first check they hold the same spec,
    data and nncli, and only rank 0 holds the lock and writes files."""
    run = dict(resume=resume, device=device, callbacks=callbacks, overrides=overrides)
    run.update(skip_bad=skip_bad, warn=warn, on_resolved=on_resolved, world=world)
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
) -> TrainResult:
    """The steps of a run: resolve, the arrays to fit, resume, callbacks, fit, save outputs."""
    mine = world.device_for(device or spec.device)  # several ranks: a GPU each
    ready = _resolve(spec, mine, skip_bad, warn, world)
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
    if resume is not None:
        run.resume(resume)
    run.fit(x, y, config, [*callbacks], periodic=not smoke, overrides=overrides, device=device)
    if tmp is not None:
        try:
            if world.lead:  # the one rank that saves checks the round trip
                run.save(out)
                rows = getattr(x, "whole", x)  # rank 0 holds every row of a shared run
                _check_round_trip(
                    out, ready.net, rows, config.mask, ready.backend.device, spec.dtype
                )
        finally:
            tmp.cleanup()
        return TrainResult(output=out, history=run.history)
    return run.save_outputs()


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
        x, y = x[:SMOKE_ROWS], y[:SMOKE_ROWS]
        mask = None if mask is None else mask[:SMOKE_ROWS]
        validation = (
            None if validation is None else (validation[0][:SMOKE_ROWS], validation[1][:SMOKE_ROWS])
        )
        validation_mask = None if validation_mask is None else validation_mask[:SMOKE_ROWS]
        epochs = 1
        batch_size = min(len(x), 16) if batch_size == "full" else min(batch_size, len(x))
    config = FitConfig(epochs=epochs, batch_size=batch_size, shuffle=spec.training.shuffle)
    config.seed, config.validation, config.validation_mask = spec.seed, validation, validation_mask
    config.mask, config.augment, config.target_scale = mask, ds.augment, ds.target_scale
    config.metrics = tuple(spec.metrics)
    return x, y, config


def data_state(spec: Spec, ds: Any) -> dict[str, Any]:
    """What a checkpoint stores about its data: kind, input shape, task, the fitted encoder."""
    state = {
        "kind": spec.data.kind,
        "input_shape": list(ds.input_shape),
        "dtype": spec.dtype,
        "task": ds.task,
        "encoder": ds.encoder.to_state(),
    }
    if ds.labels is not None:
        state["labels"] = [str(v) for v in ds.labels]
    if ds.target_scale is not None:  # evaluate reports RMSE and MAE in the file's units too
        state["target_scale"] = np.asarray(ds.target_scale, dtype=np.float64)
    return state


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

    def resume(self, path: Path) -> None:
        ready = self.ready
        self.initial_epoch, self.history, self.best = resume_from(
            Path(path),
            self.spec,
            ready.net,
            ready.optimizer,
            self.data["encoder"],
            ready.backend,
            schedule=ready.schedule,
        )
        self.resumed_from = path

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
        return [FiniteWeights(ready.net), *kept, *extra, guard]

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


def _check_round_trip(
    path: Path, net: Any, x: np.ndarray, mask: np.ndarray | None, device: str, dtype: str
) -> None:
    expected = predict(net, x, mask=mask)
    got = predict(model_io.load(path, device, dtype).net, x, mask=mask)
    if not np.isfinite(got).all():
        raise DataError("smoke run: the reloaded model predicts non-finite values")
    if not np.allclose(got, expected, atol=1e-5, rtol=1e-5):
        raise CheckpointError("smoke run: the reloaded model predicts differently", where=str(path))
