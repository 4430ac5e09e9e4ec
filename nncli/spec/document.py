"""YAML with positions: text -> plain values plus the line and column of every key and value.

Safe by construction: nodes are composed (never constructed by PyYAML), only the standard tags
are read, and a small resolver keeps YAML 1.1's traps out: only ``true``/``false`` (any case)
are booleans, ``1e-3`` is a number, ``yes``/``on``/``01:30``/``2024-01-01`` stay text. Size,
nesting and alias expansion are bounded, so a hostile file is refused quickly.

Paths are tuples (``("model", "layers", 2, "units")``) rendered as ``model.layers[2].units``.
Overrides (``--set KEY=VALUE``) are applied here too, to the plain values before validation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from nncli.errors import SpecError

MAX_BYTES = 1 << 20  # a spec is a page of settings; anything bigger is a mistake or an attack
MAX_VALUES = 20_000  # values, also after alias expansion ("billion laughs" files blow past it)
MAX_ALIASES = 500
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]
_STD = "tag:yaml.org,2002:"
_NULL, _BOOL, _INT, _FLOAT, _STR = (_STD + t for t in ("null", "bool", "int", "float", "str"))
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_RE = re.compile(r"^(?:true|false)$", re.IGNORECASE)
_INT_RE = re.compile(r"^[-+]?[0-9]+$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\[([0-9]+)\]")


def render(path: Path_) -> str:
    """``("model", "layers", 2, "units")`` -> ``model.layers[2].units``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_key(text: str) -> Path_ | None:
    """``model.layers[2].units`` -> ``("model", "layers", 2, "units")``; None when malformed."""
    parts: list[str | int] = []
    pos, want_name = 0, True
    while pos < len(text):
        if want_name and parts:
            if text[pos] != ".":
                return None
            pos += 1
        m = _KEY_RE.match(text, pos)
        if m is None or (want_name and m.group(1) is not None):
            return None
        parts.append(int(m.group(1)) if m.group(1) is not None else m.group(0))
        pos = m.end()
        want_name = not (pos < len(text) and text[pos] == "[")
    return tuple(parts) if parts and want_name else None


class SetError(SpecError):
    """An error in a ``--set`` override, printed as ``--set model.layers[9].units: ...``."""

    def __str__(self) -> str:
        return f"--set {self.field}: {self.message}" if self.field else f"--set: {self.message}"


def make_error(message: str, where: str | None, path: Path_) -> SpecError:
    cls = SetError if where == "--set" else SpecError
    return cls(message, where=where, field=render(path) or None)


class _Resolver(BaseResolver):
    """YAML 1.2-like implicit types: null, true/false, decimal ints, floats with or without a dot;
    everything else is text."""


IMPLICIT = (  # (tag, pattern, first characters) for plain scalars; the rest is text
    (_BOOL, _BOOL_RE, list("tTfF")),
    (_NULL, _NULL_RE, ["~", "n", "N", ""]),
    (_INT, _INT_RE, list("-+0123456789")),
    (_FLOAT, _FLOAT_RE, list("-+0123456789.")),
)
for _tag, _re, _first in IMPLICIT:
    _Resolver.add_implicit_resolver(_tag, _re, _first)


class _Refused(Exception):
    """A file past one of the limits (size, depth, aliases, expanded values)."""

    def __init__(self, message: str, mark: Any):
        super().__init__(message)
        self.message, self.mark = message, mark


