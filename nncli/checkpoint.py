"""Checkpoint = one HDF5 file: spec, weights, optimizer state, encoders, history; no pickle.

Layout (format_version 1); every name is a hard link, every dataset contiguous and unfiltered:

    /                           attrs format="nncli-checkpoint", format_version=1 (int),
                                nncli_version, created (ISO 8601, UTC), sha256 (below)
    /spec                       scalar string dataset: the resolved spec as YAML
    /model/<i>.<type>           one group per layer, i = 0..n-1; attrs index (int), type,
                                config (the layer's config as JSON text)
    /model/<i>.<type>/<param>   numeric dataset, e.g. /model/0.dense/weight (out, in)
    /optimizer                  only when saved; attrs type, step (int)
    /optimizer/<i>.<type>/<param>/<slot>
                                numeric dataset: slot "m" of parameter "0.dense.weight" is
                                /optimizer/0.dense/weight/m
    /data/...                   a nested dict: dict -> group, any other value -> one dataset
                                with attr kind (below)
    /training                   attrs: its scalar entries (None: an empty float attr); each
                                dict entry -> a group written like /data; "history" values as
                                float64 arrays: /training/history/<metric> (epochs,)

Data leaf kinds: array (numeric dataset, dtype and shape kept), str (scalar string),
strs (1-D strings), int / float / bool (0-d int64 / float64 / bool), ints / floats (1-D
int64 / float64), none (null dataspace). A dict key is the link name with "%" -> "%25" and
"/" -> "%2F"; the key "." is "%2E" and the key "" is "%".

All text, in datasets and attributes, is fixed-length UTF-8 (NUL-padded, so it may not hold
NUL): variable-length strings live on a heap whose corruption crashes HDF5 itself, so nncli
neither writes nor reads them. Attributes are numbers or such text, nothing else.

Checksums (sha256, hex): each dataset's attr sha256 digests its dtype, shape and little-endian
C-order bytes (numbers) or its shape and the JSON of its strings (text); the root's sha256
digests the sorted JSON lines [path] and [path, attr, value] of every object and attribute
but itself, so a changed name, key or config is caught too. Load checks them all.

Load trusts nothing: it checks the signature and format attrs, then walks every link and
refuses soft, external, virtual, chunked, filtered and externally stored data, and datasets
declaring more bytes than the file holds or than they store, before reading any data; numbers
must be numeric, only the text places may hold text. Save writes a temporary file in the same
folder, fsyncs it and renames it over the old one, so readers see the old or the new file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import h5py
import numpy as np
from h5py import h5t

import nncli
from nncli.errors import CheckpointError

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
_NUMERIC = {"array": ("biuf", None), "int": ("iu", 0), "ints": ("iu", 1)}
_NUMERIC |= {"float": ("f", 0), "floats": ("f", 1), "bool": ("b", 0)}
_TEXT = {"str": 0, "strs": 1}


# ---------------------------------------------------------------- checksums and names


def _digest_array(a: np.ndarray) -> str:
    a = np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C")
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def _digest_text(value: Any, shape: tuple | None) -> str:
    return hashlib.sha256(json.dumps([shape, value], ensure_ascii=False).encode()).hexdigest()


def _encode_key(key: str) -> str:
    if key in ("", "."):
        return "%" if key == "" else "%2E"
    return key.replace("%", "%25").replace("/", "%2F")


def _decode_key(name: str) -> str:
    return "" if name == "%" else unquote(name)


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name:
        raise ValueError(f"{what} must be a non-empty string without '/', got {name!r}")
    return name


# ---------------------------------------------------------------- save


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
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise CheckpointError(f"cannot write the checkpoint ({reason})", where=str(path)) from e
    with contextlib.suppress(OSError):  # makes the rename durable; not every system can
        _fsync(folder, os.O_RDONLY)
    ckpt.meta = meta


def _stamp(f: h5py.File) -> None:
    """Root attr sha256 covers every name and attribute: a changed key or config is caught."""
    lines = _object_lines(f, "/", _plain_read)
    f.visititems(lambda name, obj: lines.extend(_object_lines(obj, "/" + name, _plain_read)))
    _set_attr(f, "sha256", _digest_lines(lines))


def _plain_read(obj: h5py.HLObject, name: str) -> Any:
    return obj.attrs[name]


def _object_lines(obj: h5py.HLObject, path: str, read: Callable) -> list[str]:
    lines = [json.dumps([path])]
    for name in obj.attrs:
        if path == "/" and name == "sha256":
            continue
        value = read(obj, name)
        value = value.decode() if isinstance(value, bytes) else value
        value = value.item() if isinstance(value, np.generic) else value
        lines.append(json.dumps([path, name, None if isinstance(value, h5py.Empty) else value]))
    return lines


def _digest_lines(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


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
        name = f"{int(layer.index)}.{_check_name(layer.type, 'layer type')}"
        group = model.create_group(name, track_order=True)
        group.attrs["index"] = np.int64(layer.index)
        _set_attr(group, "type", layer.type)
        _set_attr(group, "config", json.dumps(layer.config, default=_json_default))
        for name, value in layer.params.items():
            _write_array(group, _check_name(name, "parameter name"), value)
    if ckpt.optimizer is not None:
        opt = f.create_group("optimizer", track_order=True)
        _set_attr(opt, "type", ckpt.optimizer.type)
        opt.attrs["step"] = np.int64(ckpt.optimizer.step)
        for param, slots in ckpt.optimizer.state.items():
            layer_name, _, name = param.rpartition(".")  # "0.dense.weight" -> 0.dense/weight
            layer_name, name = (
                _check_name(n, f"optimizer state {param!r}") for n in (layer_name, name)
            )
            if layer_name not in opt:
                opt.create_group(layer_name, track_order=True)
            group = opt[layer_name].create_group(name, track_order=True)
            for slot, value in slots.items():
                _write_array(group, _check_name(slot, "optimizer slot"), value)
    _write_tree(f.create_group("data", track_order=True), ckpt.data, "data")
    training = f.create_group("training", track_order=True)
    for key, value in ckpt.training.items():
        if isinstance(value, dict):
            if key == "history":
                value = {k: np.asarray(v, dtype=np.float64) for k, v in value.items()}
            group = training.create_group(_encode_key(key), track_order=True)
            _write_tree(group, value, f"training.{key}")
        else:
            _set_attr(training, _check_name(key, "training key"), _scalar_attr(value, key))


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
    _set_attr(ds, "sha256", _digest_array(a))
    return ds


def _write_text(group: h5py.Group, name: str, value: str | list[str]) -> h5py.Dataset:
    for s in [value] if isinstance(value, str) else value:
        if "\x00" in s:  # HDF5 strings end at NUL: the rest would be lost
            raise CheckpointError(f"{group.name}/{name}: cannot store a string holding NUL")
    ds = group.create_dataset(name, data=_fixed(value))
    _set_attr(ds, "sha256", _digest_text(value, ds.shape))
    return ds


def _write_tree(group: h5py.Group, tree: dict, where: str) -> None:
    for key, value in tree.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: keys must be strings, got {key!r}")
        name = _encode_key(key)
        if isinstance(value, dict):
            _write_tree(group.create_group(name, track_order=True), value, f"{where}.{key}")
            continue
        kind, value = _leaf_kind(value, f"{where}.{key}")
        if kind == "none":
            ds = group.create_dataset(name, data=h5py.Empty("f8"))
            _set_attr(ds, "sha256", _digest_text(None, None))
        elif kind in _TEXT:
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


# ---------------------------------------------------------------- load


def load(
    path: str | Path, *, expected_shapes: Callable[[list[LayerMeta]], None] | None = None
) -> Checkpoint:
    """Read a checkpoint, refusing anything this module did not write (CheckpointError, exit 4).

    ``expected_shapes(layers_meta)`` gets ``[(index, type, config, {param: shape})]`` after the
    metadata is read and before any array is; it may raise to refuse the file.
    """
    path = Path(path)
    size = _check_file(path)
    try:
        f = h5py.File(path, "r", locking=False)
    except (OSError, ValueError) as e:
        cut = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", str(e))
        reason = f"truncated: {cut[1]} of {cut[2]} bytes" if cut else f"damaged HDF5 file: {e}"
        raise CheckpointError(f"not an nncli checkpoint ({reason})", where=str(path)) from None
    with f:
        reader = _Reader(f, path, size)
        layers = reader.guarded(reader.layers_meta)
        if expected_shapes is not None:
            expected_shapes(
                [(i, t, c, {n: d.shape for n, d in p.items()}) for i, t, c, p in layers]
            )
        return reader.guarded(reader.body, layers)


def _check_file(path: Path) -> int:
    bad = partial(CheckpointError, where=str(path))
    try:
        if path.is_dir():
            raise bad("is a folder, not a checkpoint file")
        with open(path, "rb") as fh:
            head = fh.read(len(HDF5_SIGNATURE))
        size = path.stat().st_size
    except FileNotFoundError:
        raise bad("no such file") from None
    except OSError as e:
        raise bad(f"cannot read the file ({e.strerror or e})") from None
    if size == 0:
        raise bad("not an nncli checkpoint (empty file)")
    if head != HDF5_SIGNATURE:
        raise bad("not an nncli checkpoint (not an HDF5 file)")
    return size


def _describe(dt: np.dtype) -> str:
    if h5py.check_string_dtype(dt):
        return "text"
    if h5py.check_vlen_dtype(dt) is not None:
        return "variable-length data"
    if h5py.check_ref_dtype(dt) is not None:
        return "object references"
    if dt.fields:
        return "a compound type"
    if dt.subdtype is not None:
        return "an array type"
    return "opaque bytes" if dt.kind == "V" else "not a number"


class _Reader:
    """One open file under suspicion: every check names the file and the dataset."""

    def __init__(self, f: h5py.File, path: Path, size: int):
        self.f, self.path, self.size = f, path, size

    def bad(self, message: str, name: str | None = None) -> CheckpointError:
        return CheckpointError(message, where=str(self.path), field=name)

    def guarded(self, fn: Callable, *args: Any) -> Any:
        """h5py reports damage inside a file as assorted exceptions: turn them into one kind."""
        try:
            return fn(*args)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            raise self.bad(f"damaged checkpoint ({e})") from e

    def layers_meta(self) -> list[tuple[int, str, dict, dict[str, h5py.Dataset]]]:
        f = self.f
        if "format" not in f.attrs:
            raise self.bad("not an nncli checkpoint (no 'format' attribute)")
        try:
            fmt = repr(self.attr(f, "format", str))
        except CheckpointError:
            fmt = "unreadable"
        if fmt != repr(FORMAT):
            raise self.bad(f"not an nncli checkpoint (format {fmt}, expected {FORMAT!r})")
        if (version := self.attr(f, "format_version", int)) > FORMAT_VERSION:
            newer = f"written by a newer nncli (format {version})"
            raise self.bad(f"{newer}; this nncli reads format {FORMAT_VERSION}")
        if version < 1:
            raise self.bad(f"unknown format version {version}")
        lines = _object_lines(f, "/", self.raw_attr)
        self.walk(f, 0, set(), lines)
        if self.raw_attr(f, "sha256") != _digest_lines(lines):
            raise self.bad("checksum mismatch over names and attributes: damaged or changed", "/")
        for name in ("spec", "model"):
            if name not in f:
                raise self.bad(f"no /{name} in the file")
        layers = []
        for name in f["model"]:
            group = self.group(f["model"], name)
            index, kind = self.attr(group, "index", int), self.attr(group, "type", str)
            if name != f"{index}.{kind}":
                raise self.bad(f"name disagrees with index {index}, type {kind!r}", group.name)
            config = json.loads(self.attr(group, "config", str))
            if not isinstance(config, dict):
                raise self.bad("config is not a JSON object", group.name)
            layers.append((index, kind, config, {p: self.numeric(group, p) for p in group}))
        layers.sort(key=lambda layer: layer[0])
        if (indices := [layer[0] for layer in layers]) != list(range(len(layers))):
            raise self.bad(f"layer indices are {indices}, expected 0..n-1", "/model")
        return layers

    def walk(self, group: h5py.Group, depth: int, seen: set, lines: list[str]) -> None:
        """Refuse every link and dataset this module never writes, before reading any data."""
        if depth > MAX_DEPTH:
            raise self.bad(f"groups nest deeper than {MAX_DEPTH}", group.name)
        for name in group:
            where = f"{group.name.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                kind = {"SoftLink": "a soft link", "ExternalLink": "an external link"}
                kind = kind.get(type(link).__name__, f"a link of type {type(link).__name__}")
                raise self.bad(f"is {kind}; only plain groups and datasets are read", where)
            obj = group[name]
            if obj.id in seen:
                raise self.bad("links to an object already linked elsewhere", where)
            seen.add(obj.id)
            if isinstance(obj, h5py.Group):
                self.walk(obj, depth + 1, seen, lines)
            elif isinstance(obj, h5py.Dataset):
                self.check_storage(obj, where)
            else:
                kind = type(obj).__name__
                raise self.bad(f"is a {kind}; only plain groups and datasets are read", where)
            lines += _object_lines(obj, where, self.raw_attr)

    def check_storage(self, ds: h5py.Dataset, where: str) -> None:
        if ds.is_virtual:
            raise self.bad("is a virtual dataset (its data lives in other files)", where)
        if ds.external:
            raise self.bad("stores its data in external files", where)
        plist = ds.id.get_create_plist()
        if (
            plist.get_layout() not in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT)
            or plist.get_nfilters()
        ):
            raise self.bad("is chunked or filtered; nncli writes plain contiguous data", where)
        # a shape bomb declares more than the file holds; refuse it before allocating anything
        declared, stored = (ds.size or 0) * ds.id.get_type().get_size(), ds.id.get_storage_size()
        if declared > self.size:
            raise self.bad(f"declares {declared} bytes of data in a {self.size}-byte file", where)
        if declared and stored < declared:
            raise self.bad(f"declares {declared} bytes but stores {stored}", where)

    def attr(self, obj: h5py.HLObject, name: str, kind: type) -> Any:
        value = self.raw_attr(obj, name)
        ok = isinstance(value, str) if kind is str else isinstance(value, (int, np.integer))
        if not ok or isinstance(value, (bool, np.bool_)):
            found = f"expected a {kind.__name__}, found {value!r}"
            raise self.bad(f"attribute {name!r}: {found}", obj.name)
        return kind(value)

    def raw_attr(self, obj: h5py.HLObject, name: str) -> Any:
        """An attribute's scalar value, or None; its type is checked before a byte is read."""
        if name not in obj.attrs:
            return None
        attr = obj.attrs.get_id(name)
        cls, kind = attr.get_type().get_class(), attr.get_type()
        plain = cls in (h5t.INTEGER, h5t.FLOAT, h5t.ENUM) or (
            cls == h5t.STRING and not kind.is_variable_str()
        )
        if not plain or attr.shape not in ((), None) or kind.get_size() > self.size:
            raise self.bad(f"attribute {name!r} is not a plain scalar ({attr.dtype})", obj.name)
        value = obj.attrs[name]
        return value.decode() if isinstance(value, bytes) else value

    def group(self, parent: h5py.Group, name: str) -> h5py.Group:
        if not isinstance(obj := parent[name], h5py.Group):
            raise self.bad("expected a group, found a dataset", obj.name)
        return obj

    def dataset(self, parent: h5py.Group, name: str) -> h5py.Dataset:
        if not isinstance(obj := parent[name], h5py.Dataset):
            raise self.bad("expected a dataset, found a group", obj.name)
        return obj

    def numeric(self, parent: h5py.Group, name: str, kinds: str = "biuf", ndim=None):
        ds = self.dataset(parent, name)
        dt = ds.dtype
        if ds.shape is None or dt.kind not in kinds or dt.subdtype is not None:
            found = "no data" if ds.shape is None else f"dtype {dt} ({_describe(dt)})"
            raise self.bad(f"expected a numeric array, found {found}", ds.name)
        if ndim is not None and len(ds.shape) != ndim:
            raise self.bad(f"expected {ndim} dimensions, found shape {ds.shape}", ds.name)
        return ds

    def verify(self, ds: h5py.Dataset, digest: str) -> None:
        stored = self.raw_attr(ds, "sha256")
        if stored != digest:
            found = "no checksum" if stored is None else "checksum mismatch"
            raise self.bad(f"{found}: the data is damaged or was changed", ds.name)

    def array(self, ds: h5py.Dataset) -> np.ndarray:
        a = np.asarray(ds[()])
        self.verify(ds, _digest_array(a))
        return a

    def text(self, parent: h5py.Group, name: str, ndim: int) -> str | list[str]:
        ds = self.dataset(parent, name)
        info = h5py.check_string_dtype(ds.dtype)
        if ds.shape is None or info is None or info.length is None or len(ds.shape) != ndim:
            what = "a string" if ndim == 0 else "a list of strings"
            raise self.bad(f"expected {what} of fixed-length UTF-8, found {ds.dtype}", ds.name)
        raw = ds[()]
        value = raw.decode() if ndim == 0 else [b.decode() for b in raw.tolist()]
        self.verify(ds, _digest_text(value, ds.shape))
        return value

    def body(self, layers: list) -> Checkpoint:
        f = self.f
        records = [
            LayerRecord(i, t, c, {n: self.array(ds) for n, ds in p.items()})
            for i, t, c, p in layers
        ]
        optimizer = None
        if "optimizer" in f:
            opt, state = self.group(f, "optimizer"), {}
            for layer_name in opt:
                for name in self.group(opt, layer_name):
                    group = self.group(opt[layer_name], name)
                    slots = {s: self.array(self.numeric(group, s)) for s in group}
                    state[f"{layer_name}.{name}"] = slots
            kind, step = self.attr(opt, "type", str), self.attr(opt, "step", int)
            optimizer = OptimizerRecord(kind, step, state)
        training: dict[str, Any] = {}
        if "training" in f:
            group = self.group(f, "training")
            training = {key: self.scalar(group, key) for key in group.attrs}
            training |= {_decode_key(n): self.tree(self.group(group, n)) for n in group}
        meta = {"format": FORMAT, "format_version": self.attr(f, "format_version", int)}
        for key in ("nncli_version", "created"):
            meta[key] = self.attr(f, key, str) if key in f.attrs else None
        data = self.tree(self.group(f, "data")) if "data" in f else {}
        return Checkpoint(self.text(f, "spec", 0), records, optimizer, data, training, meta)

    def scalar(self, group: h5py.Group, key: str) -> Any:
        value = self.raw_attr(group, key)
        if isinstance(value, h5py.Empty):
            return None
        for kind, cast in ((np.bool_, bool), (np.integer, int), (np.floating, float), (str, str)):
            if isinstance(value, kind):
                return cast(value)
        found = f"expected a scalar, found {type(value).__name__}"
        raise self.bad(f"attribute {key!r}: {found}", group.name)

    def tree(self, group: h5py.Group) -> dict:
        tree: dict[str, Any] = {}
        for name in group:
            key, obj = _decode_key(name), group[name]
            if isinstance(obj, h5py.Group):
                tree[key] = self.tree(obj)
                continue
            kind = self.raw_attr(obj, "kind")
            if kind == "none" and obj.shape is None:
                self.verify(obj, _digest_text(None, None))
                tree[key] = None
            elif kind in _TEXT:
                tree[key] = self.text(group, name, _TEXT[kind])
            elif kind in _NUMERIC:
                a = self.array(self.numeric(group, name, *_NUMERIC[kind]))
                tree[key] = a if kind == "array" else a.tolist()
            else:
                raise self.bad(f"unexpected data kind {kind!r} for shape {obj.shape}", obj.name)
        return tree
