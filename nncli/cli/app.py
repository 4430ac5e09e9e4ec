"""The Typer application every command registers on, the options several commands share, and
``nncli --version``. Each group of commands lives in its own module of this package."""

from __future__ import annotations

import typer

import nncli
from nncli.cli.usage import Commands, complete_device

app = typer.Typer(
    cls=Commands,
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Train, apply and inspect neural networks described in YAML specs.",
)

DEBUG = typer.Option(False, "--debug", help="Show the full traceback on errors.")
SKIP_BAD = typer.Option(
    False, "--skip-bad", help="Leave out image files that cannot be read, and say how many."
)

DEVICE_HELP = "cpu | gpu | gpu:N | cuda:N | auto (NNCLI_FAKE_GPU=1: gpu is the strict stand-in)"
DEVICE = typer.Option("cpu", "--device", autocompletion=complete_device, help=DEVICE_HELP + ".")
SPEC_DEVICE = typer.Option(
    None, "--device", autocompletion=complete_device, help=DEVICE_HELP + "; overrides the spec."
)


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
