"""``nncli inspect``: a model summary as data (layers, output shapes, parameter counts), from a
checkpoint or from a spec (its input shape from ``model.input`` or a data file)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli import data
from nncli.bounds.files import not_regular
from nncli.checkpoint import model as model_io
from nncli.errors import SpecError
from nncli.spec import build
from nncli.spec.resolve import input_shape
from nncli.training.callbacks import beside

if TYPE_CHECKING:
    from nncli.spec import Spec


def _is_checkpoint(path: Path) -> bool:
    """An HDF5 file by its name or its first bytes (a spec is YAML text)."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        return True
    if not_regular(path):  # never sniffed: the spec reader names what it is
        return False
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _summary(net: Any, title: str, extra: dict[str, Any]) -> dict[str, Any]:
    rows = net.summary()
    for row, layer in zip(rows, net.layers, strict=True):
        row["frozen"] = layer.frozen_count()  # parameters training leaves (trainable: false)
    statistics = sum(r["non_trainable"] for r in rows)  # running statistics (batchnorm)
    frozen = sum(r["frozen"] for r in rows)
    trainable = net.parameter_count() - frozen
    count = net.parameter_count() + statistics
    itemsize = np.dtype(net.backend.dtype).itemsize
    footer = {"inputs": _inputs_text(net)} if net.several_inputs else {}
    footer |= {"total parameters": f"{count:,}"}
    if frozen or statistics:  # as Keras counts: non-trainable = frozen + statistics
        footer |= {"trainable": f"{trainable:,}", "non-trainable": f"{frozen + statistics:,}"}
    if frozen:
        footer |= {"frozen": f"{frozen:,}"}
    footer |= {
        "memory": f"{count * itemsize / 1024:.1f} KiB ({np.dtype(net.backend.dtype).name})",
        **extra,
    }
    warnings = [w for r in rows for w in r.get("warnings", [])]
    return {
        "title": title,
        "input_shape": (
            {name: ["N", *shape] for name, shape in net.input_shapes.items()}
            if net.several_inputs
            else ["N", *net.input_shape]
        ),
        "stack": net.is_stack,  # each layer takes the one before it: no inputs column
        "layers": rows,
        "total_params": count,
        "trainable_params": trainable,
        "non_trainable_params": frozen + statistics,
        "frozen_params": frozen,
        "footer": footer,
        "warnings": warnings,
    }


def _inputs_text(net: Any) -> str:
    """``fields (N, 2), body (N, 12)``: each data input with its shape."""
    return ", ".join(
        f"{name} {tuple(['N', *shape])}".replace("'", "")
        for name, shape in net.input_shapes.items()
    )


def _spec_network(spec: Spec, data_file: Path | None) -> tuple[Any, Any]:
    """The network a spec describes, its input shape from ``model.input`` or the data."""
    backend = build.backend_for(spec, "cpu")
    if spec.model.input is not None and data_file is None:
        last = spec.model.layers[-1]
        width = None
        if isinstance(last, dict) and last.get("units") == "auto":
            raise SpecError(
                "units: auto needs the data; pass --data FILE", field="model.layers[-1].units"
            )
        return build.network(spec, tuple(spec.model.input), width, backend), None
    cfg = spec.data
    if data_file is not None:
        cfg = cfg.model_copy(
            update={"path": Path(data_file).resolve(), "validation": None, "test": None}
        )
    line_of = spec.line_of if data_file is None else None  # --data: not the spec's file
    ds = data.load(cfg, spec.base_dir, spec.seed, spec.loss_name, line_of=line_of)
    shape = input_shape(spec, ds)  # model.input must agree with the data, as in train
    vocabulary = ds.encoder.vocabulary_size if isinstance(shape, dict) else None  # per input
    return build.network(spec, shape, ds.output_width, backend, vocabulary), ds


def best_line(model: model_io.Model) -> str:
    """``val_loss 0.2657 at epoch 14: val_accuracy 0.9333``: the early-stopping monitor (from
    the checkpoint's spec), its best value and epoch, and that epoch's other metrics from the
    stored history; without a readable spec, the value and epoch alone."""
    from nncli.spec import loads

    training = model.training
    best, value = int(training["best_epoch"]), float(training["best_value"])
    try:
        stopping = loads(model.spec_yaml, "the checkpoint's spec").training.early_stopping
    except SpecError:
        stopping = None
    if stopping is None:
        return f"{value:.4g} at epoch {best}"
    columns = training.get("history", {})
    epochs = np.asarray(columns.get("epoch", []), dtype=np.float64)
    at = np.flatnonzero(epochs == best)
    logs = {name: float(np.asarray(v)[at[0]]) for name, v in columns.items()} if len(at) else {}
    others = beside(logs, stopping.monitor)
    line = f"{stopping.monitor} {value:.4g} at epoch {best}"
    return line + (f": {others}" if others else "")


def checkpoint_summary(model: model_io.Model, target: Path) -> dict[str, Any]:
    """The summary of a loaded checkpoint's network (``inspect``'s, and ``report``'s table)."""
    training = model.training
    extra = {"epochs trained": int(training.get("epoch", 0))}
    if training.get("best_epoch") is not None:
        extra["best"] = best_line(model)
    return _summary(model.net, f"{target} (checkpoint)", extra)


def inspect(target: Path, data_file: Path | None = None) -> dict[str, Any]:
    """The summary of a checkpoint's network, or of the network a spec describes."""
    target = Path(target)
    if _is_checkpoint(target):
        return checkpoint_summary(model_io.load(target), target)
    from nncli import spec as spec_module

    spec = spec_module.load(target)
    net, _ = _spec_network(spec, data_file)
    return _summary(net, f"{spec.name} ({target})", {})
