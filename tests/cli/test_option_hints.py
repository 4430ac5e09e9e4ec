"""Every ``--option`` a command can print names an option that command takes.

The hint texts are collected from the source, not from a list kept by hand: every string in
nncli (messages, fields, notes; an f-string with its values as ``{}``) that a command's Typer
function can reach is parsed for ``--options``. Reaching follows names as Python resolves them:
a function of the same module, an imported function, class or module-level constant (a
registry dict reaches what it lists), ``module.function``, ``Class.method`` of a class imported
by name (``Predictor.load``); ``obj.method`` reaches every method of that name in nncli. It
over-approximates (a message may be counted for a command that never prints it), so it misses
none but the layer registries' (layers name no options). An option after ``nncli <command>`` in
the same sentence belongs to that command. An ``OptionHint``'s option is left to the command
line, which prints the hint only for a command that takes it:
``test_an_option_hint_shows_only_where_the_option_is``.
"""

from __future__ import annotations

import ast
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import typer
from helpers import IMAGE_SPEC, ROOT, image_folder, invoke, iris_spec, one_error_line

from nncli.cli import app

PACKAGE = ROOT / "nncli"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")
NAMED = re.compile(r"\bnncli (\w+)\b")  # "nncli train X --skip-bad": train's option
DECLARATIONS = {"Option", "Argument", "startswith", "endswith"}  # typer's options themselves
NOT_MESSAGES = (ast.List, ast.Tuple, ast.Set, ast.Compare)  # argv built for a worker process
CONSTRUCTION = ("__init__", "__post_init__", "__new__")
# ``text.count(...)``, ``xp.where(...)``: Python's and numpy's own, not nncli's of that name
FOREIGN = {
    n for t in (str, bytes, list, dict, set, tuple, int, float, np, np.ndarray) for n in dir(t)
}
# Texts the reach counts for commands that cannot print them: (file, a piece of the text, the
# option, the commands it is said of or "*" for every one, why). A test checks each is there.
NEVER_PRINTED = [
    ("nncli/spec/document.py", "--set", "--set", "*", "the place of a value --set gave"),
    (
        "nncli/data/image_files.py",
        "--skip-bad left out every image",
        "--skip-bad",
        "*",
        "all_skipped: raised only under skip_bad=True, which only --skip-bad commands pass",
    ),
    (
        "nncli/data/image_column.py",
        "whose image is missing or unreadable (--skip-bad)",
        "--skip-bad",
        "*",
        "a table's image column: said only under skip_bad=True, which --skip-bad commands pass",
    ),
    ("nncli/data/folds.py", "folds", "--folds", "tune", "tune names it --cv (_cv_value)"),
    ("nncli/checkpoint/folder.py", "pass --force", "--force", "tune", "trials: force=True"),
    ("nncli/checkpoint/folder.py", "--resume {}", "--resume", "tune", "trials never resume"),
    ("nncli/commands/resume.py", "--resume", "--resume", "tune", "trials never resume"),
    (
        "nncli/checkpoint/folder.py",
        "--output",
        "--output",
        "validate",
        "check_kind's default; validate's refuse_outputs_on_inputs passes the spec's output key",
    ),
    (
        "nncli/commands/parts.py",
        "--part",
        "--part",
        "plot",
        "plot's confusion matrix asks for part='all', which returns before any --part message",
    ),
    (
        "nncli/checkpoint/folder.py",
        "--output",
        "--output",
        "lr-find",
        "check_kind's default; lr-find's check_output passes option='--output-dir'",
    ),
    (
        "nncli/checkpoint/outputs.py",
        "--output",
        "--output",
        "lr-find",
        "check_output's default; lr-find passes option='--output-dir'",
    ),
    ("nncli/commands/predictor.py", "--keep column", "--keep", "serve", "a server keeps none"),
    ("nncli/data/encoder.py", "--keep copies", "--keep", "serve", "a server keeps none"),
    ("nncli/data/sequences.py", "--keep column", "--keep", "serve", "a server keeps none"),
    (
        "nncli/spec/starter_kinds.py",
        "given with --target",
        "--target",
        "*",
        "a starter's comment, written by init alone; spec/kinds.py's SPEC_KINDS holds each "
        "kind's starter beside the section model every command reads",
    ),
]


@dataclass
class Text:
    where: str
    text: str


