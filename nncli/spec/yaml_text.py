"""Commented YAML written as text, for ``nncli init``'s starter specs: ``key: value  # why``
lines, names quoted only when the spec's own reader would read them as something else."""

from __future__ import annotations

import json
import textwrap

from nncli.data.profile import Column
from nncli.spec import document

COMMENT_AT = 34  # the column comments start at, as in the spec reference (docs/spec.md)
WIDTH = 100  # longer comments go on their own lines above the key
SHOW = 6  # names a comment lists before "..."


def pair(key: str, value: str, comment: str = "", indent: int = 0) -> str:
    """``key: value`` indented (``value`` alone without a key), with ``# comment`` from
    COMMENT_AT, or on lines of its own above it when the line would pass WIDTH."""
    pad = "  " * indent
    text = f"{pad}{key}: {value}" if key else f"{pad}{value}"
    if not comment:
        return text
    line = f"{text.ljust(COMMENT_AT - 1)} # {comment}"
    if len(line) <= WIDTH and len(text) < COMMENT_AT - 1:
        return line
    return f"{note(comment, indent)}\n{text}"


def note(comment: str, indent: int = 0) -> str:
    """A comment on lines of its own, wrapped at WIDTH."""
    pad = "  " * indent
    lines = textwrap.wrap(comment, WIDTH - len(pad) - 2, break_on_hyphens=False)
    return "\n".join(f"{pad}# {line}" for line in lines)


def scalar(text: str) -> str:
    """A name as YAML: plain when the spec's reader (in a flow list, the strictest place) reads
    it back as the same text, else double-quoted (a JSON string is a YAML one)."""
    try:
        plain = document.parse(f"k: [{text}]", "<name>").data == {"k": [text]}
    except Exception:  # the reader refused it: quote it
        plain = False
    return text if plain and text == text.strip() and "#" not in text else json.dumps(text)


def names(columns: list[Column] | list[str]) -> str:
    """A YAML flow list of column names."""
    return "[" + ", ".join(scalar(getattr(c, "name", c)) for c in columns) + "]"


def listed(items: list[str]) -> str:
    """Names for a comment: "a, b, c" or "a, b, ... (40)"."""
    shown = ", ".join(items[:SHOW])
    return shown if len(items) <= SHOW else f"{shown}, ... ({len(items)})"
