"""``nncli predict``: one row of predictions per input row or image, from a checkpoint and the
encoder it stores (``nncli.commands.forecast`` rolls time-series forecasts for ``--steps``)."""

from __future__ import annotations

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
from nncli.errors import CheckpointError, DataError, SpecError
from nncli.training.guards import require_finite
from nncli.training.loop import predict


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


def write_table(frame: Any, output: Path) -> bool:
    """The table as CSV to ``output`` (written atomically) -> whether it replaced an earlier
    file (the command line writes a table without ``--output`` to stdout)."""
    from nncli.checkpoint.folder import write_text_atomic

    replaced = Path(output).exists()
    try:
        write_text_atomic(Path(output), frame.to_csv(index=False, lineterminator="\n"))
    except OSError as exc:
        raise CheckpointError(f"cannot write ({exc.strerror})", where=str(output)) from None
    return replaced
