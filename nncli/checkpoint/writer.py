"""Saving a checkpoint: one HDF5 file written to a temporary name, fsynced and renamed."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import nncli
from nncli.checkpoint.format import (
    FORMAT,
    FORMAT_VERSION,
    STATE_GROUP,
    TEXT_KINDS,
    Checkpoint,
    check_name,
    digest_array,
    digest_lines,
    digest_text,
    encode_key,
    object_lines,
)
from nncli.errors import CheckpointError


def save(path: str | Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically; on any failure the old file is left untouched."""
    path = Path(path)
    folder = path.parent
    tmp = folder / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nncli_version": nncli.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _check_space(folder, path, ckpt)
    try:
        try:
            with h5py.File(tmp, "x", locking=False) as f:
                _write(f, ckpt, meta)
                _stamp(f)
                f.flush()
            _fsync(tmp, os.O_RDWR)
            os.replace(tmp, path)
        except BaseException as e:  # Ctrl-C too: never leave a half-written file behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, CheckpointError) and e.where is None:
                e.where = str(path)
            raise
    except (OSError, RuntimeError) as e:  # h5py: RuntimeError("... errno = 28 ...") on a full disk
        error = cannot_write(e, path, "the checkpoint")
        if error is None and isinstance(e, RuntimeError):
            raise  # no reason from the system: a bug, not the disk
        raise error or CheckpointError(f"cannot write the checkpoint ({e})", where=str(path)) from e
    with contextlib.suppress(OSError):  # makes the rename durable; not every system can
        _fsync(folder, os.O_RDONLY)
    ckpt.meta = meta


def _errnos(exc: BaseException) -> list[int]:
    """The error numbers behind a failed write, nearest first: an OSError's, or the
    ``errno = 28`` of an HDF5 message (h5py raises RuntimeError, often after a second one)."""
    found = []
    for cause in (exc, exc.__context__, exc.__cause__):
        if isinstance(cause, OSError) and cause.errno:
            found.append(cause.errno)
        found += [int(n) for n in re.findall(r"errno = ([0-9]+)", str(cause or "")) if int(n)]
    return found


def cannot_write(exc: BaseException, path: Path, what: str = "") -> CheckpointError | None:
    """The CheckpointError (exit 4) of a write that failed for a reason the system gave
    (``cannot write (Read-only file system)``; a full disk also says that what was there
    stays), or None when ``exc`` carries no such reason (a bug, not the disk)."""
    numbers = _errnos(exc)
    if not numbers:
        return None
    kept = "; the earlier file, if any, is unchanged" if errno.ENOSPC in numbers else ""
    what = f" {what}" if what else ""
    return CheckpointError(f"cannot write{what} ({os.strerror(numbers[0])}){kept}", where=str(path))


