"""The Typer application every command registers on, the options several commands share, and
``nncli --version``. Each group of commands lives in its own module of this package.

The one command-line boundary is here: ``App.command`` gives every command the one ``--debug``
option (last among its options, where each command declared it before), handles SIGTERM as
Ctrl-C while it runs (``usage.terminated``) and runs it inside ``usage.run``, which maps nncli's
errors to one line and an exit code. A command parses, calls one library function and renders;
it may return an exit code (said after its warnings), or None for 0."""

from __future__ import annotations

import functools
import inspect
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

import nncli
from nncli.cli.usage import Commands, complete_device, run, terminated

DEBUG = typer.Option(False, "--debug", help="Show the full traceback on errors.")


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises ``stopped(SIGTERM)`` (a KeyboardInterrupt with exit code 143) while a
    command runs, in the main thread (the only one that may take a signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def bounded(command: Callable[..., int | None]) -> Callable[..., None]:
    """``command`` as the app runs it: its own options, then ``--debug``; SIGTERM handled and
    nncli's errors mapped (``run``); a returned code ends the process with that code."""
    signature = inspect.signature(command, eval_str=True)
    debug = inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=DEBUG)

    @functools.wraps(command)
    def at_the_boundary(*args: Any, debug: bool = False, **kwargs: Any) -> None:
        with sigterm_as_ctrl_c():
            code = run(functools.partial(command, *args, **kwargs), debug)
        if code:
            raise typer.Exit(code)

    parameters = [*signature.parameters.values(), debug.replace(annotation=bool)]
    at_the_boundary.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    at_the_boundary.__annotations__ = {**command.__annotations__, "debug": "bool"}
    return at_the_boundary


class App(typer.Typer):
    """Typer's application, every command of which passes the one boundary (``bounded``)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        register = super().command(*args, **kwargs)
        return lambda command: register(bounded(command))


app = App(
    cls=Commands,
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Train, apply and inspect neural networks described in YAML specs.",
)

SKIP_BAD = typer.Option(
    False,
    "--skip-bad",
    help="Leave out images that cannot be read (image files, or the rows of a table's image "
    "column), and say how many.",
)

DEVICE_HELP = "cpu | gpu | gpu:N | cuda:N | auto (NNCLI_FAKE_GPU=1: gpu is the strict stand-in)"
DEVICE = typer.Option("cpu", "--device", autocompletion=complete_device, help=DEVICE_HELP + ".")
SPEC_DEVICE = typer.Option(
    None, "--device", autocompletion=complete_device, help=DEVICE_HELP + "; overrides the spec."
)


def _log_names(values: list[str]) -> list[str]:
    """``--log tensorboard --log mlflow`` or ``--log tensorboard,mlflow`` -> the names, checked."""
    from nncli.engine.registry import did_you_mean
    from nncli.spec.fields import LOG_BACKENDS

    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    for name in names:
        if name not in LOG_BACKENDS:
            hint = did_you_mean(name, list(LOG_BACKENDS))
            expected = ", ".join(LOG_BACKENDS)
            raise typer.BadParameter(f"expected one of {expected}, got {name!r}{hint}")
    return list(dict.fromkeys(names))


LOG = typer.Option(
    [],
    "--log",
    metavar="tensorboard|mlflow",
    callback=_log_names,
    help="Log every epoch to tensorboard or mlflow besides history.csv (repeatable, or a comma "
    "list: --log tensorboard,mlflow); replaces the spec's training.log.",
)


def log_overrides(names: list[str]) -> list[str]:
    """``--log``'s names as the ``--set`` override of ``training.log`` (none without it)."""
    return [f"training.log=[{', '.join(names)}]"] if names else []


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nncli {nncli.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """nncli: neural networks from YAML specs, on a small exact engine."""
