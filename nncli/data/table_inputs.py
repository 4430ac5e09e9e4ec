"""A table read as several named inputs (``data.inputs``), each with its own encoder.

``columns`` inputs share one ``TabularEncoder`` over all their columns (numbers scaled and
categories one-hot as a table without inputs; ``data.missing`` applies to them), each input
taking its own columns' slice; a text input is a ``TextColumn`` (token ids and a mask), an
image input an ``ImageColumn`` (the files a column names, decoded as an image folder's). The
targets, labels and decoding are the table's as ever. x is {input name: (N, ...)} in the spec's
order, the mask {text input: (N, T)}.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.data.csv_reader import require_columns
from nncli.data.dataset import state_text, state_texts
from nncli.data.encoder import Encoder
from nncli.data.header import check_names
from nncli.data.image_column import ImageColumn, without_unreadable
from nncli.data.table_encoder import TabularEncoder
from nncli.data.text_column import TextColumn
from nncli.errors import SpecError

if TYPE_CHECKING:
    import pandas as pd

ENCODERS: dict[str, Any] = {"text": TextColumn, "image": ImageColumn}
Column = TextColumn | ImageColumn


def input_features(cfg: Any, header: list[str], source: str) -> list[str]:
    """The columns every ``columns`` input reads, in input order, each checked against the
    header (SpecError with a did-you-mean at ``data.inputs.<name>...``)."""
    features = []
    for name, entry in cfg.inputs.items():
        if entry["type"] == "columns":
            field = f"data.inputs.{name}.columns"
            check_names(entry["columns"], field, header, source, error=SpecError)
            features += entry["columns"]
        else:
            check_names([entry["column"]], f"data.inputs.{name}.column", header, source, SpecError)
    return features


def image_columns(settings: dict[str, dict]) -> list[ImageColumn]:
    """The image-path inputs of ``data.inputs`` (their settings) as encoders."""
    images = [entry for entry in settings.values() if entry["type"] == "image"]
    return [ImageColumn.fit(entry["column"], None, entry) for entry in images]


class TableInputsEncoder(Encoder):
    """Several inputs from one table: ``table`` encodes the columns inputs' columns and the
    targets; ``encoders`` maps each input name to its columns (a list) or its encoder."""

    kind = "csv"
    tabular = True

    def __init__(self, table: TabularEncoder, inputs: dict[str, list[str] | Column]):
        self.table, self.encoders = table, inputs
        self.dtype = table.dtype

    @classmethod
    def fit(cls, table: TabularEncoder, settings: dict[str, dict], frame: pd.DataFrame) -> Any:
        """The text inputs' encoders fitted on the training rows ``frame`` beside ``table``."""
        inputs: dict[str, list[str] | Column] = {}
        for name, entry in settings.items():
            if entry["type"] == "columns":
                inputs[name] = list(entry["columns"])
            else:
                column = entry["column"]
                inputs[name] = ENCODERS[entry["type"]].fit(column, frame[column], entry)
        return cls(table, inputs)

    # -- what it knows ---------------------------------------------------------------------------

    @property
    def texts(self) -> dict[str, Column]:
        """The inputs of one column each (text or images), by name."""
        return {name: e for name, e in self.encoders.items() if not isinstance(e, list)}

    @property
    def feature_names(self) -> list[str]:
        """The columns inputs' encoded names, then ``<input>=<column>`` for each text input."""
        texts = [f"{name}={e.column}" for name, e in self.texts.items()]
        return self.table.feature_names + texts

    @property
    def labels(self) -> list[str] | None:
        return self.table.labels

    @property
    def output_width(self) -> int:
        return self.table.output_width

    @property
    def vocabulary_size(self) -> dict[str, int]:  # type: ignore[override]
        """{text input: the ids its embedding takes} (``input_dim: auto``)."""
        texts = {name: e for name, e in self.texts.items() if isinstance(e, TextColumn)}
        return {name: e.vocabulary_size for name, e in texts.items()}

    def row_columns(self) -> list[dict[str, Any]]:
        """The columns inputs' columns, each text or image column, then the targets; each
        feature with the ``input`` that reads it (a text column with its tokens, an image
        column with its size and colour)."""
        table = self.table.row_columns()
        owner = {c: name for name, e in self.encoders.items() if isinstance(e, list) for c in e}
        features = [{**c, "input": owner[c["name"]]} for c in table[: len(self.table.columns)]]
        singles = [{"name": e.column, "role": "feature", "input": name, **e.described()}
                   for name, e in self.texts.items()]  # fmt: skip
        return [*features, *singles, *table[len(self.table.columns) :]]

    # -- new data --------------------------------------------------------------------------------

    def read_frame(self, path: str | Path, numbers: bool = False) -> pd.DataFrame:
        return self.table.read_frame(path, numbers)

    def readable(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` without the rows whose image is missing or unreadable (``--skip-bad``),
        the warning saying how many in ``attrs["nncli_warnings"]``."""
        images = [e for e in self.texts.values() if isinstance(e, ImageColumn)]
        kept, notes = without_unreadable(frame, images)
        kept.attrs["nncli_warnings"] = notes
        return kept

    def _slices(self) -> dict[str, slice]:
        """Each columns input's slice of the table encoder's (N, F)."""
        widths = {column.name: len(column.names) for column in self.table.columns}
        slices, at = {}, 0
        for name, entry in self.encoders.items():
            if isinstance(entry, list):
                width = sum(widths[c] for c in entry)
                slices[name], at = slice(at, at + width), at + width
        return slices

    def inputs_of(self, frame: pd.DataFrame, unknown: str = "error") -> tuple[dict, dict | None]:
        """A frame -> ({input name: (N, ...)}, {text input: (N, T) mask} or None)."""
        require_columns(frame, [e.column for e in self.texts.values()], "input")
        slices = self._slices()
        whole = self.table.transform(frame, unknown=unknown) if slices else None
        x, masks = {}, {}
        for name, entry in self.encoders.items():
            if isinstance(entry, list):
                x[name] = whole[:, slices[name]]
            elif isinstance(entry, ImageColumn):
                x[name] = entry.encode(frame, np.dtype(self.dtype))
            else:
                x[name], masks[name] = entry.encode(frame[entry.column].to_numpy(dtype=object))
        return x, masks or None

    def transform(self, data: Any, unknown: str = "error") -> dict[str, np.ndarray]:  # type: ignore[override]
        frame = data if not isinstance(data, (str, Path)) else self.read_frame(data)
        return self.inputs_of(frame, unknown)[0]

    def inputs(self, frame: Any, unknown: str = "error") -> tuple[Any, Any]:
        return self.inputs_of(frame, unknown)

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return self.table.targets(frame)

    def scored_rows(self, frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
        return self.table.scored_rows(frame, notes)

    def decode(self, output: np.ndarray, proba: bool = False) -> dict[str, np.ndarray]:
        return self.table.decode(output, proba)

    # -- checkpoint state ------------------------------------------------------------------------

    def to_state(self) -> dict:
        """The table encoder's state with ``inputs``: the names in order, and each input's
        columns or its encoder's state (keyed by position: a name is a spec name, safe as a
        group name, but positions keep the order)."""
        inputs: dict[str, Any] = {"names": list(self.encoders)}
        for k, entry in enumerate(self.encoders.values()):
            state = {"type": "columns", "columns": entry} if isinstance(entry, list) else None
            inputs[str(k)] = state if state is not None else entry.to_state()
        return {**self.table.to_state(), "inputs": inputs}

    @classmethod
    def from_state(cls, state: dict) -> TableInputsEncoder:
        table = TabularEncoder.from_state({k: v for k, v in state.items() if k != "inputs"})
        stored = state["inputs"]
        inputs: dict[str, list[str] | Column] = {}
        for k, name in enumerate(state_texts(stored["names"])):
            entry = stored[str(k)]
            kind = state_text(entry["type"])
            if kind == "columns":
                inputs[name] = state_texts(entry["columns"])
            else:
                inputs[name] = ENCODERS[kind].from_state(entry)
        return cls(table, inputs)
