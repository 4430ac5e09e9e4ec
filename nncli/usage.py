"""Command-line usage: options checked as they are parsed, and click's usage errors (unknown
option, bad value, missing argument) printed as one ``nncli: error: ...`` line with exit 2, the
way every other error is printed, instead of click's usage panel.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

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
    instead of click's usage panel."""

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
