"""The house rules of ARCHITECTURE.md, checked on the source itself: short functions, no private
names across modules, the library never prints, and each outside library in its one room."""

from __future__ import annotations

import ast
import functools
import itertools
import re
from dataclasses import dataclass
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
    "h5py": ("nncli/checkpoint/", "nncli/data/array_files.py"),  # kind: arrays reads HDF5
    "typer": ("nncli/cli/",),
    "rich": ("nncli/cli/",),
    "yaml": ("nncli/spec/",),
    "PIL": ("nncli/data/",),
    "pandas": ("nncli/data/", "nncli/commands/"),
    "matplotlib": ("nncli/plots/",),
    "optuna": ("nncli/search/",),
    # nncli serve: the HTTP side; its model side is commands/serve.py
    "fastapi": ("nncli/serve/",),
    "starlette": ("nncli/serve/",),
    "uvicorn": ("nncli/serve/",),
    "prometheus_client": ("nncli/serve/",),
    "python_multipart": ("nncli/serve/",),  # image uploads (multipart/form-data)
    # the training room's collectives, and the stand-in NCCL's wire
    "mpi4py": ("nncli/training/parallel.py", "nncli/testing/fakenccl.py"),
    "tensorboardX": ("nncli/tracking/tensorboard.py",),  # training.log: tensorboard
    "mlflow": ("nncli/tracking/mlflow_runs.py",),  # training.log: mlflow (mlflow-skinny)
    "numba": ("nncli/engine/kernels.py",),  # compiles the loops each operation hands it (jit)
    # the table formats beside CSV (data/table_files.py): Parquet, Feather, Excel
    "pyarrow": ("nncli/data/",),
    "openpyxl": ("nncli/data/",),
    "safetensors": ("nncli/checkpoint/tensors.py",),  # nncli import
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


# --- The rooms and their arrows: ARCHITECTURE.md's table, checked on every import ---

ARCHITECTURE = ROOT / "ARCHITECTURE.md"
ARROWS_HEADER = "| room | holds | may import |"
NOTHING = ("", "—")  # a "may import" cell of a room that imports no other


@dataclass(frozen=True)
class Arrows:
    """ARCHITECTURE.md's table: ``holds`` maps a top-level name of ``nncli/`` (``engine/``, a
    package; ``errors.py``, a module) to its room; ``may`` maps a room to the rooms it imports."""

    holds: dict[str, str]
    may: dict[str, frozenset[str]]

    def room_of(self, module: str) -> str | None:
        """The room of a dotted name under nncli (a module, or a name one defines); None for
        a name outside nncli; KeyError for a name of nncli that no row holds."""
        parts = module.split(".")
        if parts[0] != "nncli":
            return None
        top = parts[1] if len(parts) > 1 else ""
        if top and (PACKAGE / top).is_dir():
            return self.holds[f"{top}/"]
        if top and (PACKAGE / f"{top}.py").is_file():
            return self.holds[f"{top}.py"]
        return self.holds["__init__.py"]  # the package's own names (``from nncli import x``)

    def room_of_file(self, path: Path) -> str | None:
        parts = path.relative_to(PACKAGE).parts
        return self.holds.get(f"{parts[0]}/" if len(parts) > 1 else parts[0])


def read_arrows(text: str) -> Arrows:
    """The arrows table of ARCHITECTURE.md's text (its header row, a rule, then one row a room)."""
    lines = text.splitlines()
    assert ARROWS_HEADER in lines, f"ARCHITECTURE.md has no table headed {ARROWS_HEADER}"
    holds, may = {}, {}
    for line in itertools.takewhile(
        lambda row: row.startswith("|"), lines[lines.index(ARROWS_HEADER) + 2 :]
    ):
        room, held, allowed = (cell.strip() for cell in line.strip().strip("|").split("|"))
        for name in re.findall(r"`([^`]+)`", held):
            assert name not in holds, f"ARCHITECTURE.md: {name} is in two rooms"
            holds[name] = room
        may[room] = frozenset(r.strip() for r in allowed.split(",") if r.strip() not in NOTHING)
    return Arrows(holds, may)


