"""The spec: YAML text -> a validated ``Spec`` with every default filled in (SPEC.md).

Reading goes YAML with positions (``document``) -> ``--set`` overrides -> pydantic models whose
fields are checked by our own validators (so every message is ours: what was expected, what was
found) -> layers, loss and optimizer checked by building them through the engine's registries.
Every problem in the file is collected and raised at once (``SpecErrors``), each one as
``spec.yaml:14:9: model.layers[2].units: expected a positive integer, got -3``.

Paths in a Spec are absolute: relative ones in the file are taken from the spec file's folder,
relative ones given with ``--set`` from the current folder (like any command-line path).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr, ValidationError

from nncli.bounds.files import require_regular
from nncli.engine import checks
from nncli.engine.registry import did_you_mean
from nncli.errors import SpecError, SpecErrors
from nncli.spec import document
from nncli.spec.document import Document, Path_, make_error
from nncli.spec.fields import (
    VERSION,
    Device,
    Dtype,
    Invalid,
    Metrics,
    OptFilePath,
    Seed,
    SpecName,
    Version,
    short,
)
from nncli.spec.inputs import data_input_names
from nncli.spec.kinds import DATA_KINDS, Data, elsewhere
from nncli.spec.sections import DEFAULT_OPTIMIZER as DEFAULT_OPTIMIZER
from nncli.spec.sections import (
    SECTIONS,
    Loss,
    ModelSpec,
    Optimizer,
    Section,
    TextData,
    Training,
    default_optimizer,
    loss_name,
)

__all__ = ["Spec", "flow_yaml", "load", "loads", "resolved_yaml", "to_dict"]


class Spec(Section):
    """A validated spec (SPEC.md). Paths are absolute; ``line_of`` points back into the file."""

    version: Version = 1  # a spec without it is version 1 (nncli 0.x); init writes VERSION
    name: SpecName = None  # filled: the spec file's stem
    seed: Seed = 0
    device: Device = "cpu"
    dtype: Dtype = "float32"
    data: Data
    model: ModelSpec
    loss: Loss
    optimizer: Optimizer = Field(default_factory=default_optimizer)
    training: Training = Field(default_factory=Training)
    metrics: Metrics = Field(default_factory=list)
    output: OptFilePath = None  # filled: runs/<name>/model.h5 under the current folder

    _doc: Document | None = PrivateAttr(default=None)
    _search: Any = PrivateAttr(default=None)  # the ``search:`` section as written (nncli tune)
    _source: Path | None = PrivateAttr(default=None)
    _base_dir: Path = PrivateAttr(default=Path("."))

    @property
    def source(self) -> Path | None:
        """The spec file (absolute), or None for a spec read from text."""
        return self._source

    @property
    def loss_name(self) -> str:
        """The loss's name (``loss`` may be ``{type, **settings}``)."""
        return loss_name(self.loss)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the file are taken from (absolute)."""
        return self._base_dir

    @property
    def search(self) -> Any:
        """The ``search:`` section as written (None when absent); ``spec.search`` reads it."""
        return self._search

    def search_where(self, path: Path_, key: bool = False) -> str | None:
        """``spec.yaml:LINE:COL`` of ``search.<path>`` (of its key with ``key``)."""
        return None if self._doc is None else self._doc.where(("search", *path), key)

    def line_of(self, field: str) -> str | None:
        """``spec.yaml:12:18`` for ``optimizer.learning_rate`` (or its nearest written ancestor),
        ``--set`` when an override gave it, None when neither it nor an ancestor is written."""
        path = document.parse_key(field)
        if self._doc is None or path is None:
            return None
        return self._doc.where(path, root=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spec) and to_dict(self) == to_dict(other)

    __hash__ = None  # type: ignore[assignment]


SECTIONS[()] = Spec  # the top level, for unknown keys and keys in the wrong section


# -- pydantic errors -> our messages ---------------------------------------------------------
def _translate(err: dict[str, Any], doc: Document) -> list[SpecError]:
    loc: Path_ = tuple(err["loc"])
    kind = None
    if loc[:1] == ("data",) and len(loc) > 1 and loc[1] in DATA_KINDS:
        kind, loc = loc[1], ("data", *loc[2:])
    cause, kind_type = err.get("ctx", {}).get("error"), err["type"]
    if isinstance(cause, Invalid):  # a problem with a key names the mapping that holds it
        return [
            make_error(m, doc.where((*loc, *sub), key), (*loc, *(sub[:-1] if key else sub)))
            for sub, m, key in cause.problems
        ]
    if kind_type in ("missing", "extra_forbidden"):
        parent, key = loc[:-1], loc[-1]
        if kind_type == "missing":
            return [make_error(f"missing required key {key!r}", doc.where(parent, True), parent)]
        section = DATA_KINDS[kind] if parent == ("data",) and kind else SECTIONS.get(parent)
        allowed = list(section.model_fields) if section else []
        hint = (
            elsewhere(key, parent)
            or did_you_mean(key, allowed)
            or (f" (expected one of {', '.join(allowed)})" if allowed else "")
        )
        return [make_error(f"unknown key {key!r}{hint}", doc.where(loc, True), parent)]
    if kind_type == "union_tag_not_found":
        return [make_error("missing required key 'kind'", doc.where(loc, True), loc)]
    if kind_type == "union_tag_invalid":
        try:
            checks.choice("", err["input"]["kind"], list(DATA_KINDS))
        except SpecError as exc:
            return [make_error(exc.message, doc.where((*loc, "kind")), (*loc, "kind"))]
    if kind_type in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping, got {short(err['input'])}"
    else:  # not expected with our validators; still a clean message
        message = f"invalid value {short(err.get('input'))}: {err['msg']}"
    return [make_error(message, doc.where(loc), loc)]


def _order(err: SpecError) -> tuple[int, int, int]:
    parts = (err.where or "").rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return 0, int(parts[1]), int(parts[2])
    return (1, 0, 0) if err.where == "--set" else (2, 0, 0)


def _raise(errors: list[SpecError]) -> None:
    errors = sorted(errors, key=_order)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)


def _under(field: str | None, roots: set[str]) -> bool:
    f = field or ""
    return any(f == r or f.startswith((r + ".", r + "[")) for r in roots)


# -- public API ------------------------------------------------------------------------------
def loads(
    text: str,
    filename: str = "<spec>",
    base_dir: str | Path = Path("."),
    overrides: Iterable[str] = (),
) -> Spec:
    """Validate spec text. ``filename`` names it in messages and gives the default ``name``;
    relative paths are taken from ``base_dir``. Raises ``SpecError`` or ``SpecErrors``."""
    doc = document.parse(text, filename)
    if not isinstance(doc.data, dict):
        got = "an empty file" if doc.data is None else short(doc.data)
        message = f"expected a mapping of settings (data, model, loss, ...), got {got}"
        _raise([*doc.errors, make_error(message, doc.where(()) or filename, ())])
    overrides = list(overrides)
    if overrides:  # so that optimizer.learning_rate=... sets the default optimizer's rate
        doc.data.setdefault("optimizer", DEFAULT_OPTIMIZER)
    for assignment in overrides:
        document.apply_override(doc, assignment)
    search = doc.data.pop("search", None)  # read by ``nncli tune`` (spec/search.py) only
    version = doc.data.get("version")
    if checks.is_int(version) and version > VERSION:  # later keys may mean something else
        message = f"spec version {version} is newer than this nncli reads ({VERSION})"
        raise make_error(message, doc.where(("version",)), ("version",))
    errors: list[SpecError] = []
    spec = None
    try:
        spec = Spec.model_validate(doc.data, context={"inputs": data_input_names(doc.data)})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            errors += _translate(err, doc)
    structural = {e.field or "" for e in doc.errors}
    _raise([*doc.errors, *(e for e in errors if not _under(e.field, structural))])
    assert spec is not None
    _finish(spec, doc, Path(os.path.abspath(base_dir)))
    spec._search = search
    return spec


def load(path: str | Path, overrides: Iterable[str] = ()) -> Spec:
    """Read and validate a spec file (see ``loads``)."""
    name = str(path)
    try:
        if not Path(path).is_dir():  # a device never ends, a named pipe may never start
            require_regular(path, SpecError)
        if os.path.getsize(path) > document.MAX_BYTES:
            raise SpecError(f"the spec is larger than {document.MAX_BYTES // 1024} KiB", where=name)
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError("no such spec file", where=name) from None
    except IsADirectoryError:
        raise SpecError("is a folder, not a spec file", where=name) from None
    except (OSError, ValueError) as exc:
        raise SpecError(
            f"cannot read the spec: {getattr(exc, 'strerror', None) or exc}", where=name
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", where=f"{name}:{line}:{col}"
        ) from None
    spec = loads(text, name, Path(path).parent, overrides)
    spec._source = Path(os.path.abspath(path))
    return spec


def _finish(spec: Spec, doc: Document, base_dir: Path) -> None:
    """Fill the defaults that depend on other values and make every path absolute."""
    spec._doc, spec._base_dir = doc, base_dir

    def absolute(path: Path, field: Path_) -> Path:
        base = Path.cwd() if doc.where(field) == "--set" else base_dir
        return Path(os.path.abspath(base / path))

    if spec.name is None:
        stem = Path(doc.filename).stem
        spec.name = stem if stem and not doc.filename.startswith("<") else "model"
    if spec.output is None:  # like other trainers' run folders: under the current folder
        spec.output = Path(os.path.abspath(Path("runs", spec.name, "model.h5")))
    else:
        spec.output = absolute(spec.output, ("output",))
    for key in ("path", "validation", "test"):
        value = getattr(spec.data, key, None)
        if value is not None:
            setattr(spec.data, key, absolute(value, ("data", key)))
    if spec.model.init_from is not None:
        spec.model.init_from = absolute(spec.model.init_from, ("model", "init_from"))
    if isinstance(spec.data, TextData) and spec.data.stride is None:
        spec.data.stride = spec.data.sequence_length


def to_dict(spec: Spec) -> dict[str, Any]:
    """The spec as plain values (paths as absolute strings), every default filled in."""
    out = spec.model_dump(mode="json")
    out["data"] = {"kind": out["data"].pop("kind"), "path": out["data"].pop("path"), **out["data"]}
    if "inputs" in out["data"] and out["data"]["inputs"] is None:  # one input: as before inputs
        del out["data"]["inputs"]
    return out


class _Dumper(yaml.SafeDumper):
    """Quotes every string our loader would read as something else (``1e3``, ``TRUE``)."""


for _tag, _re, _first in document.IMPLICIT:
    _Dumper.add_implicit_resolver(_tag, _re, _first)


def flow_yaml(value: Any) -> str:
    """One value as YAML on one line (``0.001``, ``[64, 32]``, ``{type: adam}``), read back by
    ``--set`` as the same value."""
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, width=1 << 16)
    return text.removesuffix("...\n").strip()


def resolved_yaml(spec: Spec) -> str:
    """The spec as YAML with every default filled in and absolute paths; ``loads`` of it gives
    an equal Spec from any folder."""
    return yaml.dump(
        to_dict(spec),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=None,
        width=120,
        allow_unicode=True,
    )
