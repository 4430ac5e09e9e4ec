"""A loaded Dataset as bytes and arrays, and back: what rank 0 sends the other ranks of a run.

Rank 0 alone reads the data files (nncli/training/spread.py). The others get, once, the
description ``pack`` makes (JSON: the encoder's state, the task, the source, the augmentation,
each part's shape and dtype) and the arrays every rank needs whole (the targets, the masks of
padded steps, the target scale); the inputs stay on rank 0, which sends each rank its rows when
it needs them. No pickle: arrays travel as raw bytes of a stated dtype and shape.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import numpy as np

from nncli.data.augment import Augmenter
from nncli.data.dataset import Dataset, Part

TARGET_SCALE = "target_scale"


def _whole_arrays(ds: Dataset) -> dict[str, np.ndarray]:
    """What every rank holds whole, by name: each part's targets (``<part>.y``) and mask of
    padded steps (``<part>.mask``), and the target scale."""
    whole = {}
    for name, part in ds.parts.items():
        whole[f"{name}.y"] = part.y
        if isinstance(part.mask, dict):  # several inputs: each padded one's (data.inputs)
            whole |= {f"{name}.mask.{key}": mask for key, mask in part.mask.items()}
        elif part.mask is not None:
            whole[f"{name}.mask"] = part.mask
    if ds.target_scale is not None:
        whole[TARGET_SCALE] = ds.target_scale
    return {name: np.ascontiguousarray(a) for name, a in whole.items()}


def pack(ds: Dataset) -> tuple[bytes, dict[str, np.ndarray]]:
    """(the description, the arrays every rank holds whole, by name) of a loaded Dataset."""
    if ds.augment is not None and not isinstance(ds.augment, Augmenter):
        raise TypeError(f"cannot send augmentation {type(ds.augment).__name__} to other ranks")
    arrays = _whole_arrays(ds)
    described = {
        "task": ds.task,
        "source": ds.source,
        "encoder": _jsonable(ds.encoder.to_state()),
        "augment": None if ds.augment is None else _jsonable(dataclasses.asdict(ds.augment)),
        "inputs": {name: _layout(part.x) for name, part in ds.parts.items()},  # or {key: ...}
        "arrays": {name: _layout(a) for name, a in arrays.items()},
    }
    return json.dumps(described).encode(), arrays


def layouts(description: bytes) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The (shape, dtype) of each array ``pack`` put beside the description, by name."""
    arrays = json.loads(description)["arrays"]
    return {name: (tuple(shape), np.dtype(dtype)) for name, (shape, dtype) in arrays.items()}


def unpack(description: bytes, arrays: dict[str, np.ndarray], inputs: Any) -> Dataset:
    """The Dataset ``pack`` described, with ``arrays`` and ``inputs(part, shape, dtype)`` standing
    for each part's inputs (rows held elsewhere); the encoder rebuilt from its state."""
    from nncli.data import encoder_from_state

    given = json.loads(description)
    parts = {}
    for name, layout in given["inputs"].items():
        if isinstance(layout, dict):  # several inputs: ``inputs(part, shape, dtype, key)`` each
            x = {key: inputs(name, *_shape_dtype(each), key) for key, each in layout.items()}
            masks = {k: arrays[f"{name}.mask.{k}"] for k in layout if f"{name}.mask.{k}" in arrays}
            parts[name] = Part(x, arrays[f"{name}.y"], masks or None)
        else:
            x = inputs(name, *_shape_dtype(layout))
            parts[name] = Part(x, arrays[f"{name}.y"], arrays.get(f"{name}.mask"))
    aug = given["augment"]
    return Dataset(
        task=given["task"],
        parts=parts,
        encoder=encoder_from_state(_arrays_back(given["encoder"])),
        source=given["source"],
        augment=None if aug is None else Augmenter(**{k: _tuple(v) for k, v in aug.items()}),
        target_scale=arrays.get(TARGET_SCALE),
    )


def _layout(a: Any) -> Any:
    if isinstance(a, dict):
        return {key: _layout(each) for key, each in a.items()}
    return [list(a.shape), a.dtype.str]


def _shape_dtype(layout: list) -> tuple[tuple[int, ...], np.dtype]:
    return tuple(layout[0]), np.dtype(layout[1])


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _jsonable(value: Any) -> Any:
    """An encoder state -> JSON: arrays as their dtype, shape and base64 bytes (exact)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        raw = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
        return {"__array__": [value.dtype.str, list(value.shape), raw]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _arrays_back(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            dtype, shape, raw = value["__array__"]
            return np.frombuffer(base64.b64decode(raw), dtype=dtype).reshape(shape).copy()
        return {k: _arrays_back(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays_back(v) for v in value]
    return value