@functools.cache
def _arrows() -> Arrows:
    return read_arrows(ARCHITECTURE.read_text(encoding="utf-8"))


def imports_of(tree: ast.Module, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a module, at any depth (inside functions, under
    ``if TYPE_CHECKING``); ``from a import b`` gives ``a.b``, relative names made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _imports_of_file(path: Path) -> list[tuple[int, str]]:
    return imports_of(_tree(path), _module_name(path), path.name == "__init__.py")


def test_every_module_of_nncli_is_in_one_room_of_the_table():
    arrows = _arrows()
    tops = {f"{p.name}/" if p.is_dir() else p.name for p in PACKAGE.iterdir()}
    tops = {name for name in tops if name.endswith((".py", "/")) and name != "__pycache__/"}
    held = set(arrows.holds)
    assert not tops - held, f"in no room of ARCHITECTURE.md's arrows table: {tops - held}"
    assert not held - tops, f"ARCHITECTURE.md's rooms hold what nncli/ lacks: {held - tops}"
    unknown = {room for allowed in arrows.may.values() for room in allowed} - set(arrows.may)
    assert not unknown, f"ARCHITECTURE.md's arrows name rooms it has no row for: {unknown}"


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_each_module_imports_only_the_rooms_its_row_allows(path):
    arrows = _arrows()
    room = arrows.room_of_file(path)
    allowed = arrows.may[room] | {room, None}
    wrong = [
        f"line {line}: {name} ({arrows.room_of(name)})"
        for line, name in _imports_of_file(path)
        if arrows.room_of(name) not in allowed
    ]
    may = ", ".join(sorted(arrows.may[room])) or "no other room"
    assert not wrong, f"{_rel(path)} ({room} may import {may}): {'; '.join(wrong)}"


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """A cycle of ``edges`` (node -> the nodes it points to) as ``[a, b, ..., a]``; [] if none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for after in sorted(edges.get(node, ())):
            if cycle := visit(after, [*path, node]):
                return cycle
        done.add(node)
        return []

    return next((c for node in sorted(edges) if (c := visit(node, []))), [])


def test_the_table_draws_no_cycle():
    assert not find_cycle({room: set(may) for room, may in _arrows().may.items()})


def test_the_rooms_import_each_other_in_no_cycle():
    arrows, edges = _arrows(), {}
    for path in SOURCES:
        room = arrows.room_of_file(path)
        for _, name in _imports_of_file(path):
            if arrows.room_of(name) not in (None, room):
                edges.setdefault(room, set()).add(arrows.room_of(name))
    cycle = find_cycle(edges)
    assert not cycle, f"the rooms import each other in a cycle: {' -> '.join(cycle)}"


def test_the_arrow_checks_see_every_kind_of_import_and_cycle():
    """The checks above on made-up code: a function's import, a relative one, a cycle."""
    tree = ast.parse(
        "import nncli.engine\n"
        "from nncli import __version__, checkpoint\n"
        "def late():\n    from nncli.training.batching import rng_for\n"
        "from ..spec import document\nfrom . import streams\n"
    )
    rooms = {name: _arrows().room_of(name) for _, name in imports_of(tree, "nncli.data.split")}
    assert rooms == {
        "nncli.engine": "engine",
        "nncli.__version__": "base",
        "nncli.checkpoint": "checkpoint",
        "nncli.training.batching.rng_for": "training",
        "nncli.spec.document": "spec",
        "nncli.data.streams": "data",
    }
    assert imports_of(ast.parse("from . import split"), "nncli.data", True)[0][1] == (
        "nncli.data.split"
    )
    assert find_cycle({"data": {"base"}, "training": {"data"}}) == []
    assert find_cycle({"base": set(), "data": {"training"}, "training": {"data", "base"}}) == [
        "data",
        "training",
        "data",
    ]


# --- Private attributes: ``obj._x`` only for this module's own names (ARCHITECTURE.md) ---

OWN_OBJECTS = ("self", "cls")
NOT_PRIVATE = {"_asdict", "_replace", "_fields", "_make", "_field_defaults"}  # namedtuple's API
BY_NAME = ("getattr", "setattr", "hasattr", "delattr")
# Reached into before issue 25; item 3 (the engine by operation) removes them. An entry that
# no longer happens fails too, so the list only shrinks.
KNOWN: dict[str, set[str]] = {}  # module -> private reaches still allowed (none left)


def _private(name: str) -> bool:
    dunder = name.startswith("__") and name.endswith("__")
    return name.startswith("_") and not dunder and name not in NOT_PRIVATE


def _own_object(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in OWN_OBJECTS
    call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return call and node.func.id == "super"


def _defined_names(tree: ast.Module) -> set[str]:
    """The private names a module defines: at module level, in a class body, on self/cls,
    in ``__slots__``, or set by name on self/cls (``setattr(self, "_x", ...)``)."""
    names = set()
    bodies = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for statement in itertools.chain.from_iterable(bodies):
        targets = []
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
            targets = [statement.target]
        for target in targets:
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            if isinstance(target, ast.Name) and target.id == "__slots__":
                slots = ast.walk(statement.value)
                names.update(c.value for c in slots if isinstance(c, ast.Constant))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and _own_object(node.value):
            if isinstance(node.ctx, ast.Store | ast.Del):
                names.add(node.attr)
        elif _by_name(node) and _own_object(node.args[0]):
            names.add(node.args[1].value)
    return {name for name in names if isinstance(name, str) and _private(name)}


def _by_name(node: ast.AST) -> bool:
    """``getattr(obj, "_x"...)`` and its kin, with a literal name."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in BY_NAME
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    )


def reached_into(tree: ast.Module) -> set[str]:
    """``obj._x`` (and ``getattr(obj, "_x")``) where ``_x`` is not this module's own: obj is
    not self, cls or super(), and the module does not define ``_x``; and ``m._x`` on any name
    bound by an import, whatever this module defines."""
    own, imported = _defined_names(tree), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            obj, name = node.value, node.attr
        elif _by_name(node):
            obj, name = node.args[0], node.args[1].value
        else:
            continue
        if not _private(name) or _own_object(obj):
            continue
        if name not in own or (isinstance(obj, ast.Name) and obj.id in imported):
            found.add(f"{ast.unparse(obj)}.{name}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_module_reaches_into_another_modules_private_attributes(path):
    found, known = reached_into(_tree(path)), KNOWN.get(_rel(path), set())
    assert not found - known, f"{_rel(path)}: {', '.join(sorted(found - known))}"
    assert not known - found, f"{_rel(path)} no longer reaches {known - found}: drop from KNOWN"


def test_each_known_reach_is_of_a_module_that_exists():
    gone = set(KNOWN) - {_rel(path) for path in SOURCES}
    assert not gone, f"KNOWN names modules that no longer exist: {gone}; drop them"


def test_the_private_attribute_check_on_made_up_code():
    tree = ast.parse(
        "import nncli.fakegpu as fake\n"
        "from nncli.engine import recurrent\n"
        "class Own:\n    _cache = None\n    __slots__ = ('_slot',)\n"
        "    def __init__(self):\n        self._size = 1\n        setattr(self, '_named', 2)\n"
        "    def same(self, other):\n"
        "        return other._size + other._cache + other._slot + other._named + super()._x\n"
        "def _helper(): ...\n"
        "def outside(layer, point):\n"
        "    layer._reuse('_work'); getattr(layer, '_hs'); recurrent._size; fake._a\n"
        "    return point._replace(x=1), layer.__class__, self_like._helper\n"
    )
    assert reached_into(tree) == {"layer._reuse", "layer._hs", "recurrent._size", "fake._a"}