@dataclass
class Code:
    """A function, a method, or a module-level assignment (a constant, a registry dict)."""

    module: str
    where: str
    owner: str | None = None  # the class of a method
    names: set[str] = field(default_factory=set)  # bare names it reads
    attributes: set[tuple[str | None, str, bool]] = field(default_factory=set)  # base, attr, called
    texts: list[Text] = field(default_factory=list)
    hints: list[Text] = field(default_factory=list)  # OptionHint texts


@dataclass
class Class:
    bases: list[str]
    methods: dict[str, Code]
    properties: set[str]


@dataclass
class Module:
    name: str
    # alias -> (module, name), or (module, None) for ``import module``
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    top: dict[str, Code] = field(default_factory=dict)  # functions and assignments by name
    classes: dict[str, Class] = field(default_factory=dict)


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _skipped(tree: ast.AST) -> set[int]:
    """Strings that are not messages: docstrings, typer's declarations, argv lists,
    comparisons, and the pieces of an f-string (read whole)."""
    skipped = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skipped.add(id(body[0].value))  # a docstring
        inside: list[ast.AST] = []
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DECLARATIONS:
                inside = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, NOT_MESSAGES):
            inside = list(ast.iter_child_nodes(node))
        elif isinstance(node, ast.JoinedStr):
            skipped |= {id(v) for v in node.values}
        for child in inside:
            skipped |= {id(n) for n in ast.walk(child)}
    return skipped


def _hinted(tree: ast.AST) -> set[int]:
    return {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "OptionHint"
        for part in ast.walk(node)
    }


def _read(code: Code, node: ast.AST, rel: str, skipped: set[int], hinted: set[int]) -> Code:
    called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    local = {
        a.arg
        for n in ast.walk(node)
        if isinstance(n, ast.arguments)
        for a in ast.walk(n)
        if isinstance(a, ast.arg)
    }
    local |= {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    for part in ast.walk(node):
        if isinstance(part, ast.Name) and part.id not in local:
            code.names.add(part.id)
        elif isinstance(part, ast.Attribute) and isinstance(part.ctx, ast.Load):
            base = part.value.id if isinstance(part.value, ast.Name) else None
            code.attributes.add((base, part.attr, id(part) in called))
        text = _text(part)
        if text is not None and id(part) not in skipped and "--" in text:
            at = Text(f"{rel}:{part.lineno}", text)
            (code.hints if id(part) in hinted else code.texts).append(at)
    return code


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel, module = path.relative_to(ROOT).as_posix(), Module(_module_name(path))
        skipped, hinted = _skipped(tree), _hinted(tree)
        for node in ast.walk(tree):  # imports anywhere in the module, lazy ones too
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = (alias.name, None)
        for node in tree.body:
            where = f"{rel}:{node.lineno}"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                module.top[node.name] = _read(Code(module.name, where), node, rel, skipped, hinted)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        code = Code(module.name, where)
                        module.top[target.id] = _read(code, node.value, rel, skipped, hinted)
            elif isinstance(node, ast.ClassDef):
                functions = [f for f in node.body if isinstance(f, ast.FunctionDef)]
                methods = {
                    f.name: _read(
                        Code(module.name, f"{rel}:{f.lineno}", node.name), f, rel, skipped, hinted
                    )
                    for f in functions
                }
                properties = {
                    f.name
                    for f in functions
                    if any(
                        getattr(d, "id", getattr(d, "attr", "")) in ("property", "cached_property")
                        for d in f.decorator_list
                    )
                }
                bases = [
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                ]
                module.classes[node.name] = Class(bases, methods, properties)
        modules[module.name] = module
    return modules


class Reach:
    """What a piece of code can run, resolved by name as Python would."""

    def __init__(self, modules: dict[str, Module]):
        self.modules = modules
        self.classes: dict[str, list[Class]] = defaultdict(list)  # by name, in every module
        # a method's name -> (its code, whether it is a property), in every class
        self.methods: dict[str, list[tuple[Code, bool]]] = defaultdict(list)
        for module in modules.values():
            for name, cls in module.classes.items():
                self.classes[name].append(cls)
                for method, code in cls.methods.items():
                    self.methods[method].append((code, method in cls.properties))

    def named(self, module_name: str, name: str, depth: int = 0) -> list[Code]:
        """What ``name`` means in a module: its function or constant, a class (made: its
        constructor), a name it imports (followed), or a whole module (nothing by itself)."""
        module = self.modules.get(module_name)
        if module is None or depth > 5:
            return []
        if name in module.top:
            return [module.top[name]]
        if name in module.classes:
            cls = module.classes[name]
            return [m for n, m in cls.methods.items() if n in CONSTRUCTION]
        if name in module.imports:
            source, real = module.imports[name]
            if real is not None and f"{source}.{real}" not in self.modules:
                return self.named(source, real, depth + 1)
        return []

    def module_of(self, module_name: str, name: str | None) -> str | None:
        module = self.modules.get(module_name)
        if module is None or name not in module.imports:
            return None
        source, real = module.imports[name]
        full = source if real is None else f"{source}.{real}"
        return full if full in self.modules else None

    def own(self, code: Code, attr: str) -> list[Code] | None:
        """``self.attr`` in a method: the class's method or one of its bases' (None when the
        class is not known by name)."""
        todo, seen = [code.owner], set()
        found = False
        out = []
        while todo:
            name = todo.pop()
            if name in seen or name not in self.classes:
                continue
            seen.add(name)
            for cls in self.classes[name]:
                found = True
                if attr in cls.methods:
                    out.append(cls.methods[attr])
                todo += cls.bases
        return out if found else None

    def class_method(self, module_name: str, name: str, attr: str) -> list[Code]:
        """``Class.attr`` where ``name`` imports an nncli class (``Predictor.load``): its method
        or one of its bases'; nothing for another library's name."""
        source, real = self.modules[module_name].imports[name]
        module = self.modules.get(source)
        if module is None or real not in module.classes:
            return []
        return self.own(Code(source, "", owner=real), attr) or []

    def callees(self, code: Code) -> list[Code]:
        found = []
        for name in code.names:
            found += self.named(code.module, name)
        for base, attr, called in code.attributes:
            module = self.module_of(code.module, base)
            if module is None and base in self.modules[code.module].imports:
                found += self.class_method(code.module, base, attr)
                continue  # else np.where, shutil.copy: another library's
            own = self.own(code, attr) if base in ("self", "cls") and code.owner else None
            if module is not None:
                found += self.named(module, attr)
            elif own is not None:
                found += own
            elif attr not in FOREIGN:  # a method of an object of unknown class
                found += [m for m, prop in self.methods.get(attr, []) if called or prop]
        return found

    def all_from(self, start: Code) -> list[Code]:
        seen, todo = {start.where}, [start]
        out = []
        while todo:
            code = todo.pop()
            out.append(code)
            for callee in self.callees(code):
                if callee.where not in seen:
                    seen.add(callee.where)
                    todo.append(callee)
        return out


def _options() -> dict[str, set[str]]:
    group = typer.main.get_command(app)
    return {name: {o for p in c.params for o in p.opts} for name, c in group.commands.items()}


def _commands(modules: dict[str, Module]) -> dict[str, Code]:
    """The Typer function of each command (``@app.command()`` in ``cli/``)."""
    found = {}
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command"
                for d in node.decorator_list
            ):
                found[node.name.rstrip("_").replace("_", "-")] = modules[_module_name(path)].top[
                    node.name
                ]
    return found


