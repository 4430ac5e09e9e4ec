"""``nncli inspect`` (a model summary as data) and ``nncli validate`` (spec, data headers, and
one forward and backward pass on two real rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nncli import build, data, model_io
from nncli.errors import SpecError


def _is_checkpoint(path: Path) -> bool:
    """An HDF5 file by its name or its first bytes (a spec is YAML text)."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _summary(net: Any, title: str, extra: dict[str, Any]) -> dict[str, Any]:
    rows = net.summary()
    trainable = net.parameter_count()
    frozen = sum(r["non_trainable"] for r in rows)  # running statistics (batchnorm)
    count = trainable + frozen
    itemsize = np.dtype(net.backend.dtype).itemsize
    footer = {"total parameters": f"{count:,}"}
    if frozen:
        footer |= {"trainable": f"{trainable:,}", "non-trainable": f"{frozen:,}"}
    footer |= {
        "memory": f"{count * itemsize / 1024:.1f} KiB ({np.dtype(net.backend.dtype).name})",
        **extra,
    }
    warnings = [w for r in rows for w in r.get("warnings", [])]
    return {
        "title": title,
        "input_shape": ["N", *net.input_shape],
        "layers": rows,
        "total_params": count,
        "trainable_params": trainable,
        "non_trainable_params": frozen,
        "footer": footer,
        "warnings": warnings,
    }


def _spec_network(spec: Any, data_file: Path | None) -> tuple[Any, Any]:
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
    ds = data.load(cfg, spec.base_dir, spec.seed, spec.loss_name)
    shape = tuple(spec.model.input) if spec.model.input is not None else ds.input_shape
    return build.network(spec, shape, ds.output_width, backend), ds


def inspect(target: Path, data_file: Path | None = None) -> dict[str, Any]:
    target = Path(target)
    if _is_checkpoint(target):
        model = model_io.load(target)
        training = model.training
        extra = {"epochs trained": int(training.get("epoch", 0))}
        if training.get("best_epoch") is not None:
            extra["best"] = f"{training['best_value']:.4g} at epoch {training['best_epoch']}"
        return _summary(model.net, f"{target} (checkpoint)", extra)
    from nncli import spec as spec_module

    spec = spec_module.load(target)
    net, _ = _spec_network(spec, data_file)
    return _summary(net, f"{spec.name} ({target})", {})


def validate(path: Path, overrides: list[str] = ()) -> list[str]:
    """Problems raise; what was checked is returned as lines."""
    from nncli import spec as spec_module

    spec = spec_module.load(path, overrides)
    net, ds = _spec_network(spec, None)
    if ds is None:
        return [f"spec {path}: valid (no data loaded)"]
    loss = build.loss(spec)
    build.optimizer(spec)  # its settings are checked here too
    n = min(2, len(ds.x_train))
    x, y = net.backend.asarray(ds.x_train[:n]), net.backend.asarray(ds.y_train[:n])
    fused = net.fuse_output(loss.fused_activation)
    value = float(
        loss.forward(net.forward(x, training=True), y, logits=net.logits if fused else None)
    )
    net.backward(loss.backward())
    lines = [
        f"spec {path}: valid",
        f"data {ds.source}: {len(ds.x_train)} training rows"
        + (f", {len(ds.x_val)} validation rows" if ds.x_val is not None else ""),
        f"model: {net.parameter_count():,} parameters, input {ds.input_shape}, "
        f"output {net.output_shape}",
        f"one forward and backward pass on {n} rows: loss {value:.4g}",
    ]
    for row in net.summary():
        lines += [f"warning: {w}" for w in row.get("warnings", [])]
    return lines
