"""`nncli init`: a commented starter spec from a data file or folder."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import SKIP_BAD, app
from nncli.cli.usage import note, warn


@app.command()
def init(
    data: Path = typer.Argument(
        ..., help="A CSV file, an image folder (one sub-folder per class) or a text file."
    ),
    target: str | None = typer.Option(
        None, "--target", help="The column to predict (default: the last one). Not for images."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="The spec to write (default: <data stem>.yaml here)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing spec."),
    skip_bad: bool = SKIP_BAD,
) -> None:
    """Write a commented starter spec for DATA that trains as it is: the target, the task, the
    columns, missing values, a small network, the loss, adam and early stopping."""
    from nncli.commands.init import init as init_command

    started = init_command(data, target=target, output=output, force=force, skip_bad=skip_bad)
    for line in started.warnings:
        warn(line)
    for line in started.notes:
        note(line)
    verb = "replaced" if started.replaced else "wrote"
    typer.echo(f"{verb} {started.output}: {started.summary}")
    typer.echo(f"checked as nncli validate does; train it with: {started.train_command}")
