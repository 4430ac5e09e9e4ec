"""Commands that look at a spec or a checkpoint: `inspect`, `validate`, `gradcheck`, `export`."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import DEVICE, SKIP_BAD, SPEC_DEVICE, app
from nncli.cli.usage import POSITIVE_INT, complete_set
from nncli.cli.usage import note as _note
from nncli.cli.usage import warn as _warn


@app.command()
def inspect(
    target: Path = typer.Argument(..., help="A spec (.yaml) or a checkpoint (.h5)."),
    data: Path | None = typer.Option(
        None, "--data", help="A data file whose header gives the input shape (specs only)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Show every layer's output shape and parameter count."""
    import json

    from nncli.cli import report
    from nncli.commands import inspect as inspect_command

    summary = inspect_command.inspect(target, data)
    if json_:
        typer.echo(json.dumps(summary, indent=2))
        return
    out = report.console()
    table = report.summary_table(
        summary["layers"], summary["title"], summary["footer"], inputs=not summary["stack"]
    )
    out.print(table)
    for warning in summary["warnings"]:
        typer.echo(f"nncli: warning: {warning}", err=True)


@app.command()
def validate(
    spec: Path = typer.Argument(..., help="The YAML spec to check."),
    set_: list[str] = typer.Option(
        [], "--set", autocompletion=complete_set, help="Override a spec field: KEY=VALUE."
    ),
    device: str | None = SPEC_DEVICE,
    skip_bad: bool = SKIP_BAD,
) -> None:
    """Train without the training: every check train makes before its first batch (spec, data,
    input shape, early-stopping monitor, device), then one forward and backward pass on two
    rows."""
    from nncli.commands import validate as validate_command

    checked = validate_command.validate(
        spec, list(set_), device=device, note=_note, skip_bad=skip_bad, warn=_warn
    )
    for line in checked:
        typer.echo(line)
    typer.echo("OK")


@app.command()
def gradcheck(
    spec: Path = typer.Argument(..., help="The YAML spec whose network to check."),
    data: Path | None = typer.Option(None, "--data", help="Take the rows from this data file."),
    rows: int = typer.Option(4, "--rows", parser=POSITIVE_INT, help="Real rows to check on."),
    set_: list[str] = typer.Option(
        [], "--set", autocompletion=complete_set, help="Override a spec field: KEY=VALUE."
    ),
    device: str = DEVICE,
) -> int:
    """Compare every parameter's gradient with central differences, in float64 on a few real
    rows; exit 1 when any relative error is over 1e-5."""
    from nncli.cli import report
    from nncli.commands import gradcheck as gradcheck_command

    checked = gradcheck_command.gradcheck(
        spec, data=data, rows=rows, overrides=list(set_), device=device
    )
    report.console().print(report.gradcheck_table(checked))
    return 0 if all(p["ok"] for p in checked["parameters"]) else 1


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by nncli train."),
    output: Path = typer.Option(..., "--output", help="The file to write, e.g. model.onnx."),
    opset: int | None = typer.Option(
        None, "--opset", parser=POSITIVE_INT, help="ONNX opset (default 17, the oldest usable)."
    ),
    format_: str | None = typer.Option(
        None, "--format", help="onnx (default: from the output's suffix)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Write a checkpoint as an ONNX model: scaling inside, outputs as predict gives them."""
    from nncli.commands.export import export_checkpoint

    done = export_checkpoint(checkpoint, output, opset=opset, fmt=format_, force=force)
    verb = "replaced" if done["replaced"] else "wrote"
    typer.echo(f"{verb} {output} (ONNX opset {done['opset']}, {done['nodes']} nodes)", err=True)
