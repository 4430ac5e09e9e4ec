"""The fitted data encoder every data kind provides: new data -> x, outputs -> predictions.

An encoder is fitted on the training part, stored in the checkpoint (``to_state``) and rebuilt
from it (``from_state``), so predict and evaluate read new files exactly as training did. The
commands call every method here unconditionally; the optional ones have working defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nncli.errors import DataError


class Encoder:
    """Base class of every data kind's encoder. Subclasses set ``kind`` (the ``data.kind`` it
    serves) and ``task`` (classification or regression) and implement the methods that raise
    NotImplementedError; they override ``inputs``, ``id_columns`` and ``labelled`` when the
    defaults do not fit their data."""

    kind: str = ""
    task: str = ""
    # its frames are tables of rows (a CSV file's): a frame or records in memory can stand in
    # for a file (``Predictor.predict_frame`` / ``predict_records``)
    tabular: bool = False
    # "ids": symbols go in as integer ids (N, T) for an embedding first layer; "onehot": as
    # one-hot rows. Stored in the state; a checkpoint without it is "onehot".
    input_form: str = "onehot"
    # the spec's dtype: real-valued inputs and targets are made in it, never rounded through
    # float32 on the way to a float64 network; stored in the state when not float32
    dtype: str = "float32"

    @property
    def vocabulary_size(self) -> int | None:
        """How many ids the inputs can hold (``input_dim: auto``); None: not ids."""
        return None

    @property
    def labels(self) -> list[str] | None:
        """Class labels in output order; None for regression (or symbols, as text has)."""
        return None

    @property
    def feature_names(self) -> list[str]:
        """One name per encoded input column (a table's ``island=Biscoe``, an image's channel)."""
        raise NotImplementedError

    def row_columns(self) -> list[dict[str, Any]]:
        """The columns one row of new data holds, for a kind whose data is rows (``tabular``):
        ``{"name", "role": feature | id | order | target, "type": number | category | any}``
        with what is applied to a feature (a number's ``scaling``, a category's ``categories``)
        and ``missing`` (fill: an empty value takes ``fill``; error: every value is needed).
        Targets may be given and are ignored. None here: the kind reads files."""
        return []

    def read_frame(self, path: Any) -> Any:
        """A file (or folder) -> the frame ``transform``, ``targets`` and the rest take."""
        raise NotImplementedError

    def readable(self, frame: Any) -> Any:
        """``frame`` without the rows whose files cannot be read (``--skip-bad``), a warning in
        ``attrs["nncli_warnings"]``: a table of image paths'. Here: every row (no files)."""
        return frame

    def transform(self, data: Any, unknown: str = "error") -> np.ndarray:
        """A frame or a path -> float32 x; ``unknown="ignore"`` encodes unseen values as zeros."""
        raise NotImplementedError

    def inputs(self, frame: Any, unknown: str = "error") -> tuple[Any, np.ndarray | None]:
        """(x, mask) for predict: padded sequences give their (N, T) mask; by default x alone."""
        return self.transform(frame, unknown=unknown), None

    def id_columns(self, frame: Any) -> dict[str, np.ndarray]:
        """Columns put first in predict's output (an image's file, a sequence's id); none here."""
        return {}

    def kept_columns(self, frame: Any, names: list[str], rows: int) -> dict[str, np.ndarray]:
        """``--keep``: the file's columns ``names`` beside ``rows`` predictions, one a file row;
        DataError when the model makes another number of predictions than the file has rows."""
        if names and rows != len(frame):
            raise DataError(
                f"--keep copies input rows through, but this model makes {rows} prediction(s) "
                f"from the file's {len(frame)} rows; its id columns come first already"
            )
        return {name: frame[name].to_numpy() for name in names}

    def targets(self, frame: Any) -> np.ndarray:
        """A labelled frame -> float32 y."""
        raise NotImplementedError

    def labelled(
        self, frame: Any, unknown: str = "error"
    ) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """(x, y, mask) for evaluate; windows override it (every window with its target, where
        ``inputs`` gives the last one only)."""
        x, mask = self.inputs(frame, unknown=unknown)
        return x, self.targets(frame), mask

    def scored_rows(self, frame: Any, notes: list[str]) -> Any:
        """The rows of a labelled frame that evaluate scores: those training would have kept
        (tables leave out rows with no target as ``data.missing`` did); ``notes`` gets a line
        for the rows left out. By default every row."""
        return frame

    def decode(self, output: np.ndarray, proba: bool = False) -> dict[str, np.ndarray]:
        """Network outputs -> predict's columns: ``prediction`` and, with ``proba``, one
        ``proba_<label>`` per class."""
        raise NotImplementedError

    def to_state(self) -> dict:
        """Everything predict needs, as a nested dict of strings, numbers, lists and arrays."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict) -> Encoder:
        """Rebuild from ``to_state()``; tolerates what a checkpoint gives back (bytes, arrays)."""
        raise NotImplementedError
