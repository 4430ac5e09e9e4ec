"""One command-line boundary (nncli/cli/app.py): every command takes the one ``--debug``, runs
with SIGTERM handled as Ctrl-C and inside ``usage.run`` (nncli's errors -> one line and an exit
code); what a rank of a shared run does with an error is training/parallel.py's policy
(``run_rank``); the top level of the package holds the base alone; commands take a typed spec."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
import textwrap

import pytest
from helpers import ROOT, invoke

from nncli.cli.usage import terminated
from nncli.errors import DataError, DivergedError
from nncli.training import parallel

PACKAGE = ROOT / "nncli"
BOUNDARY = sys.modules["nncli.cli.app"]  # the module (``nncli.cli.app`` is the app itself)

# each command with arguments that parse (the files need not exist: the boundary is probed)
COMMANDS = {
    "init": ["data.csv"],
    "train": ["spec.yaml"],
    "predict": ["model.h5", "new.csv"],
    "generate": ["model.h5", "--prompt", "a"],
    "evaluate": ["model.h5", "new.csv"],
    "plot": ["model.h5"],
    "report": ["model.h5"],
    "inspect": ["spec.yaml"],
    "validate": ["spec.yaml"],
    "gradcheck": ["spec.yaml"],
    "export": ["model.h5", "--output", "model.onnx"],
    "tune": ["spec.yaml", "--trials", "1"],
    "cv": ["spec.yaml", "--folds", "2"],
    "serve": ["model.h5"],
    "import": ["w.safetensors", "--spec", "spec.yaml", "--output", "model.h5"],
    "lr-find": ["spec.yaml"],
}


def test_every_command_is_listed_here():
    from typer.main import get_command

    assert set(get_command(BOUNDARY.app).commands) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize(
    "debug", [[], ["--debug"], ["--debug", "first"]], ids=["", "after", "first"]
)
def test_every_command_runs_through_the_boundary(monkeypatch, name, debug):
    """``run`` is called once per command, with the command's --debug wherever it stands among
    the command's options, while SIGTERM raises as Ctrl-C does (restored afterwards)."""
    seen = []

    def probe(action, debug):  # the boundary's run, without running the command
        seen.append((debug, signal.getsignal(signal.SIGTERM)))

    monkeypatch.setattr(BOUNDARY, "run", probe)
    before = signal.getsignal(signal.SIGTERM)
    args = ["--debug", *COMMANDS[name]] if debug[1:] else [*COMMANDS[name], *debug]
    result = invoke(name, *args)
    assert result.exit_code == 0, result.stderr
    assert seen == [(bool(debug), terminated)]
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_shows_the_one_debug_option_last(name):
    lines = invoke(name, "--help").stdout.splitlines()
    options = [line.split()[0] for line in lines if line.lstrip().startswith("--")]
    assert options[-2:] == ["--debug", "--help"], options


def test_no_command_declares_debug_itself():
    """``--debug`` is declared once, in the app: no command function of cli/ takes it."""
    declared = []
    for path in (PACKAGE / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                ast.unparse(d).endswith("command()") for d in node.decorator_list
            ):
                names = [a.arg for a in node.args.args + node.args.kwonlyargs]
                declared += [f"{path.name}:{node.name}" for n in names if n == "debug"]
    assert declared == []
    sources = "".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    assert sources.count('"--debug"') == 1


def test_the_debug_flag_shows_the_traceback_after_or_before_the_arguments(tmp_path):
    missing = tmp_path / "missing.yaml"
    for args in ([missing, "--debug"], ["--debug", missing]):
        result = invoke("inspect", *args)
        assert result.exit_code == 2 and "Traceback" in result.stderr, result.stderr
        assert result.stderr.rstrip().endswith("no such spec file")
    assert "Traceback" not in invoke("inspect", missing).stderr


SIGTERMED = """\
import os, signal, time

from nncli.cli.app import App
from nncli.cli.usage import Commands

app = App(cls=Commands)


@app.command()
def wait() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)


app()
"""


