"""``nncli predict`` and ``nncli evaluate``: a checkpoint applied to new data through the
encoders stored in it. Nothing here takes a path from the checkpoint's embedded spec."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from nncli import data, model_io
from nncli.errors import CheckpointError, DataError, SpecError
from nncli.metrics import classification_report, predicted_classes
from nncli.train import evaluate, predict


def _encoder(model: model_io.Model) -> Any:
    try:
        return data.encoder_from_state(model.encoder_state)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"the stored data encoder is incomplete ({exc})", where=str(model.path)
        ) from None


def model_inputs(encoder: Any, frame: Any, unknown: str = "error") -> tuple[Any, Any]:
    """(x, mask): sequence encoders give padded inputs and their mask; the others x alone."""
    if hasattr(encoder, "inputs"):
        return encoder.inputs(frame, unknown=unknown)
    return encoder.transform(frame, unknown=unknown), None


def predict_files(
    checkpoint: Path,
    paths: list[Path],
    *,
    proba: bool = False,
    keep: list[str] = (),
    unknown: str = "error",
    device: str = "cpu",
) -> Any:
    """A table: the ``--keep`` columns, ``prediction`` and, with ``proba``, ``proba_<label>``."""
    import pandas as pd

    if unknown not in ("error", "ignore"):
        raise SpecError(f"expected error or ignore, got {unknown!r}", field="--unknown")
    model = model_io.load(checkpoint, device)
    encoder = _encoder(model)
    tables = []
    for path in paths:
        frame = encoder.read_frame(path)
        missing = [c for c in keep if c not in frame.columns]
        if missing:
            raise DataError(f"--keep column {missing[0]!r} is not in the file", where=str(path))
        x, mask = model_inputs(encoder, frame, unknown)
        output = predict(model.net, x, mask=mask)
        columns = dict(encoder.id_columns(frame)) if hasattr(encoder, "id_columns") else {}
        columns.update({c: frame[c].to_numpy() for c in keep})
        if mask is None:
            columns.update(encoder.decode(output, proba=proba))
        else:
            columns.update(encoder.decode(output, proba=proba, mask=mask))
        tables.append(pd.DataFrame(columns))
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def write_table(frame: Any, output: Path | None) -> None:
    """CSV to a file (written atomically) or to stdout."""
    if output is None:
        frame.to_csv(sys.stdout, index=False, lineterminator="\n")
        return
    from nncli.training_run import write_text_atomic

    try:
        write_text_atomic(Path(output), frame.to_csv(index=False, lineterminator="\n"))
    except OSError as exc:
        raise CheckpointError(f"cannot write ({exc.strerror})", where=str(output)) from None


def evaluate_file(checkpoint: Path, path: Path, device: str = "cpu") -> dict[str, Any]:
    """Loss and metrics; for classification also per-class precision/recall/F1 and confusion."""
    model = model_io.load(checkpoint, device)
    encoder = _encoder(model)
    frame = encoder.read_frame(path)
    (x, mask), y = model_inputs(encoder, frame), encoder.targets(frame)
    metrics = evaluate(model.net, model.loss, x, y, mask=mask)
    result: dict[str, Any] = {"rows": len(x), "metrics": metrics}
    labels = model.labels
    if labels is not None and y.ndim == 2:
        p = predict(model.net, x, mask=mask)
        n = len(labels)
        report = classification_report(
            np.asarray(predicted_classes(y)), np.asarray(predicted_classes(p)), n
        )
        result.update(labels=labels, report=report)
    return result
