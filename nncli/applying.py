"""``nncli predict`` and ``nncli evaluate``: a checkpoint applied to new data through the
encoders stored in it. Nothing here takes a path from the checkpoint's embedded spec."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nncli import data, model_io
from nncli.errors import CheckpointError, DataError, SpecError
from nncli.guards import require_finite
from nncli.metrics import classification_report, predicted_classes
from nncli.train import evaluate, predict


def stored_encoder(model: model_io.Model, what: str = "data") -> Any:
    """The fitted encoder a checkpoint stores; CheckpointError when its state is incomplete."""
    try:
        return data.encoder_from_state(model.encoder_state)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"the stored {what} encoder is incomplete ({exc})", where=str(model.path)
        ) from None


def model_inputs(encoder: Any, frame: Any, unknown: str = "error") -> tuple[Any, Any]:
    """(x, mask): sequence encoders give padded inputs and their mask; the others x alone."""
    if hasattr(encoder, "inputs"):
        return encoder.inputs(frame, unknown=unknown)
    return encoder.transform(frame, unknown=unknown), None


READS = {  # what a model of each data kind is applied to, for messages
    "csv": "CSV tables",
    "timeseries": "CSV time series",
    "sequences": "CSV tables of sequences",
    "text": "text files",
    "images": "images",
}


def check_input_kind(model: model_io.Model, encoder: Any, path: Path) -> None:
    """DataError when ``path`` is plainly not what the model reads: an image or a folder for
    a table model, a table or other text file for an image model."""
    from nncli.data.image_files import looks_like_image

    path, kind = Path(path), getattr(encoder, "kind", None)
    if not path.exists() or kind not in READS:
        return  # the reader names a missing file
    if kind == "images":
        found = None if path.is_dir() or looks_like_image(path) else _text_kind(path)
    else:
        found = "a folder" if path.is_dir() else "an image" if looks_like_image(path) else None
    if found:
        raise DataError(
            f"{path} is {found}, but this model reads {READS[kind]}{_trained_on(model)}"
        )


def _text_kind(path: Path) -> str | None:
    """ "a CSV table" or "a text file" for a file that starts as UTF-8 text, else None."""
    try:
        with open(path, "rb") as file:
            head = file.read(4096)
        head.decode("utf-8", errors="strict")
    except (OSError, UnicodeDecodeError):
        return None  # maybe a damaged image: the image reader names it
    return "a CSV table" if path.suffix.lower() in (".csv", ".tsv") else "a text file"


def _trained_on(model: model_io.Model) -> str:
    """ " (trained on datasets/iris.csv)" from the embedded spec's text (never opened), or ""."""
    import yaml

    try:
        trained = Path(yaml.safe_load(model.spec_yaml)["data"]["path"])
    except Exception:  # an odd or missing embedded spec only loses this hint
        return ""
    return f" (trained on {Path(trained.parent.name, trained.name)})"


def read_data(
    encoder: Any,
    path: Path,
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
    skipped: list[str] | None = None,
) -> Any:
    """``encoder.read_frame(path)``; image folders also take ``skip_bad``, pass their warnings
    to ``warn`` and add the files they left out to ``skipped``."""
    if getattr(encoder, "kind", None) not in data.SKIPPING:
        return encoder.read_frame(path)
    frame = encoder.read_frame(path, skip_bad=skip_bad)
    for note in frame.warnings if warn else ():
        warn(note)
    if skipped is not None:
        skipped.extend(frame.skipped)
    return frame


def _all_skipped(skipped: list[str], paths: list[Path]) -> DataError:
    from nncli.data.image_files import all_skipped

    return all_skipped(skipped, ", ".join(str(p) for p in paths))


def _warn_skipped(skipped: list[str], warn: Callable[[str], None] | None) -> None:
    from nncli.data.image_files import skipped_note

    for note in skipped_note(skipped) if warn else ():
        warn(note)


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
        if keep and len(x) != len(frame):
            raise DataError(
                f"--keep copies input rows through, but this model makes {len(x)} prediction(s) "
                f"from the file's {len(frame)} rows; its id columns come first already",
                where=str(path),
            )
        require_finite(x, "the inputs", str(path))  # the encoders name the column; a net
        output = predict(model.net, x, mask=mask)
        columns = dict(encoder.id_columns(frame)) if hasattr(encoder, "id_columns") else {}
        columns.update({c: frame[c].to_numpy() for c in keep})
        if mask is None:
            columns.update(encoder.decode(output, proba=proba))
        else:
            columns.update(encoder.decode(output, proba=proba, mask=mask))
        tables.append(pd.DataFrame(columns))
    if not tables:
        raise _all_skipped(skipped, paths)
    _warn_skipped(skipped, warn)
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def check_table_output(output: Path | None, inputs: list[Path]) -> None:
    """SpecError (exit 2) before any work when ``--output`` is an input, lies in an input
    folder or is an HDF5 file (``nncli.outputs.check_outputs``)."""
    from nncli.outputs import check_outputs

    if output is not None:
        check_outputs([output], inputs, table=True)


def write_table(frame: Any, output: Path | None) -> bool:
    """CSV to a file (written atomically) or to stdout -> whether it replaced an earlier file."""
    if output is None:
        frame.to_csv(sys.stdout, index=False, lineterminator="\n")
        return False
    from nncli.outputs import write_text_atomic

    replaced = Path(output).exists()
    try:
        write_text_atomic(Path(output), frame.to_csv(index=False, lineterminator="\n"))
    except OSError as exc:
        raise CheckpointError(f"cannot write ({exc.strerror})", where=str(output)) from None
    return replaced


def evaluate_file(
    checkpoint: Path,
    path: Path,
    device: str = "cpu",
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Loss and metrics; for classification also per-class precision/recall/F1 and confusion."""
    model = model_io.load(checkpoint, device)
    encoder = stored_encoder(model)
    skipped: list[str] = []
    check_input_kind(model, encoder, path)
    frame = read_data(encoder, path, skip_bad, warn, skipped)
    if skipped and not len(frame):
        raise _all_skipped(skipped, [path])
    _warn_skipped(skipped, warn)
    if hasattr(encoder, "labelled"):  # windows: every one with its target, not just the last
        x, y, mask = encoder.labelled(frame)
    else:
        (x, mask), y = model_inputs(encoder, frame), encoder.targets(frame)
    require_finite(x, "the inputs", str(path))
    require_finite(y, "the targets", str(path))
    metrics = evaluate(model.net, model.loss, x, y, mask=mask, target_scale=model.target_scale)
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
