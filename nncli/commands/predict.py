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
    """The table to ``output`` in the format its suffix names (CSV, Parquet, Feather, JSON
    lines, JSON, Excel: ``data.readers``), written atomically (checked before the work by
    ``check_output_format`` and ``apply.check_table_output`` with ``is_predictions``; the
    command line writes a table without ``--output`` to stdout as CSV)."""
    from nncli.checkpoint.folder import write_atomic
    from nncli.data.readers import table_bytes

    write_atomic(Path(output), table_bytes(frame, Path(output)))


def check_output_format(output: Path | None) -> None:
    """SpecError (exit 2) for an ``--output`` whose suffix names no table format nncli writes,
    or whose library is missing, before any work."""
    from nncli.data.readers import writer_of

    if output is not None:
        writer_of(Path(output))


def is_predictions(path: Path) -> bool:
    """Whether ``path`` is an earlier predictions file, which ``--output`` replaces without
    ``--force``: a CSV file whose header ends with the columns predict writes last, a
    ``prediction`` or ``prediction_<target>`` block, then any ``proba_<label>`` columns (a
    file of another format: the columns its reader finds)."""
    from nncli.data.readers import format_of, read_table
    from nncli.errors import NncliError

    try:
        if format_of(path) is not None:
            header = [str(name) for name in read_table(Path(path)).columns]
        else:
            with open(path, encoding="utf-8", newline="") as file:
                header = next(csv.reader([file.readline(MAX_HEADER)]), [])
    except (OSError, UnicodeDecodeError, csv.Error, NncliError):
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
