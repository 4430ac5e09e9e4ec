"""Loading a checkpoint while trusting nothing in it (every refusal is a CheckpointError)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from h5py import h5t

from nncli.bounds.files import require_regular
from nncli.checkpoint.format import (
    FORMAT,
    FORMAT_VERSION,
    HDF5_SIGNATURE,
    MAX_DEPTH,
    NUMERIC_KINDS,
    STATE_GROUP,
    TEXT_KINDS,
    Checkpoint,
    LayerMeta,
    LayerRecord,
    OptimizerRecord,
    decode_key,
    digest_array,
    digest_lines,
    digest_text,
    object_lines,
)
from nncli.errors import CheckpointError


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
                [(i, t, c, {n: d.shape for n, d in p.items()}) for i, t, c, p, _ in layers]
            )
        return reader.guarded(reader.body, layers)


def _check_file(path: Path) -> int:
    bad = partial(CheckpointError, where=str(path))
    try:
        if path.is_dir():
            raise bad("is a folder, not a checkpoint file")
        require_regular(path, CheckpointError)  # a named pipe would block, a device never end
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

    def layers_meta(self) -> list[tuple[int, str, dict, dict[str, Any], dict[str, Any]]]:
        """(index, type, config, parameter datasets, state datasets) per layer, in order."""
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
        lines = object_lines(f, "/", self.raw_attr)
        self.walk(f, 0, set(), lines)
        if self.raw_attr(f, "sha256") != digest_lines(lines):
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
            params = {p: self.numeric(group, p) for p in group if p != STATE_GROUP}
            state = {}
            if STATE_GROUP in group:
                held = self.group(group, STATE_GROUP)
                state = {s: self.numeric(held, s) for s in held}
            layers.append((index, kind, config, params, state))
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
            lines += object_lines(obj, where, self.raw_attr)

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
        self.verify(ds, digest_array(a))
        return a

    def text(self, parent: h5py.Group, name: str, ndim: int) -> str | list[str]:
        ds = self.dataset(parent, name)
        info = h5py.check_string_dtype(ds.dtype)
        if ds.shape is None or info is None or info.length is None or len(ds.shape) != ndim:
            what = "a string" if ndim == 0 else "a list of strings"
            raise self.bad(f"expected {what} of fixed-length UTF-8, found {ds.dtype}", ds.name)
        raw = ds[()]
        value = raw.decode() if ndim == 0 else [b.decode() for b in raw.tolist()]
        self.verify(ds, digest_text(value, ds.shape))
        return value

    def body(self, layers: list) -> Checkpoint:
        f = self.f
        records = [
            LayerRecord(
                i,
                t,
                c,
                {n: self.array(ds) for n, ds in p.items()},
                {n: self.array(ds) for n, ds in s.items()},
            )
            for i, t, c, p, s in layers
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
            training |= {decode_key(n): self.tree(self.group(group, n)) for n in group}
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
            key, obj = decode_key(name), group[name]
            if isinstance(obj, h5py.Group):
                tree[key] = self.tree(obj)
                continue
            kind = self.raw_attr(obj, "kind")
            if kind == "none" and obj.shape is None:
                self.verify(obj, digest_text(None, None))
                tree[key] = None
            elif kind in TEXT_KINDS:
                tree[key] = self.text(group, name, TEXT_KINDS[kind])
            elif kind in NUMERIC_KINDS:
                a = self.array(self.numeric(group, name, *NUMERIC_KINDS[kind]))
                tree[key] = a if kind == "array" else a.tolist()
            else:
                raise self.bad(f"unexpected data kind {kind!r} for shape {obj.shape}", obj.name)
        return tree