def _check_space(folder: Path, path: Path, ckpt: Checkpoint) -> None:
    """CheckpointError (exit 4) before HDF5 starts when the folder's free space is less than
    the arrays alone will take: HDF5 fails badly on a full disk (it may even crash the process
    after its error), so a save that cannot fit is not begun."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # no folder (the open says so), or a system that cannot tell
        return
    needed = _least_size(ckpt)
    if free < needed:
        raise CheckpointError(
            f"cannot write the checkpoint ({os.strerror(errno.ENOSPC)}: it needs at least "
            f"{needed / 1024:.1f} KiB, {free / 1024:.1f} KiB are free); the earlier file, if "
            "any, is unchanged",
            where=str(path),
        )


def _least_size(ckpt: Checkpoint) -> int:
    """Bytes the checkpoint's arrays and text take in any file: a lower bound of its size."""

    def size(value: Any) -> int:
        if isinstance(value, dict):
            return sum(size(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return sum(size(v) for v in value)
        if isinstance(value, str):
            return len(value.encode("utf-8", "replace"))
        return np.asarray(value).nbytes if isinstance(value, (np.ndarray, np.generic)) else 8

    layers = [(layer.params, layer.state) for layer in ckpt.layers]
    optimizer = ckpt.optimizer.state if ckpt.optimizer is not None else {}
    return size([ckpt.spec_yaml, layers, optimizer, ckpt.data, ckpt.training])


def _stamp(f: h5py.File) -> None:
    """Root attr sha256 covers every name and attribute: a changed key or config is caught."""
    lines = object_lines(f, "/", _plain_read)
    f.visititems(lambda name, obj: lines.extend(object_lines(obj, "/" + name, _plain_read)))
    _set_attr(f, "sha256", digest_lines(lines))


def _plain_read(obj: h5py.HLObject, name: str) -> Any:
    return obj.attrs[name]


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(f: h5py.File, ckpt: Checkpoint, meta: dict) -> None:
    for key, value in meta.items():
        _set_attr(f, key, value)
    _write_text(f, "spec", ckpt.spec_yaml)
    model = f.create_group("model")
    for layer in ckpt.layers:
        name = f"{int(layer.index)}.{check_name(layer.type, 'layer type')}"
        group = model.create_group(name, track_order=True)
        group.attrs["index"] = np.int64(layer.index)
        _set_attr(group, "type", layer.type)
        _set_attr(group, "config", json.dumps(layer.config, default=_json_default))
        for name, value in layer.params.items():
            if name == STATE_GROUP:
                raise ValueError(f"parameter name {name!r} is reserved for the layer's state")
            _write_array(group, check_name(name, "parameter name"), value)
        if layer.state:
            state = group.create_group(STATE_GROUP, track_order=True)
            for name, value in layer.state.items():
                _write_array(state, check_name(name, "state name"), value)
    if ckpt.optimizer is not None:
        opt = f.create_group("optimizer", track_order=True)
        _set_attr(opt, "type", ckpt.optimizer.type)
        opt.attrs["step"] = np.int64(ckpt.optimizer.step)
        for param, slots in ckpt.optimizer.state.items():
            # "0.dense.weight" -> 0.dense/weight; "1.transformer.norm1.weight" -> 1.transformer/
            # norm1.weight, as under /model (a composed layer's parameter names hold dots)
            index, kind, name = param.split(".", 2)
            layer_name = f"{index}.{kind}"
            layer_name, name = (
                check_name(n, f"optimizer state {param!r}") for n in (layer_name, name)
            )
            if layer_name not in opt:
                opt.create_group(layer_name, track_order=True)
            group = opt[layer_name].create_group(name, track_order=True)
            for slot, value in slots.items():
                _write_array(group, check_name(slot, "optimizer slot"), value)
    _write_tree(f.create_group("data", track_order=True), ckpt.data, "data")
    training = f.create_group("training", track_order=True)
    for key, value in ckpt.training.items():
        if isinstance(value, dict):
            if key == "history":
                value = {k: np.asarray(v, dtype=np.float64) for k, v in value.items()}
            group = training.create_group(encode_key(key), track_order=True)
            _write_tree(group, value, f"training.{key}")
        else:
            _set_attr(training, check_name(key, "training key"), _scalar_attr(value, key))


def _scalar_attr(value: Any, key: str) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    if value is None:
        return h5py.Empty("f8")
    for kind, cast in ((bool, np.bool_), (int, np.int64), (float, np.float64), (str, str)):
        if isinstance(value, kind):
            return cast(value)
    raise TypeError(f"training.{key}: expected a scalar or a dict, got {type(value).__name__}")


def _fixed(value: str | list[str]) -> np.ndarray:
    """Text -> fixed-length UTF-8: variable-length strings live on a heap that corrupt files
    turn into crashes inside HDF5, so nncli neither writes nor reads them."""
    encoded = [s.encode() for s in ([value] if isinstance(value, str) else value)]
    dtype = h5py.string_dtype("utf-8", max([1, *map(len, encoded)]))
    return np.array(encoded[0] if isinstance(value, str) else encoded, dtype=dtype)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"a layer config holds a {type(value).__name__}, which JSON cannot store")


def _set_attr(obj: h5py.HLObject, name: str, value: Any) -> None:
    obj.attrs[name] = _fixed(value) if isinstance(value, str) else value


def _write_array(group: h5py.Group, name: str, value: Any) -> h5py.Dataset:
    a = np.asarray(value, order="C")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{group.name}/{name}: expected a numeric array, got dtype {a.dtype}")
    ds = group.create_dataset(name, data=a)  # contiguous, unfiltered: what load accepts
    _set_attr(ds, "sha256", digest_array(a))
    return ds


def _write_text(group: h5py.Group, name: str, value: str | list[str]) -> h5py.Dataset:
    for s in [value] if isinstance(value, str) else value:
        if "\x00" in s:  # HDF5 strings end at NUL: the rest would be lost
            raise CheckpointError(f"{group.name}/{name}: cannot store a string holding NUL")
    ds = group.create_dataset(name, data=_fixed(value))
    _set_attr(ds, "sha256", digest_text(value, ds.shape))
    return ds


def _write_tree(group: h5py.Group, tree: dict, where: str) -> None:
    for key, value in tree.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: keys must be strings, got {key!r}")
        name = encode_key(key)
        if isinstance(value, dict):
            _write_tree(group.create_group(name, track_order=True), value, f"{where}.{key}")
            continue
        kind, value = _leaf_kind(value, f"{where}.{key}")
        if kind == "none":
            ds = group.create_dataset(name, data=h5py.Empty("f8"))
            _set_attr(ds, "sha256", digest_text(None, None))
        elif kind in TEXT_KINDS:
            ds = _write_text(group, name, value)
        else:
            ds = _write_array(group, name, value)
        _set_attr(ds, "kind", kind)


def _leaf_kind(value: Any, where: str) -> tuple[str, Any]:
    value = value.item() if isinstance(value, np.generic) else value
    if value is None:
        return "none", None
    if isinstance(value, np.ndarray):
        return "array", value
    if isinstance(value, (list, tuple)):
        value = [v.item() if isinstance(v, np.generic) else v for v in value]
        if all(isinstance(v, str) for v in value):
            return "strs", value
        if not any(isinstance(v, bool) for v in value):
            if all(isinstance(v, int) for v in value):
                return "ints", np.asarray(value, dtype=np.int64)
            if all(isinstance(v, (int, float)) for v in value):
                return "floats", np.asarray(value, dtype=np.float64)
        raise TypeError(f"{where}: a list must hold only strings or only numbers")
    for kind, cast in (("bool", np.bool_), ("int", np.int64), ("float", np.float64)):
        if isinstance(value, {"bool": bool, "int": int, "float": float}[kind]):
            return kind, np.asarray(cast(value))
    if isinstance(value, str):
        return "str", value
    raise TypeError(f"{where}: cannot store a {type(value).__name__}")
