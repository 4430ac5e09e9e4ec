"""Commands that apply a checkpoint: `predict`, `generate`, `evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from nncli.cli.app import DEVICE, SKIP_BAD, app
from nncli.cli.usage import COUNT, NON_NEGATIVE, POSITIVE_INT
from nncli.cli.usage import note as _note
from nncli.cli.usage import warn as _warn


def _one_of(*choices: str) -> Any:
    """An option parser accepting ``choices`` only (exit 2 naming them before any work)."""

    def parse(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


PARTS = _one_of("train", "validation", "test", "all")  # evaluate's and report's --part

UNKNOWN = typer.Option(
    "error",
    "--unknown",
    parser=_one_of("error", "ignore"),
    help="error | ignore: what to do with categories not seen in training (ignore: all zeros).",
)


@app.command()
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by nncli train."),
    data: list[Path] = typer.Argument(..., help="Data file(s) to predict."),
    output: Path | None = typer.Option(
        None,
        "--output",
        help=(
            "Write the predictions to this file, in the format its suffix names (.csv, .tsv, "
            ".parquet, .feather, .jsonl, .json, .xlsx; default: CSV on stdout)."
        ),
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an --output file that is not an earlier predictions file."
    ),
    proba: bool = typer.Option(False, "--proba", help="Add a proba_<label> column per class."),
    keep: list[str] = typer.Option(
        [], "--keep", help="Copy this input column through (e.g. an id); repeatable."
    ),
    unknown: str = UNKNOWN,
    device: str = DEVICE,
    skip_bad: bool = SKIP_BAD,
    steps: int | None = typer.Option(
        None,
        "--steps",
        parser=POSITIVE_INT,
        help="Time-series models: forecast K steps, feeding each forecast back as the next row.",
    ),
) -> None:
    """Apply a checkpoint to new data (CSV files, or image folders and files): one row of
    predictions per input row or image."""
    from nncli.commands import apply, forecast
    from nncli.commands import predict as predict_command

    own = predict_command.is_predictions
    replaces = apply.check_table_output(output, [checkpoint, *data], force=force, own=own)
    predict_command.check_output_format(output)
    if steps is not None:
        frame = forecast.forecast_files(checkpoint, data, steps=steps, device=device)
        _write_table(frame, output, replaces)
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
    _write_table(frame, output, replaces)


def _write_table(frame: Any, output: Path | None, replaces: bool) -> None:
    """The predictions as CSV on stdout, or in ``output`` and said where they went (a replaced
    file is named as such, as ``-o`` tools do)."""
    from nncli.commands.predict import write_table

    if output is None:
        frame.to_csv(sys.stdout, index=False, lineterminator="\n")
        return
    rows = len(frame)
    write_table(frame, output)
    if replaces:
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
    device: str = DEVICE,
) -> None:
    """Sample text from a text model: the prompt, then --length symbols drawn one by one."""
    from nncli.commands import generate as generate_command

    text = generate_command.generate(
        checkpoint, prompt, length=length, temperature=temperature, seed=seed, device=device
    )
    typer.echo(text)


@app.command()
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by nncli train."),
    data: Path = typer.Argument(..., help="A labelled data file or image folder."),
    part: str | None = typer.Option(
        None,
        "--part",
        parser=PARTS,
        help="train | validation | test | all: which rows to score. Default: the held-out part "
        "(test, else validation) of the file the model was trained on, split as training did; "
        "all of any other file.",
    ),
    unknown: str = UNKNOWN,
    device: str = DEVICE,
    json_: bool = typer.Option(
        False, "--json", help="Print metrics, per-class results and confusion matrix as JSON."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Write the results as JSON to this file (tables still shown)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an --output file that is not an earlier evaluation."
    ),
    skip_bad: bool = SKIP_BAD,
) -> None:
    """Score a checkpoint on labelled data: loss, metrics, and per-class results."""
    import json

    from nncli.cli import report
    from nncli.commands import evaluate as evaluate_command
    from nncli.commands.apply import check_table_output

    own = evaluate_command.is_evaluation  # refused before any work:
    replaces = check_table_output(output, [checkpoint, data], force=force, own=own)
    result = evaluate_command.evaluate_file(
        checkpoint,
        data,
        device=device,
        skip_bad=skip_bad,
        warn=_warn,
        unknown=unknown,
        part=part,
    )
    _note(result["scored"])
    evaluation = evaluate_command.as_data(result, data)
    if output is not None:
        evaluate_command.write_json(evaluation, output)
        typer.echo(f"{'replaced' if replaces else 'wrote'} {output}", err=True)
    if json_:
        typer.echo(json.dumps(evaluation, indent=2))
        return
    out = report.console()
    which = "" if result["part"] == "all" else f", {result['part']} part"
    for table in report.evaluation_tables(result, f"{data}{which} ({result['rows']} rows)"):
        out.print(table)
