"""``nncli predict``: one row of predictions per input row or image, from a checkpoint and the
encoder it stores (``nncli.commands.forecast`` rolls time-series forecasts for ``--steps``)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nncli.checkpoint import model as model_io
from nncli.commands.apply import (
    all_skipped,
    check_input_kind,
    model_inputs,
    read_data,
    stored_encoder,
    warn_skipped,
)
from nncli.errors import DataError, SpecError
from nncli.training.guards import require_finite
from nncli.training.loop import predict

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
    import pandas as pd

    if unknown not in ("error", "ignore"):
        raise SpecError(f"expected error or ignore, got {unknown!r}", field="--unknown")
    model = model_io.load(checkpoint, device)
    encoder = stored_encoder(model)
    tables, skipped = [], []
    for path in paths:
        check_input_kind(model, encoder, path)
        frame = read_data(encoder, path, skip_bad, warn, skipped)
        if skipped and not len(frame):
            continue  # every image of this path left out; counted in the warning
        missing = [c for c in keep if c not in frame.columns]
        if missing:
            raise DataError(f"--keep column {missing[0]!r} is not in the file", where=str(path))
        x, mask = model_inputs(encoder, frame, unknown)
        try:
            kept = encoder.kept_columns(frame, list(keep), len(x))
        except DataError as exc:
            exc.where = exc.where or str(path)
            raise
        require_finite(x, "the inputs", str(path))  # the encoders name the column; a net
        output = predict(model.net, x, mask=mask)
        columns = dict(encoder.id_columns(frame))
        columns.update(kept)
        if mask is None:
            columns.update(encoder.decode(output, proba=proba))
        else:
            columns.update(encoder.decode(output, proba=proba, mask=mask))
        tables.append(pd.DataFrame(columns))
    if not tables:
        raise all_skipped(skipped, paths)
    warn_skipped(skipped, warn)
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


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
