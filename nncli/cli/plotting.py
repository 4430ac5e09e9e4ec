"""Pictures of a checkpoint: `plot` (learning curves and a confusion matrix, filters, feature
maps, the graph of layers, saliency) and `report` (one HTML page of one or more runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import DEVICE, app
from nncli.cli.applying import PARTS
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
    saliency: Path | None = typer.Option(
        None,
        "--saliency",
        help="Draw this image's saliency: |d predicted class / d pixel| as a heat map over it.",
    ),
) -> None:
    """Draw a checkpoint as a PNG: learning curves (best epoch, early stop, learning rate), with
    --data a confusion matrix; or --filters; or --activations IMAGE; or --graph; or --saliency
    IMAGE."""
    from nncli.commands import plot as plot_command

    done = plot_command.plot(
        checkpoint, data=data, output=output, force=force, filters=filters, layer=layer,
        activations=activations, graph=graph, saliency=saliency, warn=_warn,
    )  # fmt: skip
    verb = "replaced" if done["replaced"] else "wrote"
    width, height = done["size"]
    typer.echo(f"{verb} {done['path']} ({width}x{height} px)", err=True)


@app.command()
def report(
    checkpoints: list[Path] = typer.Argument(
        ..., help="One or more checkpoints written by nncli train (several: side by side)."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Labelled data (file or image folder): metrics, curves, calibration, importance.",
    ),
    output: Path | None = typer.Option(
        None, "--output", help="The HTML file to write (default: report.html beside the first)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
    part: str | None = typer.Option(
        None,
        "--part",
        parser=PARTS,
        help="train | validation | test | all: the rows of --data scored, as evaluate --part.",
    ),
    device: str = DEVICE,
) -> None:
    """Write one self-contained HTML page of one or more runs: summary, layers, learning
    curves; with --data the metrics, per-class table, confusion matrix, ROC, precision-recall,
    calibration, the most confidently wrong examples and permutation importance."""
    from nncli.commands import report as report_command

    done = report_command.report(
        checkpoints,
        data=data,
        output=output,
        force=force,
        part=part,
        device=device,
        warn=_warn,
    )
    verb = "replaced" if done["replaced"] else "wrote"
    typer.echo(f"{verb} {done['path']} ({len(done['sections'])} sections)", err=True)
