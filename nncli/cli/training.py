"""`nncli train`: parse the options, train, render the progress and the summary."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import typer

from nncli.cli.app import LOG, SKIP_BAD, SPEC_DEVICE, app, log_overrides
from nncli.cli.usage import POSITIVE_INT, complete_set, told
from nncli.cli.usage import note as _note
from nncli.cli.usage import warn as _warn


@app.command()
def train(
    ctx: typer.Context,
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
        None,
        "--output",
        help="Checkpoint path, relative to the current folder (default: the spec's output:, "
        "relative to the spec's folder, else runs/<name>/model.h5 here).",
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
    workers: int | None = typer.Option(
        None,
        "--workers",
        parser=POSITIVE_INT,
        help="Train as K processes on this machine (mpiexec from the mpi extra); each takes "
        "a share of every batch and the result equals one process's up to rounding (float64: "
        "the same weights; float32: within rounding, so early stopping may pick another epoch).",
    ),
    skip_bad: bool = SKIP_BAD,
    log: list[str] = LOG,
) -> int | None:
    """Train the network a spec describes and write its checkpoint (under mpiexec or srun, as
    one of several processes sharing each batch)."""
    debug = ctx.params["debug"]  # the app's one --debug (cli/app.py)
    overrides = list(set_) + ([f"training.epochs={epochs}"] if epochs is not None else [])
    overrides += log_overrides(log)
    if workers is not None:
        return _launch(workers, debug, (spec, overrides, output, resume, device))
    from nncli.training import parallel

    world = parallel.world()
    options = dict(output=output, resume=resume, force=force, smoke=smoke, device=device)
    options.update(overrides=overrides, skip_bad=skip_bad)
    action = partial(_train, spec, quiet or not world.lead, world, options)
    if not world.parallel:
        return action()
    code = parallel.run_rank(world, action, tell=partial(told, debug=debug))
    if code:  # the error's line stands alone (rank 0 said it; the others say nothing)
        raise typer.Exit(code)
    return None


def _train(spec: Path, quiet: bool, world: Any, options: dict[str, Any]) -> None:
    """Load the spec, train with the progress report, print the summary (rank 0 alone prints
    when several processes share the run)."""
    from nncli import spec as spec_module
    from nncli.cli import report
    from nncli.commands import train as train_command

    loaded = spec_module.load(spec, options["overrides"])
    if loaded.search is not None and world.lead:
        from nncli.spec.search import ignored

        _note(ignored("train"))
    out = report.console()
    progress = report.TrainingReport(out, quiet=quiet)
    result = train_command.train(
        loaded,
        callbacks=[progress],
        warn=_warn if world.lead else None,  # on stderr even with --quiet: data was left out
        on_resolved=None if quiet else partial(_resolved, out, loaded),
        note=_note if world.lead else None,
        world=world,
        **options,
    )
    if not quiet:
        for line in report.train_summary(result):
            out.print(line)


def _resolved(out: Any, spec: Any, ready: Any) -> None:
    """The device line, and where each layer's weights came from (``model.init_from``)."""
    out.print(ready.device)
    for start in ready.started:
        out.print(start.line(spec.model.init_from), highlight=False, markup=False)


def _launch(workers: int, debug: bool, run_args: tuple) -> int:
    """``--workers K``: this command again as K MPI processes -> the job's exit code (a
    killed rank: one line naming it and how to resume, ``run_args`` the run's spec, overrides,
    output, resume and device)."""
    import sys

    from nncli.commands.launch import launch, resume_hint

    args = sys.argv[sys.argv.index("train") + 1 :] if "train" in sys.argv else []
    options = dict(relay=_relay, after_kill=resume_hint(*run_args), debug=debug)
    return launch(args, workers, **options)


def _relay(line: str, err: bool) -> None:
    """A line of the job's stdout or stderr, passed on as it came."""
    typer.echo(line, err=err, nl=False)
