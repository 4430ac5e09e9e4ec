"""The docs hold together (issue 25): every relative link in README.md, CONTRIBUTING.md and
docs/ reaches a file that exists (and its ``#anchor`` a heading there, slugged as GitHub slugs
it), and the spec reference (docs/spec.md) documents exactly the keys the spec's schema takes.

The reference marks each key table with the mapping it documents, ``<!-- keys: SCOPE -->`` on
the line before it (a scope with no table documents no keys); each row's first cell is one key
in backticks. SCOPE is ``spec`` (the top level), ``data KIND``, ``augment``, ``model``,
``training``, ``early_stopping``, ``search``, ``wiring`` (``name``/``inputs``, which any layer
takes beside its own settings), ``any_layer`` (``trainable``, likewise), or a registry
(``layer``, ``activation``, ``initializer``, ``loss``, ``optimizer``, ``schedule``) followed by
the names the table is for.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from helpers import ROOT

from nncli.engine import graph
from nncli.engine.layer import LAYER_KEYS
from nncli.engine.registry import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS
from nncli.engine.schedules import SCHEDULES
from nncli.spec.inputs import INPUT_TYPES
from nncli.spec.loading import Spec
from nncli.spec.search import RANGE_KEYS
from nncli.spec.sections import DATA_KINDS, Augment, EarlyStopping, ModelSpec, Training

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
REFERENCE = ROOT / "docs" / "spec.md"
REGISTRIES = {
    "layer": LAYERS,
    "activation": ACTIVATIONS,
    "initializer": INITIALIZERS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
}
SECTIONS = {
    "augment": Augment,
    "model": ModelSpec,
    "training": Training,
    "early_stopping": EarlyStopping,
}
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MARK = re.compile(r"^<!-- keys: (.+?) -->$")
KEY = re.compile(r"^`([a-z_0-9]+)`$")
Scope = tuple[str, str]


# -- links ---------------------------------------------------------------------------------------
def prose(text: str) -> str:
    """The text without fenced blocks and code spans, where brackets are code, not links."""
    return CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation and code marks dropped, spaces to
    hyphens (``### `maxpool2d`, `avgpool2d``` -> ``maxpool2d-avgpool2d``)."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a page offers: its headings' slugs (a repeated one gets -1, -2, ...) and
    explicit ``<a id>``/``<a name>`` targets."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        base = slug(match[1])
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    found.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """``PAGE: TARGET (why)`` for each relative link of ``path`` that leads nowhere (the page
    named relative to ``root``)."""
    problems = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}: {target}"
        if not linked.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{where} (no heading with anchor #{anchor})")
    return problems


def test_the_docs_tree_is_there():
    names = {str(p.relative_to(ROOT)) for p in PAGES}
    for page in (
        "docs/getting-started.md",
        "docs/spec.md",
        "docs/guides/choosing-hyperparameters.md",
        "docs/guides/gpus.md",
        "docs/guides/more-than-one-process.md",
        "docs/guides/export.md",
        "docs/guides/seeing-a-model.md",
        "docs/reference/checkpoint-format.md",
        "docs/reference/exit-codes.md",
        "docs/reference/guarantees.md",
        "docs/reference/benchmarks.md",
        "docs/reference/engine-python.md",
    ):
        assert page in names, page


def test_every_command_has_its_page_and_a_line_in_the_readme():
    import typer

    from nncli.cli import app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = sorted(typer.main.get_command(app).commands)
    assert len(commands) >= 12
    for name in commands:
        assert (ROOT / "docs" / "commands" / f"{name}.md").is_file(), name
        assert f"(docs/commands/{name}.md)" in readme, name


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    assert broken_links(path) == []


def test_a_broken_link_or_anchor_is_found(tmp_path: Path):
    (tmp_path / "b.md").write_text("# Where paths point\n## `a.b`, `c`\n## Twice\n## Twice\n")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#where-paths-point) [ok](b.md#ab-c) [ok](b.md#twice-1) [ok](#top)\n"
        "# Top\n`[code](nowhere.md)` [web](https://example.org/x.md)\n"
        "[gone](c.md) [bad anchor](b.md#nowhere) ![picture](b.png)\n"
    )
    assert broken_links(page, tmp_path) == [
        "a.md: c.md (no such file)",
        "a.md: b.md#nowhere (no heading with anchor #nowhere)",
        "a.md: b.png (no such file)",
    ]


# -- the spec reference's keys -------------------------------------------------------------------
def constructor_keys(cls: type) -> set[str]:
    """The keyword settings a registered class takes (what ``Registry.settings`` offers, less
    the catch-all ``*args``/``**kwargs`` of a class without settings)."""
    params = inspect.signature(cls.__init__).parameters.values()
    var = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {p.name for p in params if p.name != "self" and p.kind not in var and p.name[0] != "_"}


def schema() -> dict[Scope, set[str]]:
    """Every mapping a spec may hold -> the keys it takes, from the code itself."""
    keys: dict[Scope, set[str]] = {("spec", ""): set(Spec.model_fields) | {"search"}}
    keys |= {("data", kind): set(cls.model_fields) for kind, cls in DATA_KINDS.items()}
    keys |= {(name, ""): set(cls.model_fields) for name, cls in SECTIONS.items()}
    keys[("search", "")] = set(RANGE_KEYS)
    keys[("wiring", "")] = set(graph.KEYS)
    keys |= {("input", kind): set(cls.model_fields) for kind, cls in INPUT_TYPES.items()}
    keys[("any_layer", "")] = set(LAYER_KEYS)
    for kind, registry in REGISTRIES.items():
        for name in registry.names():
            if kind == "layer" and name in ACTIVATIONS:  # an activation is a layer too
                assert constructor_keys(LAYERS.get(name)) == constructor_keys(ACTIVATIONS.get(name))
                continue
            keys[(kind, name)] = constructor_keys(registry.get(name))
    for name in OPTIMIZERS.names():
        keys[("optimizer", name)].add("schedule")  # taken apart by the spec, as in sections.py
    return keys


def documented(text: str) -> dict[Scope, set[str]]:
    """The key tables of the reference: each scope its marker names -> the keys of its table."""
    keys: dict[Scope, set[str]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        mark = MARK.match(line)
        if mark is None:
            continue
        kind, *names = mark[1].split()
        scopes = [(kind, name) for name in names] or [(kind, "")]
        rows = []
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines) and lines[j].startswith("|"):
            assert [c.strip() for c in lines[j].strip("|").split("|")][0] == "key", lines[j]
            j += 2  # the header and its |---| line
            while j < len(lines) and lines[j].startswith("|"):
                cell = lines[j].strip("|").split("|")[0].strip()
                key = KEY.match(cell)
                assert key is not None, f"docs/spec.md:{j + 1}: {cell!r} is not one `key`"
                rows.append(key[1])
                j += 1
        for scope in scopes:
            keys.setdefault(scope, set()).update(rows)
    return keys


def test_every_key_table_of_the_reference_says_what_it_documents():
    lines = REFERENCE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\|\s*key\s*\|", line):
            before = next(b for b in reversed(lines[:i]) if b.strip())
            assert MARK.match(before), f"docs/spec.md:{i + 1}: a key table without its scope"


def test_the_spec_reference_documents_exactly_the_schemas_keys():
    wanted, found = schema(), documented(REFERENCE.read_text(encoding="utf-8"))
    assert sorted(set(found) - set(wanted)) == [], "documented mappings the spec does not have"
    assert sorted(set(wanted) - set(found)) == [], "mappings of the spec the reference leaves out"
    for scope in sorted(wanted):
        missing, extra = wanted[scope] - found[scope], found[scope] - wanted[scope]
        assert (sorted(missing), sorted(extra)) == ([], []), (scope, "missing, not in the schema")


def test_the_key_check_sees_a_missing_and_an_invented_key():
    text = REFERENCE.read_text(encoding="utf-8")
    assert "| `patience` | `5` |" in text and "| `units` | **required** |" in text
    without = documented(text.replace("| `patience` | `5` |", "| `patience_` | `5` |"))
    assert without[("early_stopping", "")] - schema()[("early_stopping", "")] == {"patience_"}
    assert "patience" not in without[("early_stopping", "")]
    invented = text.replace("<!-- keys: layer dense -->", "<!-- keys: layer dense dense2 -->")
    assert ("layer", "dense2") in documented(invented)
    assert ("layer", "dense2") not in schema()
