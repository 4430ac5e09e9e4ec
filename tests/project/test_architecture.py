"""The house rules of ARCHITECTURE.md, checked on the source itself: short functions, no private
names across modules, the library never prints, and each outside library in its one room."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "nncli"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400
COMMAND_LINE = ("nncli/cli/",)  # the only printers


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_package_has_sources():
    assert len(SOURCES) > 40


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_function_is_over_80_lines(path):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_rel(path)}: {', '.join(long)}"


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_module_imports_another_modules_private_names(path):
    tree, own = _tree(path), _module_name(path)
    crossing = []
    modules = {}  # local alias -> nncli module, for `module._name` uses
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nncli"):
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and node.module != own:
                    crossing.append(f"from {node.module} import {alias.name}")
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("nncli"):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            crossing.append(f"{node.value.id}.{node.attr}")
    assert not crossing, f"{_rel(path)}: {', '.join(sorted(set(crossing)))}"


def _callers_of_print(tree: ast.Module) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "print")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "echo")
        )
    ]


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_only_the_command_line_prints(path):
    if _rel(path).startswith(COMMAND_LINE):
        return
    tree = _tree(path)
    assert not _callers_of_print(tree), f"{_rel(path)} prints"
    writes = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("stdout", "stderr")
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert not writes, f"{_rel(path)} writes to sys.stdout/stderr at lines {writes}"


ROOMS = {  # outside library -> the only places that may import it
    "cupy": ("nncli/backend.py",),
    "cupyx": ("nncli/backend.py",),
    "h5py": ("nncli/checkpoint/",),
    "typer": ("nncli/cli/",),
    "rich": ("nncli/cli/",),
    "yaml": ("nncli/spec/",),
    "PIL": ("nncli/data/",),
    "pandas": ("nncli/data/", "nncli/commands/"),
    "matplotlib": ("nncli/plots/",),
    "optuna": ("nncli/search/",),
    # the training room's collectives, and the stand-in NCCL's wire
    "mpi4py": ("nncli/training/parallel.py", "nncli/testing/fakenccl.py"),
    "numba": ("nncli/engine/kernels.py",),  # compiles the loops each operation hands it (jit)
}


@pytest.mark.parametrize("library", sorted(ROOMS))
def test_each_outside_library_lives_in_its_room(library):
    found = [
        _rel(path)
        for path in SOURCES
        if any(m == library or m.startswith(library + ".") for m in _imported_modules(_tree(path)))
    ]
    outside = [p for p in found if not p.startswith(ROOMS[library])]
    assert not outside, f"{library} imported outside {ROOMS[library]}: {outside}"


def test_the_engine_imports_no_other_room():
    for path in (PACKAGE / "engine").rglob("*.py"):
        outside = {
            m
            for m in _imported_modules(_tree(path))
            if m.startswith("nncli.")
            and not m.startswith(("nncli.engine", "nncli.backend", "nncli.errors"))
        }
        assert not outside, f"{_rel(path)} imports {outside}"
