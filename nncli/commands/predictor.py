"""A checkpoint loaded once and applied to data: ``Predictor`` holds the network on its backend,
the fitted encoder the checkpoint stores and the record of its training, and turns files, frames
or records into the network's outputs and decoded predictions (labels as the training data
spelled them, regression in the target's units) with their probabilities.

``predict``, ``evaluate`` (and its re-split of the training file), ``export``, ``generate``,
``predict --steps`` and ``plot`` apply a checkpoint through it, so a model is read once however
many inputs it serves. It keeps no state between calls: each call's frames and arrays are its
own. Nothing here reads a path taken from the checkpoint's embedded spec.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.checkpoint import model as model_io
from nncli.commands.apply import (
    all_skipped,
    check_input_kind,
    check_rows_kind,
    read_data,
    stored_encoder,
    warn_skipped,
)
from nncli.data.csv_reader import source_of
from nncli.data.encoder import Encoder
from nncli.engine import feeds
from nncli.errors import DataError
from nncli.training.guards import require_finite
from nncli.training.loop import predict

if TYPE_CHECKING:
    import pandas as pd

    from nncli.backend import Backend
    from nncli.engine.network import Sequential

PROBA = "proba_"  # the encoders' probability columns: proba_<label>


@dataclass(frozen=True)
class Predictions:
    """One frame's predictions. ``columns``: what ``nncli predict`` writes without ``--proba``
    (the id columns, the kept ones, then ``prediction`` or one ``prediction_<target>`` per
    target); ``probabilities``: one ``proba_<label>`` column per class (empty for a
    regression); ``outputs``: the network's raw outputs on the host, (N, ...) with the padding
    ``mask`` (N, T) of sequences."""

    columns: dict[str, np.ndarray]
    probabilities: dict[str, np.ndarray]
    outputs: np.ndarray
    mask: np.ndarray | None = None

    def table(self, proba: bool = False) -> pd.DataFrame:
        """The rows ``nncli predict`` writes (with ``proba``, as ``--proba`` writes them)."""
        import pandas as pd

        return pd.DataFrame({**self.columns, **(self.probabilities if proba else {})})

    def records(self, proba: bool = True) -> list[dict[str, Any]]:
        """One ``{column: value}`` dict per prediction, of plain Python values (JSON's)."""
        return self.table(proba).to_dict(orient="records")


@dataclass(frozen=True)
class Prepared:
    """A frame encoded for the network (``Predictor.prepare``): ``x`` (N, ...) and the sequence
    ``mask`` (N, T) on the host, with the ``--keep`` columns; ``Predictor.finish`` turns the
    network's outputs for ``x`` into the frame's Predictions."""

    frame: Any
    x: Any
    mask: np.ndarray | None
    kept: dict[str, np.ndarray]


@dataclass(frozen=True)
class Predictor:
    """A loaded checkpoint: ``model`` (network, loss, data section, training record, embedded
    spec, path) and ``encoder`` (the fitted encoder it stores). ``Predictor.load`` reads a
    checkpoint; ``Predictor.of`` wraps a model already loaded."""

    model: model_io.Model
    encoder: Encoder

    @classmethod
    def load(cls, checkpoint: Path, device: str = "cpu") -> Predictor:
        """Read ``checkpoint`` once, every check of ``checkpoint.model.load`` made, its network
        on ``device`` (cpu, gpu, ...): CheckpointError (exit 4) for any doubt about the file."""
        return cls.of(model_io.load(checkpoint, device))

    @classmethod
    def of(cls, model: model_io.Model, what: str = "data") -> Predictor:
        """A loaded model with its stored encoder (CheckpointError naming the ``what`` encoder
        when its state is incomplete)."""
        return cls(model, stored_encoder(model, what))

    # -- what it holds ---------------------------------------------------------------------------

    @property
    def net(self) -> Sequential:
        return self.model.net

    @property
    def backend(self) -> Backend:
        return self.model.net.backend

    @property
    def path(self) -> Path | None:
        return self.model.path

    @property
    def kind(self) -> str:
        """The data kind the model reads (csv, images, sequences, timeseries, text)."""
        return self.encoder.kind

    @property
    def task(self) -> str:
        """classification or regression."""
        return self.encoder.task

    @property
    def labels(self) -> list[str] | None:
        """The class labels in output order; None for a regression (and a text model)."""
        return self.model.labels

    @property
    def training(self) -> dict[str, Any]:
        """The checkpoint's training record: epochs, best epoch and value, seed, history, ..."""
        return self.model.training

    # -- applying it -----------------------------------------------------------------------------

    def check_input(self, path: Path) -> None:
        """DataError when ``path`` is plainly not what the model reads (``apply``)."""
        check_input_kind(self.model, self.encoder, path)

    def read_file(
        self,
        path: Path,
        *,
        skip_bad: bool = False,
        warn: Callable[[str], None] | None = None,
        skipped: list[str] | None = None,
    ) -> Any:
        """``path`` checked and read as training read its data: a table's frame, an image
        folder's ``ImageFrame`` (``skip_bad`` leaves out unreadable images, added to
        ``skipped``), a text."""
        self.check_input(path)
        return read_data(self.encoder, path, skip_bad, warn, skipped)

    def outputs(self, x: Any, mask: np.ndarray | None = None) -> np.ndarray:
        """The network's outputs for inputs ``x`` (N, ...) and a sequence ``mask``, on the
        host, in batches."""
        return predict(self.net, x, mask=mask)

    def decode(
        self, outputs: np.ndarray, mask: np.ndarray | None = None, proba: bool = False
    ) -> dict[str, np.ndarray]:
        """Outputs (or targets) -> ``prediction`` columns in the data's own terms and, with
        ``proba``, ``proba_<label>`` ones; per-step outputs of sequences need their ``mask``."""
        steps = {} if mask is None or isinstance(mask, dict) else {"mask": mask}  # inputs' own
        return self.encoder.decode(outputs, proba=proba, **steps)

    def prepare(
        self,
        frame: Any,
        *,
        keep: Sequence[str] = (),
        unknown: str = "error",
        where: str = "data",
        source: str = "the file",
    ) -> Prepared:
        """A frame -> its encoded inputs, checked, ready for ``outputs`` (``predictions`` in two
        steps, so a server can join the inputs of several requests in one forward pass; its
        options are ``predictions``')."""
        missing = [c for c in keep if c not in frame.columns]
        if missing:
            raise DataError(f"--keep column {missing[0]!r} is not in {source}", where=where)
        x, mask = self.encoder.inputs(frame, unknown=unknown)
        try:
            kept = self.encoder.kept_columns(frame, list(keep), feeds.rows(x))
        except DataError as exc:
            exc.where = exc.where or where
            raise
        require_finite(x, "the inputs", where)  # the encoders name the column; a net
        return Prepared(frame, x, mask, kept)

    def finish(self, prepared: Prepared, outputs: np.ndarray) -> Predictions:
        """A prepared frame and the network's outputs for its inputs -> its Predictions."""
        columns = dict(self.encoder.id_columns(prepared.frame))
        columns.update(prepared.kept)
        decoded = self.decode(outputs, prepared.mask, proba=True)
        probabilities = {k: v for k, v in decoded.items() if k.startswith(PROBA)}
        columns.update({k: v for k, v in decoded.items() if k not in probabilities})
        return Predictions(columns, probabilities, outputs, prepared.mask)

    def predictions(self, frame: Any, **options: Any) -> Predictions:
        """A frame (what ``read_file`` gives) -> its Predictions; ``options`` are ``prepare``'s:
        ``keep``, columns of the frame copied beside the predictions; ``unknown``, categories
        unseen in training (error, or ignore: all zeros); ``where`` and ``source``, the data's
        names in messages."""
        prepared = self.prepare(frame, **options)
        return self.finish(prepared, self.outputs(prepared.x, prepared.mask))

    def predict_files(
        self,
        paths: Sequence[Path],
        *,
        proba: bool = False,
        keep: Sequence[str] = (),
        unknown: str = "error",
        skip_bad: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> pd.DataFrame:
        """``nncli predict``'s table of every file in order: the id and ``keep`` columns,
        ``prediction`` and, with ``proba``, ``proba_<label>``. ``skip_bad``: leave out
        unreadable images, and tell ``warn`` how many."""
        import pandas as pd

        tables, skipped = [], []
        for path in paths:
            frame = self.read_file(path, skip_bad=skip_bad, warn=warn, skipped=skipped)
            if skipped and not len(frame):
                continue  # every image of this path left out; counted in the warning
            done = self.predictions(frame, keep=keep, unknown=unknown, where=str(path))
            tables.append(done.table(proba))
        if not tables:
            raise all_skipped(skipped, list(paths))
        warn_skipped(skipped, warn)
        return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]

    def predict_frame(
        self, frame: pd.DataFrame, *, keep: Sequence[str] = (), unknown: str = "error"
    ) -> Predictions:
        """A pandas frame of the columns a data file of a table model holds (csv, sequences,
        timeseries; cells as text or numbers, missing ones empty or NaN) -> its Predictions, as
        ``predict_files`` makes them from that file. Rows are named ``frame[<index>]`` in
        messages; DataError for a model of images or text."""
        import pandas as pd

        check_rows_kind(self.model, self.encoder, "a data frame")
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        if not frame.attrs.get("nncli_path"):  # read from a file: its lines name the rows
            frame = frame.copy(deep=False)  # the caller's frame keeps its own attributes
            frame.attrs["nncli_rows"] = "frame"
        where = source_of(frame)
        return self.predictions(frame, keep=keep, unknown=unknown, where=where, source=where)

    def predict_records(
        self, records: Sequence[dict[str, Any]], *, keep: Sequence[str] = (), unknown: str = "error"
    ) -> Predictions:
        """Records (one ``{column: value}`` dict a row, as JSON gives them) -> their
        Predictions, exactly as from a CSV file of those rows; a bad value is the file's error
        with the row named ``records[i]``. DataError for a model of images or text."""
        prepared = self.prepare_records(records, keep=keep, unknown=unknown)
        return self.finish(prepared, self.outputs(prepared.x, prepared.mask))

    def prepare_records(
        self,
        records: Sequence[dict[str, Any]],
        *,
        keep: Sequence[str] = (),
        unknown: str = "error",
        name: str = "records",
    ) -> Prepared:
        """``predict_records`` up to the forward pass (``prepare``); rows named ``name[i]``."""
        check_rows_kind(self.model, self.encoder, "records")
        frame = records_frame(records, name)
        source = "the records" if name == "records" else name
        return self.prepare(frame, keep=keep, unknown=unknown, where=name, source=source)

    def read_labelled(
        self,
        path: Path,
        *,
        skip_bad: bool = False,
        warn: Callable[[str], None] | None = None,
        unknown: str = "error",
    ) -> tuple[Any, Any, Any]:
        """(x, y, mask) of every labelled row of ``path`` that training would have kept
        (``warn`` hears of the rows left out); windows: each with its target."""
        skipped: list[str] = []
        frame = self.read_file(path, skip_bad=skip_bad, warn=warn, skipped=skipped)
        if skipped and not len(frame):
            raise all_skipped(skipped, [path])
        warn_skipped(skipped, warn)
        notes: list[str] = []
        frame = self.encoder.scored_rows(frame, notes)
        for note in notes if warn else ():
            warn(note)
        return self.encoder.labelled(frame, unknown=unknown)


def records_frame(records: Any, name: str = "records") -> pd.DataFrame:
    """Records (one ``{column: value}`` dict a row) -> the frame a CSV file of those rows reads
    as: text cells (a number as Python writes it, true as True), None or a missing key an empty
    cell; its rows named ``records[i]`` in messages."""
    import pandas as pd

    if not isinstance(records, (list, tuple)):
        found = type(records).__name__
        raise DataError(f"expected a list of {{column: value}} records, got {found}", where=name)
    if not records:
        raise DataError("expected at least one record, got none", where=name)
    odd = next((i for i, record in enumerate(records) if not isinstance(record, dict)), None)
    if odd is not None:
        found = type(records[odd]).__name__
        raise DataError(f"expected a {{column: value}} record, got {found}", where=f"{name}[{odd}]")
    frame = pd.DataFrame(list(records), dtype=object)
    frame.attrs["nncli_rows"] = name
    return frame
