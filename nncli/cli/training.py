"""`nncli train`: parse the options, train, render the progress and the summary."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import DEBUG, SKIP_BAD, SPEC_DEVICE, app
from nncli.usage import POSITIVE_INT, complete_set, run
from nncli.usage import note as _note
from nncli.usage import terminated as _terminated
from nncli.usage import warn as _warn


@app.command()
def train(
    spec: Path = typer.Argument(..., help="The YAML spec to train."),
    set_: list[str] = typer.Option(
        [],
        "--set",
        autocompletion=complete_set,
        help="Override a spec field: KEY=VALUE (e.g. model.layers[1].units=128); repeatable.",
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", parser=POSITIVE_INT, help="Override training.epochs."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Checkpoint path (default: the spec's output, runs/<name>/model.h5)."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Continue from this checkpoint."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
    smoke: bool = typer.Option(
        False,
        "--smoke",
        help="CI smoke run: at most 64 rows, one "
        "epoch, a temporary folder, then a predict round trip.",
    ),
    device: str | None = SPEC_DEVICE,
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors and warnings."),
    skip_bad: bool = SKIP_BAD,
    debug: bool = DEBUG,
) -> None:
    """Train the network a spec describes and write its checkpoint."""

    def action() -> None:
        import signal

        from nncli import report
        from nncli import spec as spec_module
        from nncli.commands import train as train_command

        signal.signal(signal.SIGTERM, _terminated)

        overrides = list(set_) + ([f"training.epochs={epochs}"] if epochs is not None else [])
        loaded = spec_module.load(spec, overrides)
        if loaded.search is not None:
            from nncli.spec.search import ignored

            _note(ignored("train"))
        out = report.console()
        progress = report.TrainingReport(out, quiet=quiet)
        result = train_command.train(
            loaded,
            output=output,
            resume=resume,
            force=force,
            smoke=smoke,
            device=device,
            callbacks=[progress],
            overrides=overrides,
            skip_bad=skip_bad,
            warn=_warn,  # on stderr even with --quiet: data was left out
            on_resolved=None if quiet else lambda ready: out.print(ready.device),
            note=_note,
        )
        if not quiet:
            for line in report.train_summary(result):
                out.print(line)

    run(action, debug)
