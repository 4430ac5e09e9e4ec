"""``nncli train``: data -> network -> fit -> checkpoint, history and resolved spec on disk.

Also ``--resume`` (weights, optimizer state, epoch and history from a checkpoint; the spec must
agree with it on the model and the data encoding), ``--smoke`` (a tiny run in a temporary
folder with a predict round trip) and ``training.checkpoint_every`` (latest and best files).
"""

from __future__ import annotations

import math
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nncli import model_io, outputs, runlock
from nncli.errors import CheckpointError, DataError, DivergedError, Interrupted, SpecError
from nncli.guards import FiniteWeights, SignalStop
from nncli.resolving import Resolved, resolve
from nncli.train import Callback, EarlyStopping, History, evaluate, fit, predict

SMOKE_ROWS = 64


@dataclass
class TrainResult:
    output: Path
    history: History
    files: list[Path] = field(default_factory=list)
    test: dict[str, float] | None = None  # metrics on the test part, when there is one


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """The dotted path of the first place two nested values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{where}.{key}".lstrip(".")
            diff = first_difference(a[key], b[key], f"{where}.{key}")
            if diff:
                return diff
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = first_difference(x, y, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        if a_arr.shape != b_arr.shape or a_arr.dtype.kind != b_arr.dtype.kind:
            return where.lstrip(".") or "."
        same = (
            np.array_equal(a_arr, b_arr)
            if a_arr.dtype.kind in "biuf"
            else (a_arr.tolist() == b_arr.tolist())
        )
        return None if same else (where.lstrip(".") or ".")
    return None if a == b else (where.lstrip(".") or ".")


class PeriodicCheckpoints(Callback):
    """``training.checkpoint_every: N``: every N epochs save the latest state, and the best."""

    def __init__(
        self,
        every: int,
        save: Any,
        latest: Path,
        best: Path,
        early_stopping: EarlyStopping | None,
        history: History,
    ):
        self.every, self.save, self.latest, self.best = every, save, latest, best
        self.es, self.history = early_stopping, history
        self.last_good: Path | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if epoch % self.every == 0:
            self.save(self.latest)
            self.last_good = self.latest
        if self.es is not None and self.history.best_epoch == epoch:
            self.save(self.best)


def resume_command(spec: Any, last: Path, out: Path, overrides: Sequence[str], device: Any) -> str:
    """The exact command line that continues an interrupted run (quoted for a POSIX shell)."""
    words = ["nncli", "train", str(spec.source or "SPEC")]
    words += [w for o in overrides for w in ("--set", o)]
    words += ["--resume", str(last), "--output", str(out)]
    return shlex.join(words + (["--device", device] if device else []))


def _resume(
    path: Path, spec: Any, net: Any, optimizer: Any, encoder_state: dict, backend: Any
) -> tuple[int, History, dict | None]:
    model = model_io.load(path, backend.name, spec.dtype)
    diff = first_difference(model.net.config(), net.config(), "model.layers")
    diff = diff or _settings_difference(model.spec_yaml, spec)
    diff = diff or first_difference(model.encoder_state, encoder_state, "data")
    if diff is not None:
        raise SpecError(
            f"the spec disagrees with the checkpoint {path} at {diff}; resume needs "
            "the same model, loss, optimizer and data encoding",
            field="--resume",
        )
    training = model.training
    net.set_weights(training.get("resume_weights") or model.net.get_weights())
    if model.optimizer is not None and model.optimizer.type == optimizer.type_name:
        optimizer.load_state(model.optimizer.state, model.optimizer.step, backend)
    columns = training.get("history", {})
    count = len(columns.get("epoch", []))
    history = History(
        epochs=[
            {k: float(v[i]) for k, v in columns.items() if not math.isnan(float(v[i]))}
            for i in range(count)
        ],
        best_epoch=training.get("best_epoch"),
        best_value=training.get("best_value"),
    )
    for e in history.epochs:
        e["epoch"] = int(e["epoch"])
    return int(training.get("epoch", count)), history, _best_weights(path, model, spec.dtype)


# what a resumed run may change: where the files are, and the learning rate
RESUME_MAY_CHANGE = {"data": ("path", "validation", "test"), "optimizer": ("learning_rate",)}


def _settings_difference(stored_yaml: str, spec: Any) -> str | None:
    """The first loss, optimizer or data setting the checkpoint was trained with that ``spec``
    changes (an optimizer's slots mean nothing to another one; the data's scaling, features and
    target are the encoding). The stored spec is only compared, never used to find files."""
    from nncli.spec import loads, to_dict

    try:
        stored = to_dict(loads(stored_yaml, "the checkpoint's spec"))
    except SpecError:
        return "spec (the checkpoint's own spec cannot be read)"
    current = to_dict(spec)
    for section in ("loss", "optimizer", "data"):
        a, b = stored.get(section), current.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            keep = RESUME_MAY_CHANGE.get(section, ())
            a, b = ({k: v for k, v in d.items() if k not in keep} for d in (a, b))
        diff = first_difference(a, b, section)
        if diff:
            return diff
    return None


def _best_weights(path: Path, model: Any, dtype: str) -> dict | None:
    """The best epoch's weights, which ``restore_best`` needs at the end of a resumed run: the
    checkpoint's own model when it holds them, else the ``.best.h5`` beside a ``.latest.h5``."""
    training = model.training
    best_epoch = training.get("best_epoch")
    if "resume_weights" in training or best_epoch == training.get("epoch"):
        return model.net.get_weights()  # a final checkpoint's /model holds the best epoch
    stem = path.name.removesuffix(".latest.h5")
    best_path = path.with_name(f"{stem}.best.h5")
    if best_epoch is None or stem == path.name or not best_path.exists():
        return None
    best = model_io.load(best_path, model.net.backend.name, dtype)
    return best.net.get_weights() if best.training.get("epoch") == best_epoch else None


