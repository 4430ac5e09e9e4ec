"""A checkpoint's contents checked against themselves on load: the reader vouches for the
structure and the checksums, not for sense. Every refusal is a CheckpointError (exit 4) naming
the file and the array or field, with what was expected and what was found.

Before the network is built: the data section (input shape, dtype, labels) and every stored
layer array (float32 or float64, finite). While it is built: each layer's arrays against the
shapes its config declares (``Layer.array_shapes``), before the layer allocates its own, so a
size the file does not hold is never allocated. Afterwards: the optimizer's slots, the training
record and the stored encoder against the network and the data section. Fields this nncli does
not know are left alone: older and newer code may write some.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from nncli.backend import DTYPES
from nncli.checkpoint.format import Checkpoint, LayerRecord, OptimizerRecord
from nncli.data import encoder_from_state
from nncli.data.dataset import distinct_texts, state_texts, task_for_loss
from nncli.engine.layer import Layer, Shape
from nncli.engine.network import Sequential
from nncli.errors import CheckpointError, ShapeError

WHOLE = "a whole number"
FLOATS = ", ".join(DTYPES)


class Contents:
    """The checks of one file: each names ``path`` and the place in it."""

    def __init__(self, path: Path):
        self.path = path

    def bad(self, field: str, message: str) -> CheckpointError:
        return CheckpointError(message, where=str(self.path), field=field)

    # -- before the network is built ------------------------------------------------------------
    def input_shape(self, data: dict) -> Any:
        """``/data/input_shape`` as a shape: one or more positive whole numbers; for several
        inputs ``/data/input_names`` and each one's ``/data/input_shapes/<name>`` as a dict."""
        if "input_names" in data:
            return self.input_shapes(data)
        if "input_shape" not in data:
            raise self.bad("/data", "no input_shape: the network's input is unknown")
        shape = data["input_shape"]
        dims = shape.tolist() if isinstance(shape, np.ndarray) else shape
        if not isinstance(dims, list) or not dims or not all(_whole(d, 1) for d in dims):
            found = dims if isinstance(dims, list) else repr(dims)
            raise self.bad("/data/input_shape", f"expected positive whole numbers, found {found}")
        return tuple(int(d) for d in dims)

    def input_shapes(self, data: dict) -> dict[str, tuple[int, ...]]:
        names, shapes = data["input_names"], data.get("input_shapes")
        names = state_texts(names) if isinstance(names, list | np.ndarray) else None
        if not names or not isinstance(shapes, dict) or set(shapes) != set(names):
            found = sorted(shapes) if isinstance(shapes, dict) else repr(shapes)
            message = f"expected a shape for each of {names}, found {found}"
            raise self.bad("/data/input_shapes", message)
        return {name: self.input_shape({"input_shape": shapes[name]}) for name in names}

    def data(self, data: dict) -> None:
        """The dtype the weights are used in, and labels that each name one class."""
        dtype = data.get("dtype", "float32")
        if dtype not in DTYPES:
            raise self.bad("/data/dtype", f"expected one of {FLOATS}, found {dtype!r}")
        labels = data.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
            raise self.bad("/data/labels", f"expected a list of class labels, found {labels!r}")
        with self.placed("/data/labels"):
            distinct_texts(labels, "")
        scale = data.get("target_scale")  # divides metrics back into the file's units
        if scale is not None and not (
            isinstance(scale, np.ndarray)
            and scale.ndim == 1
            and scale.dtype.kind in "iuf"
            and (np.isfinite(scale) & (scale > 0)).all()
        ):
            found = repr(scale.tolist() if isinstance(scale, np.ndarray) else scale)
            raise self.bad("/data/target_scale", f"expected positive numbers, found {found}")

    @contextmanager
    def placed(self, field: str) -> Iterator[None]:
        """A CheckpointError raised inside, with its field relative to ``field``, gets this
        file and the whole field."""
        try:
            yield
        except CheckpointError as exc:
            exc.where, exc.field = str(self.path), "/".join(f for f in (field, exc.field) if f)
            raise

    def arrays(self, field: str, arrays: Any) -> dict[str, np.ndarray]:
        """A group of weights: float32 or float64 arrays of finite numbers."""
        if not isinstance(arrays, dict):
            raise self.bad(field, f"expected a group of arrays, found {type(arrays).__name__}")
        for name, a in arrays.items():
            where = f"{field}/{name}"
            if not isinstance(a, np.ndarray) or a.dtype.name not in DTYPES:
                found = a.dtype.name if isinstance(a, np.ndarray) else type(a).__name__
                raise self.bad(where, f"expected {FLOATS} numbers, found {found}")
            finite = np.isfinite(a)
            if not finite.all():
                at = [int(i) for i in np.argwhere(~finite)[0]]
                value = a[tuple(at)]
                raise self.bad(where, f"expected finite numbers, found {value} at {at}")
        return arrays

    def layers(self, layers: list[LayerRecord]) -> None:
        for record in layers:
            group = f"/model/{record.index}.{record.type}"
            self.arrays(group, record.params)
            self.arrays(f"{group}/state", record.state)

    # -- after it is built ------------------------------------------------------------------------
    def optimizer(self, record: OptimizerRecord, net: Sequential) -> None:
        """A step count >= 0, and slots (m, v, ...) shaped as the parameters they follow: an
        optimizer would broadcast a slot of shape (1,) over its parameter without a word."""
        if not _whole(record.step, 0):
            found = f"expected {WHOLE} >= 0, found {record.step!r}"
            raise self.bad("/optimizer", f"attribute 'step': {found}")
        params = net.named_parameters()
        for name, held in record.state.items():
            group = "/optimizer/" + "/".join(name.rsplit(".", 1))
            if name not in params:
                raise self.bad(group, f"names no parameter of the network ({', '.join(params)})")
            for slot, a in self.arrays(group, held).items():
                want = tuple(params[name].shape)
                if a.shape != want:
                    found = f"expected shape {want}, the parameter's, found {a.shape}"
                    raise self.bad(f"{group}/{slot}", found)

    def training(self, training: dict, net: Sequential) -> None:
        """The fields this nncli reads back: epochs, the best epoch, history, resume weights."""
        epoch = training.get("epoch", 0)
        if not _whole(epoch, 0):
            raise self.bad(
                "/training", f"attribute 'epoch': expected {WHOLE} >= 0, found {epoch!r}"
            )
        best, value = training.get("best_epoch"), training.get("best_value")
        if best is not None and not (_whole(best, 1) and best <= epoch):
            found = f"expected none or {WHOLE} from 1 to {epoch} (the epochs run), found {best!r}"
            raise self.bad("/training", f"attribute 'best_epoch': {found}")
        if (value is not None or best is not None) and not _number(value):
            found = f"expected a number (the best epoch's), found {value!r}"
            raise self.bad("/training", f"attribute 'best_value': {found}")
        if "history" in training:
            self.history(training["history"])
        if "resume_weights" in training:
            self.resume_weights(training["resume_weights"], net)

    def history(self, history: Any) -> None:
        """One column per metric, each one value an epoch, all of one length; the epoch column
        counts from 1 (resume reads the rows back as epochs)."""
        columns = self.arrays_of("/training/history", history)
        for name, column in columns.items():
            if column.ndim != 1:
                found = f"expected one value per epoch, found shape {column.shape}"
                raise self.bad(f"/training/history/{name}", found)
        first = "epoch" if "epoch" in columns else next(iter(columns), None)
        for name, column in columns.items():
            if len(column) != len(columns[first]):
                found = f"expected {len(columns[first])} values, one per row of "
                found += f"/training/history/{first}, found {len(column)}"
                raise self.bad(f"/training/history/{name}", found)
        epochs = columns.get("epoch")
        if epochs is not None and len(epochs):
            with np.errstate(invalid="ignore"):  # inf % 1: the check below names it
                whole = np.isfinite(epochs) & (epochs >= 1) & (epochs % 1 == 0)
            if not whole.all():
                found = f"expected epoch numbers from 1, found {epochs[~whole][0]}"
                raise self.bad("/training/history/epoch", found)

    def arrays_of(self, field: str, group: Any) -> dict[str, np.ndarray]:
        if not isinstance(group, dict):
            raise self.bad(field, f"expected a group of arrays, found {type(group).__name__}")
        for name, a in group.items():
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "iuf":
                found = a.dtype.name if isinstance(a, np.ndarray) else type(a).__name__
                raise self.bad(f"{field}/{name}", f"expected an array of numbers, found {found}")
        return group

    def resume_weights(self, weights: Any, net: Sequential) -> None:
        """The last epoch's weights: one for each array of the network, shaped as it."""
        field = "/training/resume_weights"
        self.arrays(field, weights)
        arrays = {**net.named_parameters(), **net.named_state()}
        for name in [*arrays, *weights]:
            if name not in weights:
                raise self.bad(field, f"has no {name}, which the network needs")
            if name not in arrays:
                found = f"names no array of the network ({', '.join(arrays)})"
                raise self.bad(f"{field}/{name}", found)
            want, got = tuple(arrays[name].shape), weights[name].shape
            if got != want:
                raise self.bad(f"{field}/{name}", f"expected shape {want}, found {got}")

    def outputs(self, data: dict, net: Sequential) -> None:
        """A classifier's outputs: one per label (one in all for binary cross-entropy)."""
        labels, loss = data.get("labels"), data.get("loss")
        if labels is None or task_for_loss(str(loss)) != "classification":
            return
        want = 1 if loss == "binary_cross_entropy" else len(labels)
        if net.output_shape[-1] != want:
            last = f"/model/{len(net.layers) - 1}.{net.layers[-1].type_name}"
            found = f"{loss} over {len(labels)} labels needs {want} outputs, found {last} "
            raise self.bad("/data/labels", found + f"giving {net.output_shape[-1]}")

    def encoder(self, data: dict) -> None:
        """The stored encoder rebuilt; it must serve the data kind and labels it sits beside."""
        if "encoder" not in data:
            return
        try:
            with self.placed("/data/encoder"):
                encoder = encoder_from_state(data["encoder"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            found = f"{type(exc).__name__}: {exc}"
            message = f"the stored data encoder is incomplete ({found})"
            raise self.bad("/data/encoder", message) from None
        kind = data.get("kind", encoder.kind)
        if kind != encoder.kind:
            found = f"expected the stored encoder's kind {encoder.kind!r}, found {kind!r}"
            raise self.bad("/data/kind", found)
        if "labels" in data and encoder.labels is not None and encoder.labels != data["labels"]:
            found = f"expected the stored encoder's {encoder.labels}, found {data['labels']}"
            raise self.bad("/data/labels", found)


def layer_check(records: list[LayerRecord]) -> Callable[[Layer, Shape], None]:
    """``Sequential(check=...)``: ShapeError before a layer is built when the arrays its config
    declares for its input are not those stored, so nothing is allocated for a size the file
    does not hold; names the first array that differs and the layer's settings."""
    stored = {r.index: {**r.params, **r.state} for r in records}

    def check(layer: Layer, in_shape: Shape) -> None:
        declared, held = layer.array_shapes(in_shape), stored[layer.index]
        group = f"/model/{layer.index}.{layer.type_name}"
        settings = ", ".join(f"{k}: {v}" for k, v in layer.config().items() if k != "type")
        config = f"its config ({settings}) on input {in_shape}"
        for name, shape in declared.items():
            if name not in held:
                raise ShapeError(f"{group} has no {name}, but {config} builds one of {shape}")
            if held[name].shape != tuple(shape):
                found = f"{group} has a {name} of shape {held[name].shape}"
                raise ShapeError(f"{found}, but {config} builds {tuple(shape)}")
        for name in sorted(held.keys() - declared.keys()):
            raise ShapeError(f"{group} holds a {name} that {config} does not make")

    return check


def check_built(ckpt: Checkpoint, net: Sequential, path: Path) -> None:
    """What is checked once the network is built (see the module's docstring)."""
    contents = Contents(path)
    contents.outputs(ckpt.data, net)
    if ckpt.optimizer is not None:
        contents.optimizer(ckpt.optimizer, net)
    contents.training(ckpt.training, net)
    contents.encoder(ckpt.data)


def _whole(value: Any, low: int) -> bool:
    """An int (not a bool, not text) >= low."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    return ok and value >= low


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
