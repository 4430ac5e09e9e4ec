"""Command-line usage: options checked as they are parsed, and click's usage errors (unknown
option, bad value, missing argument) printed as one ``nncli: error: ...`` line with exit 2, the
way every other error is printed, instead of click's usage panel; ``run`` and ``told`` (the
exit-code map), which turn nncli's errors into that line and their exit code; and the shell
completion of option values.
"""

from __future__ import annotations

import math
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import typer
from typer.core import TyperGroup


def _usage_line(exc: Any) -> str:
    """A click usage error (unknown option, bad value, missing argument) as one line."""
    param, option = getattr(exc, "param", None), getattr(exc, "option_name", None)
    name = None
    if param is not None:  # an option by its long flag, an argument as the help shows it
        is_option = param.param_type_name == "option" and param.opts
        name = max(param.opts, key=len) if is_option else (param.name or "").upper()
    if option and getattr(exc, "possibilities", None) is not None:
        hint = f" (did you mean {exc.possibilities[0]!r}?)" if exc.possibilities else ""
        return f"unknown option {option}{hint}"
    if name and hasattr(exc, "param_type"):
        return f"missing {exc.param_type or param.param_type_name} {name}"
    if name:
        return f"{name}: {exc.message}"
    return " ".join(exc.format_message().split())


class Commands(TyperGroup):
    """Usage errors print ``nncli: error: ...`` on one line and exit 2, like every other error,
    instead of click's usage panel. ``nncli --help`` lists the commands in the order a user
    meets them, whatever the order the modules of ``cli/`` register them in."""

    ORDER = ("init", "train", "predict", "generate", "evaluate", "plot", "inspect", "validate")
    running: ClassVar[set[str]] = set()  # the options of the command being run: for its hints

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        Commands.running = {o for p in getattr(command, "params", ()) for o in p.opts}
        return name, command, rest

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        first = [name for name in self.ORDER if name in names]
        return first + [name for name in names if name not in first]

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("nncli: error: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if not callable(getattr(exc, "format_message", None)):
                raise  # not click's: run() turned every error of ours into an exit already
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `nncli`: the help, as before
                exc.show()
            else:
                typer.echo(f"nncli: error: {_usage_line(exc)}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)


def _at_least(what: str, convert: type, low: float) -> Callable[[Any], Any]:
    """A parser for a numeric option: a finite number >= ``low``, else a usage error."""

    def parse(text: Any) -> Any:
        try:
            value = convert(text)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and value >= low):
            raise typer.BadParameter(f"expected {what}, got {text}")
        return value

    return parse


POSITIVE_INT = _at_least("a positive integer", int, 1)
COUNT = _at_least("a non-negative integer", int, 0)
NON_NEGATIVE = _at_least("a number of 0 or more", float, 0.0)


# -- running a command: nncli errors -> one line and an exit code
CLOSED_PIPE = 141  # 128 + SIGPIPE: the status a shell shows for a writer whose reader went away


def warn(message: str) -> None:
    typer.echo(f"nncli: warning: {message}", err=True)


def note(message: str) -> None:
    typer.echo(f"nncli: note: {message}", err=True)


def quiet_stdout() -> None:
    """Point the stdout file descriptor at /dev/null, so the interpreter's flush at exit has
    somewhere to write what is still buffered (a closed pipe would fail it again)."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # no real descriptor (a test runner's buffer): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def with_hint(exc: Any) -> str:
    """An error's line, with its ``OptionHint`` when the command being run takes that option."""
    hint = exc.hint
    if hint is None or hint.option not in Commands.running:
        return str(exc)
    return f"{exc}; {hint.text}"


def run(action: Callable[[], Any], debug: bool) -> Any:
    """Call ``action``; turn nncli's errors into one line and an exit code. Python warnings
    (numpy's RuntimeWarnings) are held: after success each is one ``nncli: warning:`` line,
    after an error the error line stands alone; ``--debug`` shows them as Python does."""
    if debug:
        return _run(action, debug)
    with warnings.catch_warnings(record=True) as caught:
        result = _run(action, debug)  # an error exits from here, its line alone
    for line in dict.fromkeys(_warning_line(w) for w in caught):
        warn(line)
    return result


def _warning_line(caught: warnings.WarningMessage) -> str:
    """A Python warning as one line: the message, its kind and where it was raised."""
    where = f"{Path(caught.filename).name}:{caught.lineno}"
    return f"{' '.join(str(caught.message).split())} ({caught.category.__name__}, {where})"


def _run(action: Callable[[], Any], debug: bool) -> Any:
    try:
        result = action()
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
        return result
    except typer.Exit:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        raise typer.Exit(told(exc, debug)) from None


def told(exc: BaseException, debug: bool) -> int:
    """The exit-code map (ARCHITECTURE.md, "Errors and exit codes"), the one place an error
    becomes what the user sees: ``exc`` as one ``nncli: error:`` line (with its traceback under
    ``--debug``) -> the code the process ends with. An ``Exit`` was said already."""
    from nncli.errors import NncliError, SpecErrors

    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):  # `nncli predict ... | head`: the reader took its fill
        quiet_stdout()
        return CLOSED_PIPE
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, NncliError):
        lines = exc.lines() if isinstance(exc, SpecErrors) else [with_hint(exc)]
        code = exc.exit_code
    elif isinstance(exc, KeyboardInterrupt):  # a signal outside training (training: Interrupted)
        lines, code = ["interrupted"], getattr(exc, "exit_code", 130)
    else:  # a bug in nncli: say so, and how to see more
        lines = [
            f"internal error ({type(exc).__name__}: {exc}); run with --debug for the "
            "traceback and report it"
        ]
        code = 1
    for line in lines:
        typer.echo(f"nncli: error: {line}", err=True)
    return code


def terminated(signum: int, frame: Any) -> None:
    """SIGTERM, handled like Ctrl-C (the save in progress completes or is abandoned whole); the
    one signal path: ``stopped`` carries the exit code (143) that ``run`` and train both use."""
    from nncli.training.guards import stopped

    raise stopped(signum)


# -- shell completion (Typer's own: `nncli --install-completion`); registries load only when a
# shell asks, so `nncli --help` stays fast
DEVICES = ["cpu", "gpu", "auto", "gpu:0", "cuda:0"]
SET_KEYS = ["loss=", "optimizer.type=", "model.layers[0].type=", "model.layers[0].activation="]
SET_KEYS += ["device=", "dtype=", "seed=", "training.epochs=", "training.batch_size="]


def complete_device(incomplete: str) -> list[str]:
    return [d for d in DEVICES if d.startswith(incomplete)]


def _set_values(key: str) -> list[str]:
    """The names a ``--set KEY=`` may take: layer types, activations, losses, optimizers."""
    from nncli.engine.registry import ACTIVATIONS, LAYERS, LOSSES, OPTIMIZERS

    if key in ("optimizer", "optimizer.type"):
        return OPTIMIZERS.names()
    if key == "loss" or key.endswith("loss.type"):
        return LOSSES.names()
    if key.endswith("activation"):
        return ACTIVATIONS.names()
    if key.startswith("model.layers") and key.endswith(".type"):
        return LAYERS.names()
    return {"device": DEVICES, "dtype": ["float32", "float64"]}.get(key, [])


def complete_set(incomplete: str) -> list[str]:
    """``--set`` completion: a key first, then after ``KEY=`` the names that key takes."""
    if "=" not in incomplete:
        return [k for k in SET_KEYS if k.startswith(incomplete)]
    key, _, value = incomplete.partition("=")
    return [f"{key}={name}" for name in _set_values(key) if name.startswith(value)]