def refuse_outputs_on_inputs(
    spec: Any, output: Path | None = None, resume: Path | None = None
) -> tuple[Path, outputs.RunFiles]:
    """The run's checkpoint path and files, after checking no file the run writes is one of its
    inputs (the spec, the data, and the checkpoint it resumes from unless it continues it)."""
    out = Path(output or spec.output)
    files = outputs.run_files(out)
    inputs = [getattr(spec.data, key, None) for key in ("path", "validation", "test")]
    inputs += [spec.source, None if outputs.continues(files, resume) else resume]
    outputs.check_outputs(files.written(), inputs)
    return out, files


def train(
    spec: Any,
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
) -> TrainResult:
    """Refuse outputs on inputs, hold the checkpoint's lock, refuse to replace files without
    ``force``, remove a stopped run's temporary files (told to ``note``), then train
    (``overrides``: the ``--set`` values, repeated in the resume command an interruption
    prints). ``skip_bad``: leave out unreadable images; ``warn`` gets the data's warnings;
    ``on_resolved`` gets the resolved run (the device it chose) before training starts."""
    run = dict(resume=resume, device=device, callbacks=callbacks, overrides=overrides)
    run.update(skip_bad=skip_bad, warn=warn, on_resolved=on_resolved)
    if smoke:
        return _train(spec, output=output, smoke=True, **run)
    out, files = refuse_outputs_on_inputs(spec, output, resume)
    with runlock.hold(out.parent, *([warn] if warn else []), name=files.lock.name):
        outputs.check_replace(files, force=force, resume=resume)
        removed = outputs.remove_stale_temps(out.parent)
        if removed and note:
            note(outputs.removed_note(removed))
        return _train(spec, output=out, smoke=False, **run)


