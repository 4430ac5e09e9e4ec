"""`nncli tune` and `nncli cv`: choosing hyperparameters (Optuna search, cross-validation)."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import LOG, SPEC_DEVICE, app, log_overrides
from nncli.cli.usage import NON_NEGATIVE, POSITIVE_INT, complete_set, note

SET = typer.Option(
    [], "--set", autocompletion=complete_set, help="Override a spec field: KEY=VALUE; repeatable."
)


def _sampler(value: str) -> str:
    from nncli.search.study import SAMPLERS

    if value not in SAMPLERS:
        raise typer.BadParameter(f"expected one of {', '.join(SAMPLERS)}, got {value!r}")
    return value


@app.command()
def tune(
    spec: Path = typer.Argument(..., help="The YAML spec with a search: section."),
    trials: int = typer.Option(..., "--trials", parser=POSITIVE_INT, help="Trials to add."),
    output: Path | None = typer.Option(
        None,
        "--output",
        help="Folder for study.db, trials.csv, best.yaml, best/ (default: runs/<name>-tune/).",
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Study database URL (default: sqlite:///DIR/study.db; "
        "postgresql://user@host/db to share it between machines).",
    ),
    study: str | None = typer.Option(None, "--study", help="Study name (default: spec name)."),
    workers: int = typer.Option(
        1, "--workers", parser=POSITIVE_INT, help="Processes on this machine sharing the study."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", parser=NON_NEGATIVE, help="Start no trial after S seconds."
    ),
    sampler: str = typer.Option("tpe", "--sampler", parser=_sampler, help="tpe | random | grid."),
    cv: int | None = typer.Option(
        None, "--cv", parser=POSITIVE_INT, help="Score each trial by the mean over K folds."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a trials.csv, best.yaml or best/ that tune did not write."
    ),
    set_: list[str] = SET,
    device: str | None = SPEC_DEVICE,
    log: list[str] = LOG,
    worker: int | None = typer.Option(None, "--worker", hidden=True),
) -> None:
    """Search the spec's search: space; continue the study on a second run."""
    from nncli.cli import report
    from nncli.commands import tune as tune_command

    out = report.console()
    shown: list = []

    def on_start(keys: list[str], monitor: str) -> None:
        alone = worker is None and workers == 1  # workers print a line per trial
        shown.append(report.TrialReport(out, keys, monitor, live=alone))

    try:
        result = tune_command.tune(
            spec,
            trials,
            output=output,
            storage=storage,
            study=study,
            workers=workers,
            timeout=timeout,
            sampler=sampler,
            cv=cv,
            overrides=list(set_) + log_overrides(log),
            device=device,
            worker=worker,
            on_start=on_start,
            on_trial=lambda row: shown[0](row),
            force=force,
            note=note,
        )
    finally:
        for trial_report in shown:
            trial_report.stop()
    if worker is None:
        for line in report.tune_summary(result):
            out.print(line)


@app.command()
def cv(
    spec: Path = typer.Argument(..., help="The YAML spec to cross-validate."),
    folds: int = typer.Option(..., "--folds", parser=POSITIVE_INT, help="K, the folds."),
    output: Path | None = typer.Option(
        None, "--output", help="Folder for cv.csv (default: runs/<name>-cv/)."
    ),
    workers: int = typer.Option(
        1, "--workers", parser=POSITIVE_INT, help="Folds trained at once, in processes."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing cv.csv."),
    set_: list[str] = SET,
    device: str | None = SPEC_DEVICE,
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    log: list[str] = LOG,
    fold: list[int] = typer.Option([], "--fold", hidden=True),
) -> None:
    """K-fold cross-validation: stratified for classes, an expanding window for time series."""
    from nncli.cli import report
    from nncli.commands import cv as cv_command

    out = report.console()
    on_fold = None if quiet else (lambda f: out.print(report.fold_line(f)))
    result = cv_command.cv(
        spec,
        folds,
        output=output,
        workers=workers,
        force=force,
        overrides=list(set_) + log_overrides(log),
        device=device,
        on_fold=on_fold,
        only=fold,
        note=note,
    )
    if not fold and not quiet:
        out.print(report.cv_table(result))
        for path in result.files:
            out.print(f"saved {path}")
