"""The command line: each command parses, calls one library function, renders, and maps an
``NncliError`` to its exit code with one line on stderr (a traceback only with ``--debug``).

Heavy modules (numpy, pandas, h5py) are imported inside the commands so ``nncli --help`` is fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

import nncli
from nncli.usage import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE_INT,
    Commands,
    complete_device,
    complete_set,
    run,
)
from nncli.usage import note as _note
from nncli.usage import terminated as _terminated
from nncli.usage import warn as _warn

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
    device: str | None = typer.Option(
        None,
        "--device",
        autocompletion=complete_device,
        help="cpu | gpu | auto (overrides the spec).",
    ),
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


@app.command()
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by nncli train."),
    data: list[Path] = typer.Argument(..., help="Data file(s) to predict."),
    output: Path | None = typer.Option(
        None, "--output", help="Write the predictions to this CSV file (default: stdout)."
    ),
    proba: bool = typer.Option(False, "--proba", help="Add a proba_<label> column per class."),
    keep: list[str] = typer.Option(
        [], "--keep", help="Copy this input column through (e.g. an id); repeatable."
    ),
    unknown: str = typer.Option(
        "error",
        "--unknown",
        help="error | ignore: what to do with categories not seen in training (ignore: all zeros).",
    ),
    device: str = typer.Option(
        "cpu", "--device", autocompletion=complete_device, help="cpu | gpu | auto."
    ),
    skip_bad: bool = SKIP_BAD,
    steps: int | None = typer.Option(
        None,
        "--steps",
        parser=POSITIVE_INT,
        help="Time-series models: forecast K steps, feeding each forecast back as the next row.",
    ),
    debug: bool = DEBUG,
) -> None:
    """Apply a checkpoint to new data (CSV files, or image folders and files): one row of
    predictions per input row or image."""

    def action() -> None:
        from nncli.commands import apply, forecast
        from nncli.commands import predict as predict_command

        apply.check_table_output(output, [checkpoint, *data])
        if steps is not None:
            frame = forecast.forecast_files(checkpoint, data, steps=steps, device=device)
            _write_table(frame, output)
            return
        frame = predict_command.predict_files(
            checkpoint,
            data,
            proba=proba,
            keep=keep,
            unknown=unknown,
            device=device,
            skip_bad=skip_bad,
            warn=_warn,
        )
        _write_table(frame, output)

    run(action, debug)


def _write_table(frame: Any, output: Path | None) -> None:
    """The predictions as CSV on stdout, or in ``output`` and said where they went (a replaced
    file is named as such, as ``-o`` tools do)."""
    from nncli.commands.predict import write_table

    if output is None:
        frame.to_csv(sys.stdout, index=False, lineterminator="\n")
        return
    rows = len(frame)
    if write_table(frame, output):
        typer.echo(f"replaced {output}: wrote {rows} predictions", err=True)
    else:
        typer.echo(f"wrote {rows} predictions to {output}", err=True)


@app.command()
def generate(
    checkpoint: Path = typer.Argument(..., help="A text model written by nncli train."),
    prompt: str = typer.Option(
        ..., "--prompt", help="Text to start from; every symbol must be in the model's vocabulary."
    ),
    length: int = typer.Option(
        200, "--length", parser=COUNT, help="Symbols (characters or words) to add."
    ),
    temperature: float = typer.Option(
        1.0,
        "--temperature",
        parser=NON_NEGATIVE,
        help="0: always the most likely symbol; below 1 sticks to likely symbols, above 1 varies.",
    ),
    seed: int = typer.Option(
        0, "--seed", parser=COUNT, help="Seeds the sampling: the same seed, the same text."
    ),
    device: str = typer.Option(
        "cpu", "--device", autocompletion=complete_device, help="cpu | gpu | auto."
    ),
    debug: bool = DEBUG,
) -> None:
    """Sample text from a text model: the prompt, then --length symbols drawn one by one."""

    def action() -> None:
        from nncli.commands import generate as generate_command

        text = generate_command.generate(
            checkpoint, prompt, length=length, temperature=temperature, seed=seed, device=device
        )
        typer.echo(text)

    run(action, debug)


@app.command()
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by nncli train."),
    data: Path = typer.Argument(..., help="A labelled data file or image folder."),
    device: str = typer.Option(
        "cpu", "--device", autocompletion=complete_device, help="cpu | gpu | auto."
    ),
    json_: bool = typer.Option(
        False, "--json", help="Print metrics, per-class results and confusion matrix as JSON."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Write the results as JSON to this file (tables still shown)."
    ),
    skip_bad: bool = SKIP_BAD,
    debug: bool = DEBUG,
) -> None:
    """Score a checkpoint on labelled data: loss, metrics, and per-class results."""

    def action() -> None:
        import json

        from nncli import report
        from nncli.commands import evaluate as evaluate_command
        from nncli.commands.apply import check_table_output

        check_table_output(output, [checkpoint, data])  # refused before any work
        result = evaluate_command.evaluate_file(
            checkpoint, data, device=device, skip_bad=skip_bad, warn=_warn
        )
        evaluation = evaluate_command.as_data(result, data)
        if output is not None:
            replaced = evaluate_command.write_json(evaluation, output, [checkpoint, data])
            typer.echo(f"{'replaced' if replaced else 'wrote'} {output}", err=True)
        if json_:
            typer.echo(json.dumps(evaluation, indent=2))
            return
        out = report.console()
        for table in report.evaluation_tables(result, f"{data} ({result['rows']} rows)"):
            out.print(table)

    run(action, debug)


@app.command()
def inspect(
    target: Path = typer.Argument(..., help="A spec (.yaml) or a checkpoint (.h5)."),
    data: Path | None = typer.Option(
        None, "--data", help="A data file whose header gives the input shape (specs only)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    debug: bool = DEBUG,
) -> None:
    """Show every layer's output shape and parameter count."""

    def action() -> None:
        import json

        from nncli import report
        from nncli.commands import inspect as inspect_command

        summary = inspect_command.inspect(target, data)
        if json_:
            typer.echo(json.dumps(summary, indent=2))
            return
        out = report.console()
        out.print(report.summary_table(summary["layers"], summary["title"], summary["footer"]))
        for warning in summary["warnings"]:
            typer.echo(f"nncli: warning: {warning}", err=True)

    run(action, debug)


