"""What ``nncli tune`` writes into its folder and how a later tune knows its own files:
``trials.csv`` (a row a trial), ``best.yaml`` (its first line names the trial), ``best/`` (the
best trial's run files and ``trial.txt``), ``study.db`` (the SQLite study, by default)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from nncli.checkpoint import folder as outputs
from nncli.checkpoint.outputs import check_output
from nncli.errors import SpecError

BEST = "best"  # DIR/best/model.h5: the best trial's checkpoint
BEST_HEADER = "# nncli tune: trial "  # best.yaml's first line: how a later tune knows it
SQLITE = b"SQLite format 3\x00"  # the first bytes of every SQLite database (study.db)


def check_outputs(out: Path, inputs: list, force: bool, own_study: bool) -> None:
    """The one output rule for what tune writes: its own earlier files are replaced, anything
    else needs ``force``; ``study.db`` (when it holds the study) must be a SQLite database."""
    check_output(out / "trials.csv", inputs, force=force, own=is_trials, makes_folder=True)
    check_output(out / "best.yaml", inputs, force=force, own=is_best, spec=True, makes_folder=True)
    best, study = out / BEST, out / "study.db"
    if os.path.lexists(best) and not best.is_dir():
        raise SpecError(
            f"{best} is not a folder; tune keeps the best trial there", field="--output"
        )
    if best.is_dir() and any(best.iterdir()) and best_trial(out) is None and not force:
        raise SpecError(
            f"{best} holds files tune did not write (no trial.txt names a trial); pass --force "
            "to replace them or choose another --output",
            field="--output",
        )
    if own_study and os.path.lexists(study) and not outputs.starts_with(study, SQLITE):
        raise SpecError(
            f"{study} is not a SQLite database (tune keeps its study there); choose another "
            "--output or --storage",
            field="--output",
        )


def is_best(path: Path) -> bool:
    """A ``best.yaml`` tune wrote: its first line says whose trial it holds."""
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.readline(1 << 20).startswith(BEST_HEADER)


def is_trials(path: Path) -> bool:
    """A ``trials.csv`` tune wrote: its header starts ``number,state,value`` and ends
    ``epochs,seconds``."""
    with open(path, encoding="utf-8", errors="replace") as file:
        header = file.readline(1 << 20).rstrip("\n")
    return header.startswith("number,state,value,") and header.endswith(",epochs,seconds")


def promote(folder: Path, best: Path, number: int) -> None:
    """A trial's run files replace the best ones, each file by one rename; ``trial.txt`` last
    says whose they are."""
    best.mkdir(exist_ok=True)
    (best / "trial.txt").unlink(missing_ok=True)
    for file in folder.iterdir():
        if not file.name.startswith(".") and file.is_file():
            os.replace(file, best / file.name)
    outputs.write_text_atomic(best / "trial.txt", f"{number}\n")


def best_trial(out: Path) -> int | None:
    """The trial whose checkpoint ``DIR/best/model.h5`` is (``DIR/best/trial.txt``)."""
    try:
        return int((out / BEST / "trial.txt").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def trials_csv(rows: list[dict[str, Any]], keys: list[str]) -> str:
    """number, state, value, each parameter, epochs, seconds: one row per trial."""
    columns = ["number", "state", "value", *keys, "epochs", "seconds"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return text.getvalue()
