"""What ``nncli predict`` and ``nncli evaluate`` share (``Predictor`` applies them): a checkpoint
applied to new data through the encoders stored in it. Nothing here takes a path from the
checkpoint's embedded spec."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nncli import data
from nncli.bounds.files import require_regular
from nncli.checkpoint import model as model_io
from nncli.data.kinds import KINDS
from nncli.errors import CheckpointError, DataError


def stored_encoder(model: model_io.Model, what: str = "data") -> Any:
    """The fitted encoder a checkpoint stores; CheckpointError when its state is incomplete."""
    try:
        return data.encoder_from_state(model.encoder_state)
    except CheckpointError as exc:  # raised inside the encoder's state: name the file
        exc.where = exc.where or str(model.path)
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"the stored {what} encoder is incomplete ({exc})", where=str(model.path)
        ) from None


READS = {name: kind.reads for name, kind in KINDS.items()}  # what each kind's model reads


def check_input_kind(model: model_io.Model, encoder: Any, path: Path) -> None:
    """DataError when ``path`` is plainly not what the model reads: an image or a folder for
    a table model, a table or other text file for an image model; or no file at all (a device,
    a named pipe)."""
    from nncli.data.image_files import looks_like_image

    path, kind = Path(path), encoder.kind
    require_regular(path, DataError, folder=True)  # sniffing a named pipe would block
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


def check_rows_kind(model: model_io.Model, encoder: Any, what: str) -> None:
    """DataError when the model reads no table, so ``what`` (records, a data frame: rows of a
    table handed in rather than a file) cannot stand in for its data."""
    if not encoder.tabular:
        kind = encoder.kind
        raise DataError(
            f"predicting from {what} takes a model of tables; this model reads "
            f"{READS.get(kind, kind)}{_trained_on(model)}"
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
    from nncli.spec.document import parse

    try:
        trained = Path(parse(model.spec_yaml, "the checkpoint's spec").data["data"]["path"])
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
    to ``warn`` and add the files they left out to ``skipped``; so do tables of image paths,
    which leave out the rows of unreadable images and pass their one warning to ``warn``."""
    if not KINDS[encoder.kind].takes_skip_bad:
        return encoder.read_frame(path)
    if encoder.tabular:  # a table of image paths: the rows of unreadable images left out
        frame = encoder.read_frame(path)
        frame = encoder.readable(frame) if skip_bad else frame
        for note in frame.attrs.get("nncli_warnings", []) if warn else ():
            warn(note)
        return frame
    frame = encoder.read_frame(path, skip_bad=skip_bad)
    for note in frame.warnings if warn else ():
        warn(note)
    if skipped is not None:
        skipped.extend(frame.skipped)
    return frame


def all_skipped(skipped: list[str], paths: list[Path]) -> DataError:
    from nncli.data import image_files

    return image_files.all_skipped(skipped, ", ".join(str(p) for p in paths))


def warn_skipped(skipped: list[str], warn: Callable[[str], None] | None) -> None:
    from nncli.data.image_files import skipped_note

    for note in skipped_note(skipped) if warn else ():
        warn(note)


def check_table_output(
    output: Path | None,
    inputs: list[Path],
    *,
    force: bool = False,
    own: Callable[[Path], bool] | None = None,
) -> bool:
    """The one output rule (``nncli.checkpoint.outputs``) for ``--output``, before any work:
    SpecError (exit 2) when it is an input, lies in an input folder, is an HDF5 file, a spec or
    a file of a run in its folder, or exists and is not the command's earlier output (``own``)
    without ``force``; CheckpointError (exit 4) when its folder cannot be written. -> whether
    a file is there to be replaced."""
    from nncli.checkpoint.outputs import check_output

    return output is not None and check_output(output, inputs, force=force, own=own)