def test_sigterm_ends_a_command_as_ctrl_c_does_with_143(tmp_path):
    script = tmp_path / "sigtermed.py"
    script.write_text(SIGTERMED)
    env = {"PYTHONPATH": str(ROOT)}
    job = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert job.returncode == 143, job.stderr
    assert job.stderr == "nncli: error: interrupted\n"


def test_a_command_returns_its_exit_code_after_its_warnings(monkeypatch):
    """gradcheck's exit 1 (a gradient off) comes after its warnings are said."""
    import warnings

    from typer.testing import CliRunner

    from nncli.cli.app import App
    from nncli.cli.usage import Commands

    probe = App(cls=Commands)

    @probe.command()
    def off() -> int:
        warnings.warn("overflow encountered in exp", RuntimeWarning, stacklevel=1)
        return 1

    result = CliRunner().invoke(probe, [])
    assert result.exit_code == 1
    assert result.stderr.startswith("nncli: warning: overflow encountered in exp")


# -- the rank-failure policy (training/parallel.py) ----------------------------------------------
class _World:
    def __init__(self, lead: bool):
        self.lead, self.calls = lead, []

    def report(self, line: str, code: int) -> None:
        self.calls.append(("report", line, code))

    def abort(self, code: int) -> None:
        self.calls.append(("abort", code))


def _raise(exc: BaseException):
    def action() -> None:
        raise exc

    return action


def _tell(told: list):
    def tell(exc: BaseException) -> int:
        told.append(exc)
        return exc.exit_code

    return tell


def test_rank_0_tells_its_error_then_aborts_the_job():
    world, told, error = _World(lead=True), [], DataError("bad row", where="rank.csv")
    assert parallel.run_rank(world, _raise(error), _tell(told)) == 3
    assert told == [error] and world.calls == [("abort", 3)]


def test_another_rank_hands_its_error_to_rank_0_and_says_nothing():
    world, told = _World(lead=False), []
    error = DataError("bad row", where="rank.csv")
    assert parallel.run_rank(world, _raise(error), _tell(told)) == 3
    assert told == [] and world.calls == [("report", "rank.csv: bad row", 3)]


@pytest.mark.parametrize("lead", [True, False])
def test_an_error_every_rank_raises_ends_the_job_without_an_abort(lead):
    world, told = _World(lead=lead), []
    code = parallel.run_rank(world, _raise(DivergedError("loss is nan")), _tell(told))
    assert code == 5 and world.calls == [] and len(told) == lead


def test_a_rank_that_finishes_ends_with_0():
    world = _World(lead=True)
    assert parallel.run_rank(world, lambda: None, _tell([])) == 0 and world.calls == []


def test_the_command_line_keeps_no_rank_policy():
    source = (PACKAGE / "cli" / "training.py").read_text(encoding="utf-8")
    assert "collective" not in source and ".abort(" not in source and ".report(" not in source


# -- the house -----------------------------------------------------------------------------------
def test_the_top_level_holds_the_base_and_the_packages_alone():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "backend.py", "errors.py"]
    assert (PACKAGE / "testing" / "fakegpu.py").is_file()
    assert (PACKAGE / "cli" / "usage.py").is_file() and (PACKAGE / "cli" / "report.py").is_file()


def test_the_stand_in_is_still_selected_by_the_variable():
    code = textwrap.dedent(
        """
        from nncli.backend import get_backend
        from nncli.testing import fakegpu
        assert get_backend("gpu").xp is fakegpu.xp
        print("stand-in")
        """
    )
    env = {"PYTHONPATH": str(ROOT), "NNCLI_FAKE_GPU": "1"}
    job = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert job.stdout == "stand-in\n", job.stderr


def test_commands_take_a_typed_spec():
    untyped = []
    for path in (PACKAGE / "commands").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                for arg in node.args.args + node.args.kwonlyargs:
                    if arg.arg == "spec" and ast.unparse(arg.annotation or ast.Name("")) == "Any":
                        untyped.append(f"{path.name}:{node.name}")
    assert untyped == []