def _owner(text: str, at: int, command: str) -> str:
    """The command an option at ``at`` belongs to: the last ``nncli <command>`` before it in
    the same sentence, else the one printing it."""
    before = re.split(r"[;.]\s", text[:at])[-1]
    named = NAMED.findall(before)
    return named[-1] if named else command


@pytest.fixture(scope="module")
def analysed():
    modules = _modules()
    return Reach(modules), _commands(modules)


def test_every_command_is_found(analysed):
    _, commands = analysed
    assert set(commands) == set(_options())


def test_every_option_a_command_prints_is_one_it_takes(analysed):
    reach, commands = analysed
    options = _options()
    wrong = set()
    for command, start in commands.items():
        for code in reach.all_from(start):
            for text in code.texts:
                for match in OPTION.finditer(text.text):
                    owner, option = _owner(text.text, match.start(), command), match.group()
                    if option in options.get(owner, set()) or _never(text, option, command):
                        continue
                    wrong.add(f"{command}: {option} at {text.where}: {text.text!r}")
    assert not wrong, "\n".join(sorted(wrong))


def _never(text: Text, option: str, command: str) -> bool:
    file = text.where.rsplit(":", 1)[0]
    return any(
        (f, o) == (file, option) and piece in text.text and said in ("*", command)
        for f, piece, o, said, _ in NEVER_PRINTED
    )


def test_every_never_printed_text_is_still_there():
    for file, piece, option, _, _ in NEVER_PRINTED:
        source = (ROOT / file).read_text(encoding="utf-8")
        assert piece.replace("{}", "") in source and option in source, (file, piece)


