"""``nncli predict``: one row of predictions per input row or image, from a checkpoint and the
encoder it stores (``nncli.commands.forecast`` rolls time-series forecasts for ``--steps``)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nncli.commands.predictor import Predictor
from nncli.errors import SpecError

MAX_HEADER = 1 << 20  # characters of a header line read to recognise a predictions file


def predict_files(
    checkpoint: Path,
    paths: list[Path],
    *,
    proba: bool = False,
    keep: list[str] = (),
    unknown: str = "error",
    device: str = "cpu",
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Any:
    """A table: the ``--keep`` columns, ``prediction`` and, with ``proba``, ``proba_<label>``.
    ``skip_bad``: leave out unreadable images, and tell ``warn`` how many."""
    if unknown not in ("error", "ignore"):
        raise SpecError(f"expected error or ignore, got {unknown!r}", field="--unknown")
    predictor = Predictor.load(checkpoint, device)
    return predictor.predict_files(
        paths, proba=proba, keep=keep, unknown=unknown, skip_bad=skip_bad, warn=warn
    )


def write_table(frame: Any, output: Path) -> None:
    """The table as CSV to ``output``, written atomically (checked before the work by
    ``apply.check_table_output`` with ``is_predictions``; the command line writes a table
    without ``--output`` to stdout)."""
    from nncli.checkpoint.folder import write_text_atomic

    write_text_atomic(Path(output), frame.to_csv(index=False, lineterminator="\n"))


def is_predictions(path: Path) -> bool:
    """Whether ``path`` is an earlier predictions file, which ``--output`` replaces without
    ``--force``: a CSV file whose header ends with the columns predict writes last, a
    ``prediction`` or ``prediction_<target>`` block, then any ``proba_<label>`` columns."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            header = next(csv.reader([file.readline(MAX_HEADER)]), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    end = len(header)
    while end and header[end - 1].startswith("proba_"):
        end -= 1
    start = end
    while start and (
        header[start - 1] == "prediction" or header[start - 1].startswith("prediction_")
    ):
        start -= 1
    return start < end