class _Composer(Composer):
    """PyYAML's composer, bounded in nesting depth (it recurses per level) and alias count."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.aliases, self.nodes = 0, 0, 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.depth, self.nodes = self.depth + 1, self.nodes + 1
        if self.nodes > MAX_VALUES:  # stop reading a huge file early; aliases are counted later
            raise _Refused(
                f"the spec has more than {MAX_VALUES} values", self.peek_event().start_mark
            )
        if self.depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        if self.check_event(AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _Refused(f"more than {MAX_ALIASES} YAML aliases", mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Loader(Reader, Scanner, Parser, _Composer, _Resolver):
    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self)
        _Resolver.__init__(self)


@dataclass
class Document:
    """Plain values read from YAML, with 1-based (line, col) of each value and mapping key."""

    data: Any
    filename: str
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    overridden: set[Path_] = field(default_factory=set)
    errors: list[SpecError] = field(default_factory=list)

    def where(self, path: Path_, key: bool = False, root: bool = True) -> str | None:
        """``FILE:LINE:COL`` of ``path`` (its key with ``key``), else of its nearest ancestor
        (the whole document only with ``root``); ``--set`` when an override gave it."""
        if any(path[: len(o)] == o for o in self.overridden):
            return "--set"
        for n in range(len(path), -1 if root else 0, -1):
            pos = (key and self.keys.get(path[:n])) or self.values.get(path[:n])
            if pos:
                return f"{self.filename}:{pos[0]}:{pos[1]}"
        return None

    def error(self, message: str, path: Path_, key: bool = False) -> None:
        self.errors.append(make_error(message, self.where(path, key), path))


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


class _Builder:
    """Nodes -> plain values, recording positions, duplicate keys and unsupported tags."""

    def __init__(self, doc: Document):
        self.doc, self.count = doc, 0

    def fail(self, node: Node, path: Path_, message: str) -> None:
        line, col = _pos(node)
        self.doc.errors.append(make_error(message, f"{self.doc.filename}:{line}:{col}", path))

    def value(self, node: Node, path: Path_, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_VALUES or depth > MAX_DEPTH:
            what = (
                f"expands to more than {MAX_VALUES} values"
                if depth <= MAX_DEPTH
                else (f"nests deeper than {MAX_DEPTH} levels")
            )
            raise _Refused(f"the spec {what} (recursive or nested YAML aliases?)", node.start_mark)
        self.doc.values.setdefault(path, _pos(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _STD + "seq":
                return self.fail(node, path, f"unsupported YAML tag {_tag_name(node.tag)!r}")
            return [self.value(n, (*path, i), depth + 1) for i, n in enumerate(node.value)]
        if node.tag != _STD + "map":
            return self.fail(node, path, f"unsupported YAML tag {_tag_name(node.tag)!r}")
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.fail(key_node, path, "expected a plain key, got a list or mapping")
                continue
            key = key_node.value
            if key in first_line:
                self.fail(
                    key_node, (*path, key), f"duplicate key (first at line {first_line[key]})"
                )
                continue
            first_line[key] = _pos(key_node)[0]
            self.doc.keys[(*path, key)] = _pos(key_node)
            result[key] = self.value(value_node, (*path, key), depth + 1)
        return result

    def scalar(self, node: ScalarNode, path: Path_) -> Any:
        tag, text = node.tag, node.value
        if tag == _STR:
            return text
        for want, pattern, convert in (
            (_NULL, _NULL_RE, lambda s: None),
            (_BOOL, _BOOL_RE, lambda s: s.lower() == "true"),
            (_INT, _INT_RE, int),
            (_FLOAT, _FLOAT_RE, _float),
        ):
            if tag == want:
                if pattern.match(text):
                    return convert(text)
                return self.fail(node, path, f"cannot read {text!r} as {_tag_name(tag)}")
        return self.fail(node, path, f"unsupported YAML tag {_tag_name(tag)!r}")


def _float(text: str) -> float:
    low = text.lower()
    if low.endswith(".inf"):
        return -math.inf if low.startswith("-") else math.inf
    return math.nan if low == ".nan" else float(text)


def parse(text: str, filename: str) -> Document:
    """Read YAML text. Syntax errors and refused files raise one ``SpecError``; duplicate keys and
    bad tags are collected in ``doc.errors`` so they are reported with every other problem."""
    doc = Document(None, filename)
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise make_error(f"the spec is larger than {MAX_BYTES // 1024} KiB", filename, ())
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is not None:
            doc.data = _Builder(doc).value(node, ())
    except _Refused as exc:
        raise _error_at(exc.message, filename, exc.mark, text) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise _error_at(f"invalid YAML: {problem}", filename, mark, text) from None
    except yaml.reader.ReaderError as exc:
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        mark = yaml.Mark(filename, exc.position, 0, 0, None, None)
        raise _error_at(
            f"invalid YAML: unacceptable character {what}", filename, mark, text
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, IndexError) as exc:
        # PyYAML's last lines of defence; the contract is a SpecError for any input.
        raise make_error(f"invalid YAML: {exc}", filename, ()) from None
    return doc


def _error_at(message: str, filename: str, mark: Any, text: str) -> SpecError:
    if mark is None:
        return make_error(message, filename, ())
    line, col = mark.line, mark.column
    if line == 0 and col == 0 and mark.index:  # a reader mark carries only the offset
        line = text.count("\n", 0, mark.index)
        col = mark.index - (text.rfind("\n", 0, mark.index) + 1)
    where = filename if filename == "--set" else f"{filename}:{line + 1}:{col + 1}"
    return make_error(message, where, ())


def _describe(value: Any) -> str:
    return {dict: "a mapping", list: "a list"}.get(type(value), f"the value {value!r}")


def _named(path: Path_) -> bool:
    """Where a bare name stands for ``{type: name}``: layers, loss, optimizer, activations."""
    is_layer = len(path) == 3 and path[:2] == ("model", "layers")
    return is_layer or path in (("loss",), ("optimizer",)) or path[-1:] == ("activation",)


def apply_override(doc: Document, assignment: str) -> None:
    """Apply ``KEY=VALUE`` to ``doc.data`` (a mapping); problems go to ``doc.errors``.

    VALUE is read as YAML with the same rules as the file (``0.01``, ``[64, 64]``,
    ``{type: adam}``). A layer or optimizer given by its bare name becomes ``{type: name}`` so
    its settings can be set. Missing mappings along the way are created.
    """
    key_text, sep, value_text = assignment.partition("=")
    path = parse_key(key_text.strip())

    def fail(message: str) -> None:
        doc.errors.append(SetError(message, where="--set", field=render(path or ())))

    if not sep or path is None:
        example = "model.layers[1].units=128"
        return fail(f"expected KEY=VALUE such as {example}, got {assignment!r}")
    try:
        value = parse(value_text, "--set")
    except SpecError as exc:
        return fail(exc.message)
    for err in value.errors:
        fail(err.message)
    node = doc.data
    for i, part in enumerate(path):
        problem = _step_problem(node, part, path[:i])
        if problem:
            return fail(problem)
        if i == len(path) - 1:
            node[part] = value.data
            break
        here = path[: i + 1]
        if isinstance(node, dict) and part not in node:
            node[part] = {} if isinstance(path[i + 1], str) else []
            doc.overridden.add(here)
        if isinstance(node[part], str) and isinstance(path[i + 1], str) and _named(here):
            node[part] = {"type": node[part]}
        node = node[part]
    doc.overridden.add(path)


def _step_problem(node: Any, part: str | int, parent: Path_) -> str | None:
    """Why ``node[part]`` cannot be reached, or None."""
    name = render(parent) or "the spec"
    if isinstance(part, int):
        if not isinstance(node, list):
            return f"{name} is {_describe(node)}, not a list"
        if part >= len(node):
            if parent and parent[-1] == "layers":
                return f"no layer {part} (the model has {len(node)})"
            return f"no item {part} ({name} has {len(node)})"
        return None
    if not isinstance(node, dict):
        return f"{name} is {_describe(node)}, not a mapping"
    return None