@app.command()
def validate(
    spec: Path = typer.Argument(..., help="The YAML spec to check."),
    set_: list[str] = typer.Option(
        [], "--set", autocompletion=complete_set, help="Override a spec field: KEY=VALUE."
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        autocompletion=complete_device,
        help="cpu | gpu | auto (overrides the spec).",
    ),
    debug: bool = DEBUG,
) -> None:
    """Train without the training: every check train makes before its first batch (spec, data,
    input shape, early-stopping monitor, device), then one forward and backward pass on two
    rows."""

    def action() -> None:
        from nncli.commands import validate as validate_command

        for line in validate_command.validate(spec, list(set_), device=device):
            typer.echo(line)
        typer.echo("OK")

    run(action, debug)


@app.command()
def gradcheck(
    spec: Path = typer.Argument(..., help="The YAML spec whose network to check."),
    data: Path | None = typer.Option(None, "--data", help="Take the rows from this data file."),
    rows: int = typer.Option(4, "--rows", parser=POSITIVE_INT, help="Real rows to check on."),
    set_: list[str] = typer.Option(
        [], "--set", autocompletion=complete_set, help="Override a spec field: KEY=VALUE."
    ),
    debug: bool = DEBUG,
) -> None:
    """Compare every parameter's gradient with central differences, in float64 on a few real
    rows; exit 1 when any relative error is over 1e-5."""

    def action() -> bool:
        from nncli import report
        from nncli.commands import gradcheck as gradcheck_command

        checked = gradcheck_command.gradcheck(spec, data=data, rows=rows, overrides=list(set_))
        report.console().print(report.gradcheck_table(checked))
        return all(p["ok"] for p in checked["parameters"])

    if not run(action, debug):
        raise typer.Exit(1)


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
    debug: bool = DEBUG,
) -> None:
    """Write a checkpoint as an ONNX model: scaling inside, outputs as predict gives them."""

    def action() -> None:
        from nncli.commands.export import export_checkpoint

        done = export_checkpoint(checkpoint, output, opset=opset, fmt=format_, force=force)
        verb = "replaced" if done["replaced"] else "wrote"
        typer.echo(f"{verb} {output} (ONNX opset {done['opset']}, {done['nodes']} nodes)", err=True)

    run(action, debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
