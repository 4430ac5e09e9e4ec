"""Spec + input shape + backend -> network, loss and optimizer, through the registries.

``units: auto`` on the last layer takes the width the data needs. Errors the engine raises name
``layers[i].field``; here they gain the spec's ``model.`` prefix and the file position.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nncli.backend import Backend, get_backend
from nncli.bounds.limits import over_memory, size_text
from nncli.engine import LAYERS, LOSSES, OPTIMIZERS, graph
from nncli.engine.losses import Loss
from nncli.engine.network import LayerArrays, Sequential, planned_arrays
from nncli.engine.optimizers import Optimizer
from nncli.engine.schedules import SCHEDULES, Schedule
from nncli.errors import NncliError, SpecError


def _at(spec: Any, error: NncliError, prefix: str) -> NncliError:
    """Give an engine error its place in the spec file."""
    if isinstance(error, SpecError) and error.where is None:
        field = f"{prefix}.{error.field}" if error.field else prefix
        error.field = field
        line_of = getattr(spec, "line_of", None)
        error.where = line_of(field) if line_of else None
        if error.where is None and line_of:
            error.where = line_of(field.rsplit(".", 1)[0])
    return error


def input_form(layers: list[Any]) -> str:
    """ "ids" when the layers that take the data take integer ids (an embedding first), else
    "onehot": how the data gives symbols to the network."""
    written = [graph.split(layer)[1] for layer in layers]
    readers = [  # the first layer, and any that names ``input`` among its inputs
        layer
        for i, (layer, keys) in enumerate(zip(layers, written, strict=True))
        if (i == 0 and "inputs" not in keys) or graph.INPUT_NAME in _listed(keys.get("inputs"))
    ]
    try:
        ids = [LAYERS.get(_type(layer)).integer_input for layer in readers]
    except SpecError:
        return "onehot"  # an unknown name: the spec check words that
    return "ids" if ids and all(ids) else "onehot"


def _type(layer: Any) -> Any:
    return layer if isinstance(layer, str) else layer.get("type")


def _listed(inputs: Any) -> list[Any]:
    return inputs if isinstance(inputs, list) else [inputs]


def resolve_layers(
    layers: list[Any], output_width: int | None, vocabulary_size: int | dict | None = None
) -> list[dict[str, Any]]:
    """Layer configs as dicts, with ``units: auto`` replaced by the data's output width and
    ``input_dim: auto`` by its vocabulary size (several inputs: {text input: size}, the size
    of the input the layer names)."""
    resolved = []
    for i, cfg in enumerate(layers):
        cfg = {"type": cfg} if isinstance(cfg, str) else dict(cfg)
        if cfg.get("input_dim") == "auto":
            if isinstance(vocabulary_size, dict):  # several inputs: the one this layer reads
                vocabulary = vocabulary_size.get(cfg.get("inputs"))
                if vocabulary is None:
                    raise SpecError(
                        "input_dim: auto takes the vocabulary of the text input the layer "
                        f"reads ({', '.join(vocabulary_size) or 'none'}); got inputs: "
                        f"{cfg.get('inputs')!r}",
                        field=f"layers[{i}].input_dim",
                    )
            elif vocabulary_size is None:
                raise SpecError(
                    "input_dim: auto needs data given as ids (text, or sequences with a "
                    "categorical column) and an embedding first; got data without a vocabulary",
                    field=f"layers[{i}].input_dim",
                )
            else:
                vocabulary = vocabulary_size
            cfg["input_dim"] = int(vocabulary)
        if cfg.get("units") == "auto":
            if i != len(layers) - 1:
                raise SpecError(
                    "expected a positive integer (auto is for the last layer only), got 'auto'",
                    field=f"layers[{i}].units",
                )
            if output_width is None:
                raise SpecError(
                    "units: auto needs the data to tell the width", field=f"layers[{i}].units"
                )
            cfg["units"] = int(output_width)
        resolved.append(cfg)
    return resolved


def backend_for(spec: Any, device: str | None = None) -> Backend:
    return get_backend(device or spec.device, spec.dtype)


def network(
    spec: Any,
    input_shape: tuple[int, ...] | dict[str, tuple[int, ...]],
    output_width: int | None,
    backend: Backend,
    vocabulary_size: int | dict | None = None,
) -> Sequential:
    try:
        layers = resolve_layers(spec.model.layers, output_width, vocabulary_size)
        check_memory(spec, planned_arrays(layers, input_shape), backend.dtype)
        return Sequential(layers, input_shape, backend=backend, seed=spec.seed)
    except NncliError as exc:
        raise _at(spec, exc, "model") from None


def check_memory(spec: Any, planned: list[LayerArrays], dtype: Any) -> None:
    """SpecError before any weight is drawn when the parameters, their gradients and the
    optimizer's slots (and the layers' state) would pass the memory limit, naming the
    largest layer (``limits.over_memory``)."""
    slots = optimizer(spec).slots
    itemsize = np.dtype(dtype).itemsize
    params = sum(layer.count() for layer in planned)
    need = (params * (2 + len(slots)) + sum(layer.count("state") for layer in planned)) * itemsize
    over = over_memory(need)
    if over is None:
        return
    index, largest = max(enumerate(planned), key=lambda pair: pair[1].count())
    name, shape = max(largest.params.items(), key=lambda item: math.prod(item[1]))
    copies = f"weights, gradients{f' and {len(slots)} optimizer slots' if slots else ''}"
    raise SpecError(
        f"the network's {params:,} parameters take {size_text(need)} ({copies}, "
        f"{np.dtype(dtype).name}), {over}; the largest layer is {largest.label} with "
        f"{largest.count():,} ({name} {shape})",
        field=f"layers[{index}]",
    )


def loss(spec: Any) -> Loss:
    try:
        if isinstance(spec.loss, dict):
            settings = dict(spec.loss)
            return LOSSES.create(settings.pop("type"), settings)
        return LOSSES.create(spec.loss)
    except NncliError as exc:
        exc.field = None
        raise _at(spec, exc, "loss") from None


def optimizer(spec: Any) -> Optimizer:
    settings = dict(spec.optimizer)
    name = settings.pop("type")
    settings.pop("schedule", None)
    try:
        return OPTIMIZERS.create(name, {k: v for k, v in settings.items() if v is not None})
    except NncliError as exc:
        raise _at(spec, exc, "optimizer") from None


def schedule(spec: Any) -> Schedule | None:
    """``optimizer.schedule`` -> the learning-rate schedule, or None for a constant rate."""
    settings = spec.optimizer.get("schedule")
    if settings is None:
        return None
    settings = dict(settings)
    try:
        return SCHEDULES.create(settings.pop("type"), settings)
    except NncliError as exc:
        raise _at(spec, exc, "optimizer.schedule") from None
