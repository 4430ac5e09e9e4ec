"""Commands for starting from what was learned before: `import` (PyTorch weights saved with
safetensors into a checkpoint)."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import app
from nncli.cli.usage import complete_set


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