def _train(
    spec: Any,
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
) -> TrainResult:
    ready = resolve(spec, device=device, skip_bad=skip_bad, warn=warn)
    if on_resolved is not None:
        on_resolved(ready)
    backend, ds, net = ready.backend, ready.ds, ready.net
    loss, optimizer, early_stopping = ready.loss, ready.optimizer, ready.early_stopping
    x, y, mask, validation = ds.x_train, ds.y_train, ds.mask_train, None
    validation_mask = ds.mask_val
    if ds.x_val is not None and len(ds.x_val):
        validation = (ds.x_val, ds.y_val)
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
    data_state = {
        "kind": spec.data.kind,
        "input_shape": list(ds.input_shape),
        "dtype": spec.dtype,
        "task": ds.task,
        "encoder": ds.encoder.to_state(),
    }
    if ds.labels is not None:
        data_state["labels"] = [str(v) for v in ds.labels]
    if ds.target_scale is not None:  # evaluate reports RMSE and MAE in the file's units too
        data_state["target_scale"] = np.asarray(ds.target_scale, dtype=np.float64)

    tmp = tempfile.TemporaryDirectory(prefix="nncli-smoke-") if smoke else None
    out = Path(tmp.name) / "model.h5" if tmp else Path(output or spec.output)

    initial_epoch, history, best = 0, History(), None
    if resume is not None:
        initial_epoch, history, best = _resume(
            Path(resume), spec, net, optimizer, data_state["encoder"], backend
        )
    from nncli.spec import resolved_yaml

    spec_yaml = resolved_yaml(spec)

    def save(path: Path, resume_weights: dict | None = None, scores: dict | None = None) -> None:
        try:  # created only now, so a run that fails early leaves nothing behind
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                f"cannot create the output folder ({exc.strerror})", where=str(path.parent)
            ) from None
        model_io.save(
            path,
            net=net,
            loss=loss,
            data=data_state,
            spec_yaml=spec_yaml,
            optimizer=optimizer,
            history=history,
            seed=spec.seed,
            resume_weights=resume_weights,
            scores=scores,
        )

    def last_good() -> Path | None:
        """The newest complete checkpoint of this run, or the one it resumed from."""
        return periodic.last_good if periodic and periodic.last_good else resume

    all_callbacks = [FiniteWeights(net), *callbacks]
    periodic = None
    if spec.training.checkpoint_every and not smoke:
        files = outputs.run_files(out)
        periodic = PeriodicCheckpoints(
            spec.training.checkpoint_every,
            save,
            files.latest,
            files.best,
            early_stopping,
            history,
        )
        all_callbacks.append(periodic)
    stop = SignalStop()  # last: an epoch's checkpoints are complete before a signal stops it
    all_callbacks.append(stop)
    try:
        # a diverging run overflows on its way to NaN; the check after each batch reports it
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), stop.installed():
            history = fit(
                net,
                loss,
                optimizer,
                x,
                y,
                epochs=epochs,
                batch_size=batch_size,
                shuffle=spec.training.shuffle,
                seed=spec.seed,
                validation=validation,
                mask=mask,
                validation_mask=validation_mask,
                callbacks=all_callbacks,
                early_stopping=early_stopping,
                initial_epoch=initial_epoch,
                history=history,
                best_weights=best,
                augment=ds.augment,
                target_scale=ds.target_scale,
            )
    except KeyboardInterrupt as exc:
        last = last_good()
        done = history.epochs[-1]["epoch"] if history.epochs else initial_epoch
        how = (
            f"; resume with: {resume_command(spec, last, out, overrides, device)}"
            if last
            else "; no checkpoint was saved yet (set training.checkpoint_every)"
        )
        raise Interrupted(
            f"training interrupted after epoch {done}; last good checkpoint: {last or 'none'}{how}",
            exit_code=getattr(exc, "exit_code", 130),
        ) from None
    except DivergedError as exc:
        last = last_good()
        lr_place = spec.line_of("optimizer.learning_rate") or spec.line_of("optimizer")
        exc.message += (
            f"; likely cause: a learning rate too large ({optimizer.learning_rate}"
            f"{', ' + lr_place if lr_place else ''}); last good checkpoint: "
            f"{last if last else 'none saved yet'}"
        )
        raise
    if smoke:
        try:
            save(out)
            _check_round_trip(out, net, x, mask, backend.name, spec.dtype)
        finally:
            tmp.cleanup()
        return TrainResult(output=out, history=history)

    test = None  # the final model (best weights when restored) on the held-out test part
    if ds.x_test is not None and len(ds.x_test):
        test = evaluate(
            net, loss, ds.x_test, ds.y_test, mask=ds.mask_test, target_scale=ds.target_scale
        )
    scores = {f"test_{k}": v for k, v in (test or {}).items()}
    save(out, resume_weights=history.last_weights, scores=scores)
    files = outputs.run_files(out)
    outputs.write_text_atomic(files.resolved, spec_yaml)
    outputs.write_text_atomic(files.history, outputs.history_csv(history))
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