def test_the_reach_finds_what_it_should(analysed):
    """The analysis itself: the image loader's messages are reached from init (through
    validate, the data room's registry dict and the image kind's loader), the table encoder's
    from evaluate, the checkpoint's checks from export (through ``Predictor.load``, a method of
    an imported class), and predict's --keep message not from train."""
    reach, commands = analysed
    where = {
        cmd: {c.where.rsplit(":", 1)[0] for c in reach.all_from(start)}
        for cmd, start in commands.items()
    }
    assert "nncli/data/image_files.py" in where["init"]
    assert "nncli/data/table_encoder.py" in where["evaluate"]
    assert "nncli/checkpoint/contents.py" in where["export"]
    keep = {
        c.where
        for c in reach.all_from(commands["train"])
        if any("--keep" in t.text for t in c.texts)
    }
    assert not keep, keep


def test_every_option_hint_names_an_option_of_some_command(analysed):
    reach, _ = analysed
    options = set().union(*_options().values())
    hints = [
        hint
        for module in reach.modules.values()
        for code in [*module.top.values()]
        + [m for cls in module.classes.values() for m in cls.methods.values()]
        for hint in code.hints
    ]
    assert {h.where.split(":")[0] for h in hints} >= {
        "nncli/data/image_files.py",
        "nncli/data/table_encoder.py",
        "nncli/checkpoint/folder.py",
    }
    for hint in hints:
        assert OPTION.findall(hint.text) and set(OPTION.findall(hint.text)) <= options, hint


# -- the command line shows an OptionHint only where the command takes its option ---------------


def _images(root: Path) -> Path:
    """Two class folders of images and one file that is not an image."""
    image_folder(root)
    (root / "light" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return root


def test_an_option_hint_shows_only_where_the_option_is(tmp_path):
    _images(tmp_path / "d")
    spec = tmp_path / "images.yaml"
    spec.write_text(IMAGE_SPEC)
    hint = "--skip-bad leaves out unreadable images"
    for command in ("train", "validate"):  # both take --skip-bad
        line = one_error_line(invoke(command, spec), 3, "broken.png", "not a PNG", hint)
        assert line.endswith(hint)
    line = one_error_line(invoke("gradcheck", spec), 3, "broken.png", "not a PNG")
    assert "--" not in line  # gradcheck has no --skip-bad
    checked = invoke("validate", spec, "--skip-bad")
    assert checked.exit_code == 0, checked.stderr
    assert "skipped 1 unreadable image" in checked.stderr


def test_init_takes_skip_bad_and_says_to_train_with_it(tmp_path):
    data = _images(tmp_path / "photos")
    out = tmp_path / "photos.yaml"
    one_error_line(invoke("init", data, "--output", out), 3, "broken.png", "--skip-bad leaves")
    assert not out.exists()
    result = invoke("init", data, "--output", out, "--skip-bad")
    assert result.exit_code == 0, result.stderr
    assert "nncli: warning: skipped 1 unreadable image" in result.stderr
    assert f"train it with: nncli train {out} --skip-bad" in result.stdout
    trained = invoke("train", out, "--smoke", "--quiet", "--skip-bad")
    assert trained.exit_code == 0, trained.stderr


def test_validate_names_no_output_option_it_lacks(tmp_path):
    shutil.copy(ROOT / "datasets" / "iris.csv", tmp_path / "iris.csv")
    spec = tmp_path / "spec.yaml"
    spec.write_text(iris_spec("{epochs: 1}").replace("out/model.h5", "iris.csv"))
    line = one_error_line(invoke("validate", spec), 2, "output: ", "would overwrite the input")
    assert "--output" not in line
    one_error_line(invoke("train", spec), 2, "would overwrite", "; choose another --output")


def test_tune_names_its_own_fold_option(tmp_path):
    pytest.importorskip("optuna")
    shutil.copy(ROOT / "datasets" / "iris.csv", tmp_path / "iris.csv")
    spec = tmp_path / "spec.yaml"
    search = "search: {optimizer.learning_rate: {low: 0.001, high: 0.1, log: true}}\n"
    spec.write_text(iris_spec("{epochs: 1}") + search)
    result = invoke("tune", spec, "--trials", "1", "--cv", "1", "--output", tmp_path / "t")
    one_error_line(result, 3, "--cv: expected at least 2 folds, got 1")
