"""Spec + data -> everything a run needs, checked once: ``train`` and ``validate`` both start here.

``resolve`` picks the device, loads the data, settles the input shape (``model.input`` must agree
with the data), builds the network (``units: auto`` from the data), the loss and the optimizer,
and checks the training settings against what this data and task will log. Whatever would stop a
training run before its first batch stops here, with the same message for both commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncli import data
from nncli.backend import Backend, open_device
from nncli.data.dataset import Dataset
from nncli.data.streaming import Streamed, Unheld
from nncli.engine.graph import data_position
from nncli.engine.losses import CrossEntropy, Loss
from nncli.engine.network import Sequential
from nncli.engine.optimizers import Optimizer
from nncli.engine.registry import did_you_mean
from nncli.engine.schedules import ReduceOnPlateau, Schedule
from nncli.errors import DataError, SpecError
from nncli.spec import build
from nncli.training.callbacks import EarlyStopping
from nncli.training.guards import require_finite
from nncli.training.metrics import RunningMetrics
from nncli.training.scores import SCORES

SAID = {"validation": "val"}  # a part's word in the finite-data messages (as they have read)


@dataclass
class Resolved:
    """A spec made concrete: the device (and why), the data, the network and its training parts."""

    spec: Any
    backend: Backend
    device: str  # e.g. ``device: cpu (auto: CuPy not installed)``, for the command line to print
    ds: Dataset
    net: Sequential
    loss: Loss
    optimizer: Optimizer
    early_stopping: EarlyStopping | None
    schedule: Schedule | None = None
    started: list[Any] = field(default_factory=list)  # model.init_from: each layer's source


def resolve(
    spec: Any,
    *,
    device: str | None = None,
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
    dataset: Dataset | None = None,
) -> Resolved:
    """Every check a training run makes before its first batch, in the order it makes them.
    ``dataset``: data another process loaded and checked (a shared run's other ranks)."""
    backend, device_line = _backend(spec, device)
    ds = _dataset(spec, skip_bad, warn) if dataset is None else dataset
    shape = input_shape(spec, ds)
    vocabulary = ds.encoder.vocabulary_size if ds.encoder.input_form == "ids" else None
    if isinstance(shape, dict):  # several inputs: each text input's own vocabulary
        vocabulary = ds.encoder.vocabulary_size
    net = build.network(spec, shape, ds.output_width, backend, vocabulary)
    loss, optimizer = build.loss(spec), build.optimizer(spec)
    _check_output(spec, net)
    _check_token_readers(spec, net, vocabulary)
    _check_batch_size(spec, ds.rows("train"))
    _check_metrics(spec, loss.task)
    early_stopping = _early_stopping(spec, loss.task, ds, optimizer)
    schedule = _schedule(spec, loss.task, ds, optimizer)
    _class_weight(spec, ds, loss)
    return Resolved(spec, backend, device_line, ds, net, loss, optimizer, early_stopping, schedule)


def _backend(spec: Any, device: str | None) -> tuple[Backend, str]:
    """The backend, and the line that says which device (and, for ``auto``, why that one)."""
    return open_device(device or spec.device, spec.dtype)


def _dataset(spec: Any, skip_bad: bool, warn: Callable[[str], None] | None) -> Dataset:
    ds = data.load(
        spec.data,
        spec.base_dir,
        spec.seed,
        spec.loss_name,
        skip_bad=skip_bad,
        line_of=spec.line_of,
        input_form=build.input_form(spec.model.layers),
        dtype=spec.dtype,
    )
    for note in ds.warnings if warn else ():
        warn(note)
    for name, part in ds.parts.items():  # the loaders check their own files; this is a net
        if isinstance(part.x, Unheld):  # not in memory: checked as each chunk is read
            continue
        word = SAID.get(name, name)
        require_finite(part.x, f"the {word} inputs", ds.source)
        require_finite(part.y, f"the {word} targets", ds.source)
    if ds.rows("train") == 0:
        raise DataError("the training part is empty", where=ds.source)
    return ds


def input_shape(spec: Any, ds: Dataset) -> Any:
    """One sample's shape from the data ({input name: shape} for several inputs);
    ``model.input``, when given, must say the same."""
    found = ds.input_shape
    given = spec.model.input
    if given is None or (not isinstance(found, dict) and tuple(given) == found):
        return found
    if isinstance(found, dict):
        raise SpecError(
            f"the data has {len(found)} inputs ({', '.join(found)}), each shaped by "
            f"data.inputs; expected no model.input, got {list(given)}",
            field="model.input",
            where=spec.line_of("model.input"),
        )
    hint = ""
    if len(found) == 3 and tuple(given) == (*found[1:], found[0]):
        hint = " (channels come first: [channels, height, width])"
    raise SpecError(
        f"expected {list(found)} (one sample of {ds.source}), got {list(given)}{hint}",
        field="model.input",
        where=spec.line_of("model.input"),
    )


def _check_output(spec: Any, net: Sequential) -> None:
    """A softmax over one unit is 1 whatever its input: nothing to learn, and log(1 - p) fails."""
    if net.output_activation == "softmax" and net.output_shape[-1] == 1:
        field = f"model.layers[{len(spec.model.layers) - 1}].activation"
        raise SpecError(
            "softmax over 1 output unit is always 1; expected sigmoid for one output "
            "(binary_cross_entropy), or softmax over 2+ units (cross_entropy)",
            field=field,
            where=spec.line_of(field) or spec.line_of("model.layers"),
        )


def _check_token_readers(spec: Any, net: Sequential, vocabulary: Any) -> None:
    """A text input of a table (``data.inputs``) is token ids: what reads it takes ids."""
    texts = vocabulary if isinstance(vocabulary, dict) else {}
    for k, name in enumerate(net.input_names):
        for i, taken in enumerate(net.wiring.inputs):
            layer = net.layers[i]
            if name in texts and data_position(k) in taken and not layer.integer_input:
                field = f"model.layers[{i}].inputs"
                raise SpecError(
                    f"input {name!r} is a text column's token ids; expected an embedding to "
                    f"read it, got {layer.type_name}",
                    field=field,
                    where=spec.line_of(field) or spec.line_of(f"model.layers[{i}]"),
                )


def _check_batch_size(spec: Any, rows: int) -> None:
    size = spec.training.batch_size
    if size != "full" and size > rows:
        raise SpecError(
            f"expected at most {rows} (the training rows), got {size}",
            field="training.batch_size",
            where=spec.line_of("training.batch_size"),
        )


def monitors(task: str, validation: bool, clipped: bool, metrics: list[str] = ()) -> list[str]:
    """What a run logs each epoch and early stopping can watch: the loss and the task's metrics
    (``grad_norm`` with ``clip_norm``), and each of those and the spec's ``metrics`` on the
    validation part when there is one."""
    names = list(RunningMetrics(task).result())  # what ``fit`` logs for this task
    val = [f"val_{n}" for n in [*names, *(m for m in metrics if m not in names)]]
    return names + (["grad_norm"] if clipped else []) + (val if validation else [])


def _check_metrics(spec: Any, task: str) -> None:
    """accuracy, f1 and auc score classifiers; mae, rmse and r2 regressors."""
    for i, name in enumerate(spec.metrics):
        wanted = SCORES[name].task
        if wanted != task:
            fits = [m for m, score in SCORES.items() if score.task == task]
            raise SpecError(
                f"expected a {task} metric ({', '.join(fits)}), got {name!r} (a {wanted} metric)",
                field=f"metrics[{i}]",
                where=spec.line_of(f"metrics[{i}]") or spec.line_of("metrics"),
            )


def _check_monitor(
    spec: Any, monitor: str, field: str, task: str, ds: Dataset, optimizer: Optimizer
) -> None:
    """A monitored metric must be one the run logs (``val_*`` only with validation data)."""
    where = spec.line_of(field) or spec.line_of(field.rsplit(".", 1)[0])
    has_validation = ds.rows("validation") > 0
    if monitor.startswith("val_") and not has_validation:
        raise SpecError(
            f"monitor {monitor!r} needs validation data "
            "(set data.validation_split or data.validation)",
            field=field,
            where=where,
        )
    names = monitors(task, has_validation, optimizer.clip_norm is not None, spec.metrics)
    if monitor not in names:
        raise SpecError(
            f"expected one of {', '.join(names)} (a {task} task), got {monitor!r}"
            + did_you_mean(monitor, names),
            field=field,
            where=where,
        )


def _schedule(spec: Any, task: str, ds: Dataset, optimizer: Optimizer) -> Schedule | None:
    schedule = build.schedule(spec)
    if isinstance(schedule, ReduceOnPlateau):
        field = "optimizer.schedule.monitor"
        _check_monitor(spec, schedule.monitor, field, task, ds, optimizer)
    return schedule


def _early_stopping(
    spec: Any, task: str, ds: Dataset, optimizer: Optimizer
) -> EarlyStopping | None:
    es = spec.training.early_stopping
    if es is None:
        return None
    field = "training.early_stopping.monitor"
    _check_monitor(spec, es.monitor, field, task, ds, optimizer)
    return EarlyStopping(
        monitor=es.monitor,
        patience=es.patience,
        min_delta=es.min_delta,
        restore_best=es.restore_best,
        mode=es.mode,
        keras_patience=spec.version >= 2,
    )


def _class_weight(spec: Any, ds: Dataset, loss: Loss) -> None:
    """``training.class_weight`` -> the cross-entropy's weight of each class, in output order:
    ``balanced`` n / (classes count) over the training rows (scikit-learn's), or the mapping
    (unnamed labels weigh 1)."""
    given = spec.training.class_weight
    if given is None:
        return
    field = "training.class_weight"
    where = spec.line_of(field)
    if not isinstance(loss, CrossEntropy):
        raise SpecError(
            f"expected loss cross_entropy with class weights, got {loss.type_name}",
            field=field,
            where=where,
        )
    labels = [str(v) for v in ds.labels or []]
    if given == "balanced":
        y = ds.parts["train"].y
        if isinstance(y, Streamed):  # counted in the pass before training
            counts = np.asarray(y.stream.label_counts, dtype=np.float64)
        else:
            counts = y.reshape(-1, y.shape[-1]).sum(axis=0, dtype=np.float64)
        weights = np.where(counts > 0, counts.sum() / (len(labels) * np.maximum(counts, 1)), 0.0)
        loss.class_weight = [float(w) for w in weights]
        return
    for label in given:
        if label not in labels:
            raise SpecError(
                f"expected a label of the training data ({', '.join(labels)}), got {label!r}"
                + did_you_mean(label, labels),
                field=f"{field}.{label}",
                where=spec.line_of(f"{field}.{label}") or where,
            )
    loss.class_weight = [float(given.get(label, 1.0)) for label in labels]
