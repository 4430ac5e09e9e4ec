"""Commands for starting well: `import` (PyTorch weights saved with safetensors into a
checkpoint) and `lr-find` (the learning-rate range test)."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import SPEC_DEVICE, app
from nncli.cli.usage import POSITIVE_INT, complete_set


@app.command(name="import")
def import_(
    weights: Path = typer.Argument(..., help="A PyTorch state_dict saved with safetensors."),
    spec: Path = typer.Option(..., "--spec", help="The spec whose layers the weights fill."),
    output: Path = typer.Option(..., "--output", help="The checkpoint to write (.h5)."),
    set_: list[str] = typer.Option(
        [], "--set", autocompletion=complete_set, help="Override a spec field: KEY=VALUE."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    """Turn PyTorch weights (a safetensors file) into an nncli checkpoint of a spec whose
    layers match them; the spec's data is read to fit the encoder, as train would."""
    from nncli import spec as spec_module
    from nncli.cli import report
    from nncli.commands.import_weights import import_weights

    loaded = spec_module.load(spec, list(set_))
    result = import_weights(weights, loaded, output, force=force)
    out = report.console()
    out.print(report.import_table(result.table), highlight=False)
    for name in result.skipped:
        out.print(f"left out: {name} (PyTorch's batchnorm counter)", highlight=False)
    out.print(f"wrote {result.output}", highlight=False)


@app.command(name="lr-find")
def lr_find(
    spec: Path = typer.Argument(..., help="The YAML spec whose network and optimizer to test."),
    steps: int = typer.Option(
        100, "--steps", parser=POSITIVE_INT, help="At most this many batches (default 100)."
    ),
    min_lr: float = typer.Option(1e-7, "--min-lr", help="The first step's rate."),
    max_lr: float = typer.Option(10.0, "--max-lr", help="The last step's rate."),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", help="Where lr_find.csv and .png go (default runs/<name>-lr-find/)."
    ),
    set_: list[str] = typer.Option(
        [], "--set", autocompletion=complete_set, help="Override a spec field: KEY=VALUE."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite earlier outputs."),
    device: str | None = SPEC_DEVICE,
) -> None:
    """Smith's learning-rate range test: the rate grows exponentially batch after batch until
    the smoothed loss explodes; prints the rate where it fell fastest as the --set to use."""
    from nncli import spec as spec_module
    from nncli.commands import lr_find as lr_find_command

    loaded = spec_module.load(spec, list(set_))
    result = lr_find_command.lr_find(
        loaded, steps=steps, low=min_lr, high=max_lr, output_dir=output_dir, force=force,
        device=device,
    )  # fmt: skip
    test = result.test
    typer.echo(
        f"{len(test.rates)} steps from {test.low:.3g} to {test.rates[-1]:.3g} "
        f"({test.stopped}); smoothed loss lowest {min(test.smoothed):.4g}"
    )
    typer.echo(f"suggested learning rate: {test.suggestion:.3g} (steepest descent)")
    typer.echo(f"train with: nncli train {spec} --set {result.setting}")
    for path in result.files:
        typer.echo(f"wrote {path}")
    if result.no_picture:
        typer.echo(f"nncli: note: {result.no_picture}", err=True)
