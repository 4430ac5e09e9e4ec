"""Pictures of a checkpoint: `plot` (learning curves and a confusion matrix, filters, feature
maps, the graph of layers)."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import app
from nncli.cli.usage import COUNT
from nncli.cli.usage import warn as _warn


@app.command()
def plot(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by nncli train."),
    data: Path | None = typer.Option(
        None, "--data", help="Labelled data (file or image folder): add a confusion matrix."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="The PNG to write (default: beside the checkpoint, model.png)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
    filters: bool = typer.Option(
        False, "--filters", help="Draw a conv layer's learned filters, one tile per filter."
    ),
    layer: int | None = typer.Option(
        None,
        "--layer",
        parser=COUNT,
        help="With --filters: the layer's index (default: the first conv).",
    ),
    activations: Path | None = typer.Option(
        None, "--activations", help="Draw this image's feature maps through each conv2d layer."
    ),
    graph: bool = typer.Option(
        False, "--graph", help="Draw the layers as boxes and the arrows between them."
    ),
) -> None:
    """Draw a checkpoint as a PNG: learning curves (best epoch, early stop, learning rate), with
    --data a confusion matrix; or --filters; or --activations IMAGE; or --graph."""
    from nncli.commands import plot as plot_command

    done = plot_command.plot(
        checkpoint, data=data, output=output, force=force, filters=filters, layer=layer,
        activations=activations, graph=graph, warn=_warn,
    )  # fmt: skip
    verb = "replaced" if done["replaced"] else "wrote"
    width, height = done["size"]
    typer.echo(f"{verb} {done['path']} ({width}x{height} px)", err=True)
