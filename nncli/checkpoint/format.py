"""What both sides of a checkpoint agree on: the records, the constants, checksums and the
encoding of names (the layout itself is described in ``nncli/checkpoint/__init__.py``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import h5py
import numpy as np

FORMAT = "nncli-checkpoint"
FORMAT_VERSION = 1
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_DEPTH = 64  # our files nest a few groups deep; a hard-link cycle would nest forever


@dataclass
class LayerRecord:
    index: int
    type: str
    config: dict
    params: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, np.ndarray] = field(default_factory=dict)  # non-trainable, e.g. running_var


@dataclass
class OptimizerRecord:
    type: str
    step: int
    state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # param -> slot -> array


@dataclass
class Checkpoint:
    spec_yaml: str
    layers: list[LayerRecord]
    optimizer: OptimizerRecord | None = None
    data: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # format, format_version, nncli_version, created


LayerMeta = tuple[int, str, dict, dict[str, tuple[int, ...]]]
STATE_GROUP = "state"  # /model/<i>.<type>/state/<name>: a layer's non-trainable arrays
# data leaf kind -> (numpy dtype kinds it may hold, its dimensions; None: any)
NUMERIC_KINDS = {"array": ("biuf", None), "int": ("iu", 0), "ints": ("iu", 1)}
NUMERIC_KINDS |= {"float": ("f", 0), "floats": ("f", 1), "bool": ("b", 0)}
TEXT_KINDS = {"str": 0, "strs": 1}  # data leaf kind -> its dimensions


# ---------------------------------------------------------------- checksums and names


def digest_array(a: np.ndarray) -> str:
    a = np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C")
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def digest_text(value: Any, shape: tuple | None) -> str:
    return hashlib.sha256(json.dumps([shape, value], ensure_ascii=False).encode()).hexdigest()


def encode_key(key: str) -> str:
    if key in ("", "."):
        return "%" if key == "" else "%2E"
    return key.replace("%", "%25").replace("/", "%2F")


def decode_key(name: str) -> str:
    return "" if name == "%" else unquote(name)


def check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name:
        raise ValueError(f"{what} must be a non-empty string without '/', got {name!r}")
    return name


def object_lines(obj: h5py.HLObject, path: str, read: Callable) -> list[str]:
    lines = [json.dumps([path])]
    for name in obj.attrs:
        if path == "/" and name == "sha256":
            continue
        value = read(obj, name)
        value = value.decode() if isinstance(value, bytes) else value
        value = value.item() if isinstance(value, np.generic) else value
        lines.append(json.dumps([path, name, None if isinstance(value, h5py.Empty) else value]))
    return lines


def digest_lines(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
