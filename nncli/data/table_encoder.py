"""The CSV table encoder, fitted on the training part only, saved to and rebuilt from plain dicts.

TabularEncoder: a frame -> float32 (N, F) features and float32 targets, and network outputs ->
predictions in the file's own labels; one column encoder per feature (``columns.py``: numbers
scaled, text one-hot). Regression targets are kept unscaled, so outputs read directly as
predictions.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.data.columns import (
    CategoricalColumn,
    NumericColumn,
    numeric_from_state,
    numeric_state,
    scaled_values,
    scaling_of,
)
from nncli.data.csv_reader import (
    cell_missing,
    cell_numbers,
    cell_text,
    clean_block,
    describe_rows,
    describe_values,
    not_numbers,
    require_columns,
    source_of,
)
from nncli.data.dataset import (
    class_predictions,
    distinct_texts,
    state_text,
    state_texts,
    task_for_loss,
)
from nncli.data.encoder import Encoder
from nncli.data.missing import apply_missing
from nncli.data.readers import read_table
from nncli.errors import DataError, OptionHint, ShapeError, SpecError

if TYPE_CHECKING:
    import pandas as pd

STATE_VERSION = 1
UNKNOWN_HINT = OptionHint("--unknown", "--unknown ignore encodes them as all zeros")


class TabularEncoder(Encoder):
    """Feature columns -> float32 (N, F); targets -> float32 (N, K | 1 | k); outputs -> labels."""

    kind = "csv"
    tabular = True

    def __init__(
        self,
        columns: list[NumericColumn | CategoricalColumn],
        targets: list[str],
        loss: str,
        label_column: CategoricalColumn | None,
        missing: str = "error",
        na_values: list[str] | None = None,
        delimiter: str = ",",
    ):
        self.columns = columns
        self.delimiter = delimiter
        self.target_columns = targets
        self.loss = loss
        self.task = task_for_loss(loss)
        self.label_column = label_column
        self.missing = missing
        self.na_values = list(na_values or [])

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        *,
        features: list[str],
        numeric: list[str],
        targets: list[str],
        loss: str,
        normalize: str = "standard",
        missing: str = "error",
        na_values: list[str] | None = None,
        delimiter: str = ",",
    ) -> TabularEncoder:
        """Fit on the training rows: scaling statistics, categories, fill values, class labels."""
        na_values = list(na_values or [])
        columns: list[NumericColumn | CategoricalColumn] = []
        numeric = set(numeric)  # a wide table: one lookup a column, not a scan
        for name in features:
            if name in numeric:
                values, absent, _ = cell_numbers(frame[name], na_values)
                columns.append(NumericColumn.fit(name, values[~absent], normalize))
                stats = [columns[-1].offset, columns[-1].scale, columns[-1].fill]
                if not np.isfinite(stats).all():  # e.g. 1e308: its square overflows
                    peak = ~absent & (np.abs(values) == np.nanmax(np.abs(values)))
                    text = cell_text(frame[name], na_values)[0]
                    raise DataError(
                        f"column {name!r} holds {describe_values(text[peak])} on "
                        f"{describe_rows(frame, peak)}: too large to scale ({normalize})",
                        where=source_of(frame),
                    )
            else:
                text, absent = cell_text(frame[name], na_values)
                columns.append(CategoricalColumn.fit(name, text[~absent]))
        label_column = None
        if task_for_loss(loss) == "classification":
            text, absent = cell_text(frame[targets[0]], na_values)
            label_column = CategoricalColumn.fit(targets[0], text[~absent])
        return cls(columns, list(targets), loss, label_column, missing, na_values, delimiter)

    # -- what it knows ---------------------------------------------------------------------------

    @property
    def feature_columns(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def feature_names(self) -> list[str]:
        """One name per encoded input column: ``bill_length_mm``, ``island=Biscoe``, ..."""
        return [name for column in self.columns for name in column.names]

    @property
    def labels(self) -> list[str] | None:
        """Class labels in output order (sorted; numbers as numbers); None for regression."""
        return None if self.label_column is None else list(self.label_column.categories)

    @property
    def output_width(self) -> int:
        if self.label_column is None:
            return len(self.target_columns)
        return 1 if self.loss == "binary_cross_entropy" else len(self.label_column.categories)

    def row_columns(self) -> list[dict[str, Any]]:
        """Each feature (``described``), then the targets: ``Encoder.row_columns``."""
        features = [c.described(fill=self.missing == "fill") for c in self.columns]
        target = "category" if self.label_column is not None else "number"
        return features + [
            {"name": n, "role": "target", "type": target} for n in self.target_columns
        ]

    # -- new data --------------------------------------------------------------------------------

    def read_frame(self, path: str | Path, numbers: bool = False) -> pd.DataFrame:
        """Read a CSV file the way the training file was read (same missing-value strings and
        delimiter)."""
        return read_table(Path(path), self.na_values, numbers, self.delimiter)

    def transform(self, data: pd.DataFrame | str | Path, unknown: str = "error") -> np.ndarray:
        """Frame or CSV path -> float32 (N, F); extra columns (the target too) are ignored.

        Missing values follow the training policy: fill uses the training mean / most frequent
        value; error and drop refuse them (predict cannot drop a row it is asked about; see
        ``complete_rows``). unknown="ignore" encodes unseen categories as all zeros.
        """
        if unknown not in ("error", "ignore"):
            raise SpecError(f"expected unknown to be error or ignore, got {unknown!r}")
        frame = data if not isinstance(data, (str, Path)) else self.read_frame(data)
        require_columns(frame, self.feature_columns, "feature")
        cells = self.cells(frame)
        if self.missing != "fill":
            for name, (_, absent, *_) in cells.items():
                if absent.any():
                    raise DataError(
                        f"column {name!r} has missing values on {describe_rows(frame, absent)}; "
                        f"the model was trained with missing: {self.missing}, so it needs "
                        "every value",
                        where=source_of(frame),
                    )
        scaled = self.scaled(frame, cells)
        blocks = []
        for column in self.columns:
            if isinstance(column, NumericColumn):
                blocks.append(scaled[column.name])
            else:
                text, absent = cells[column.name]
                text = np.where(absent, column.fill, text)
                codes = column.codes(text)
                if unknown == "error" and (codes < 0).any():
                    raise self._unseen(frame, column, text, codes < 0, UNKNOWN_HINT)
                blocks.append(column.encode(codes))
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            x = np.concatenate(blocks, axis=1).astype(self.dtype)
        owners = [column.name for column in self.columns for _ in column.names]
        return _finite(x, owners, frame, self.na_values)

    def cells(self, frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, ...]]:
        """Each feature's cells: a numbers column as ``cell_numbers`` reads it (no text unless
        a message needs it; a table of clean numbers in one array, ``clean_block``), the others
        as ``cell_text`` does."""
        numeric = [c.name for c in self.columns if isinstance(c, NumericColumn)]
        block = clean_block(frame, numeric, self.na_values)
        if block is not None:
            none = np.zeros(len(frame), dtype=bool)  # nothing missing, nothing bad
            cells = {name: (block[:, j], none, none) for j, name in enumerate(numeric)}
        else:
            cells = {name: cell_numbers(frame[name], self.na_values) for name in numeric}
        for column in self.columns:
            if not isinstance(column, NumericColumn):
                cells[column.name] = cell_text(frame[column.name], self.na_values)
        return cells

    def scaled(
        self, frame: pd.DataFrame, cells: dict[str, tuple[np.ndarray, ...]]
    ) -> dict[str, np.ndarray]:
        """The number columns' cells, missing ones filled, as (x - offset) / scale in float64,
        every column in one pass (a wide table is many columns): name -> (N, 1). DataError
        naming the first column with a cell that is not a number."""
        numeric = [c for c in self.columns if isinstance(c, NumericColumn)]
        if not numeric:
            return {}
        values, absent, bad = (
            np.stack([cells[c.name][part] for c in numeric], axis=1) for part in range(3)
        )
        if bad.any():
            name = numeric[int(np.argmax(bad.any(axis=0)))].name
            text = cell_text(frame[name], self.na_values)[0]
            raise not_numbers(frame, name, text, cells[name][2])
        x = scaled_values(scaling_of(numeric), values, absent)  # inf: _finite names it
        return {c.name: x[:, j : j + 1] for j, c in enumerate(numeric)}

    def complete_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """(N,) bool: rows with every feature (and every target column present) given."""
        names = self.feature_columns + [n for n in self.target_columns if n in frame.columns]
        require_columns(frame, self.feature_columns, "feature")
        absent = np.zeros(len(frame), dtype=bool)
        for name in names:
            absent |= cell_missing(frame[name], self.na_values)
        return ~absent

    def scored_rows(self, frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
        """The rows training would have kept under its ``data.missing`` (fill: those with a
        target; drop: those with every value); error keeps them all, to be refused by name."""
        names = [*self.feature_columns, *self.target_columns]
        if self.missing == "error" or any(name not in frame.columns for name in names):
            return frame  # transform and targets name the missing column or value
        return apply_missing(
            frame,
            self.feature_columns,
            self.target_columns,
            self.missing,
            self.na_values,
            notes=notes,
        )

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        """Labelled frame -> float32 y: one-hot (N, K), 0/1 (N, 1) or raw values (N, k)."""
        require_columns(frame, self.target_columns, "target")
        text_of = cell_text if self.label_column is not None else cell_numbers
        cells = {name: text_of(frame[name], self.na_values) for name in self.target_columns}
        for name, (_, absent, *_) in cells.items():
            if absent.any():
                raise DataError(
                    f"target column {name!r} has missing values on {describe_rows(frame, absent)}",
                    where=source_of(frame),
                )
        if self.label_column is None:
            blocks = []
            for name, (values, _, bad) in cells.items():
                if bad.any():
                    text = cell_text(frame[name], self.na_values)[0]
                    raise not_numbers(frame, name, text, bad, what="target column")
                blocks.append(values[:, None])
            with np.errstate(over="ignore"):
                y = np.concatenate(blocks, axis=1).astype(self.dtype)
            return _finite(y, list(self.target_columns), frame, self.na_values)
        text = cells[self.label_column.name][0]
        codes = self.label_column.codes(text)
        if (codes < 0).any():
            raise self._unseen(frame, self.label_column, text, codes < 0, None)
        if self.loss == "binary_cross_entropy":
            return codes[:, None].astype(self.dtype)
        return self.label_column.encode(codes).astype(self.dtype)

    def decode(self, output: np.ndarray, proba: bool = False) -> dict[str, np.ndarray]:
        """Network output (N, width) -> columns: ``prediction`` (labels or values; one
        ``prediction_<target>`` per target for multi-target regression) and, with ``proba``,
        ``proba_<label>`` per class."""
        output = np.asarray(output, dtype=np.float64)
        if output.ndim != 2 or output.shape[1] != self.output_width:
            raise ShapeError(
                f"expected network outputs of shape (N, {self.output_width}), got {output.shape}"
            )
        if self.label_column is None:
            if len(self.target_columns) == 1:
                return {"prediction": output[:, 0]}
            return {f"prediction_{n}": output[:, j] for j, n in enumerate(self.target_columns)}
        binary = self.loss == "binary_cross_entropy"
        return class_predictions(output, self.label_column.categories, binary, proba)

    # -- helpers ---------------------------------------------------------------------------------

    def _unseen(
        self,
        frame: pd.DataFrame,
        column: CategoricalColumn,
        text: np.ndarray,
        unseen: np.ndarray,
        hint: OptionHint | None,
    ) -> DataError:
        return DataError(
            f"column {column.name!r} has values not seen in training: "
            f"{describe_values(text[unseen])} on {describe_rows(frame, unseen)} "
            f"(known: {describe_values(np.array(column.categories))})",
            where=source_of(frame),
            hint=hint,
        )

    # -- checkpoint state ------------------------------------------------------------------------

    def to_state(self) -> dict:
        """Everything predict needs, as a nested dict of strings, numbers, lists and arrays."""
        numeric = [c for c in self.columns if isinstance(c, NumericColumn)]
        categorical = [c for c in self.columns if isinstance(c, CategoricalColumn)]
        # only a delimiter other than "," is stored: older checkpoints then resume unchanged
        delimiter = {"delimiter": self.delimiter} if self.delimiter != "," else {}
        dtype = {"dtype": self.dtype} if self.dtype != "float32" else {}  # the same for dtype
        return {
            **delimiter,
            **dtype,
            "kind": self.kind,
            "version": STATE_VERSION,
            "loss": self.loss,
            "task": self.task,
            "missing": self.missing,
            "na_values": list(self.na_values),
            "features": self.feature_columns,
            "feature_names": self.feature_names,
            "targets": list(self.target_columns),
            "labels": self.labels or [],
            "numeric_labels": int(bool(self.label_column and self.label_column.numeric)),
            "numeric": numeric_state(numeric),
            "categorical": {
                "columns": [c.name for c in categorical],
                "numeric": np.array([c.numeric for c in categorical], dtype=np.int8),
                "fill": [c.fill for c in categorical],
                # keyed by position: column names may hold characters a group name cannot
                "categories": {str(i): list(c.categories) for i, c in enumerate(categorical)},
            },
        }

    @classmethod
    def from_state(cls, state: dict) -> TabularEncoder:
        """Rebuild from ``to_state()``; tolerates what a checkpoint gives back (bytes, arrays)."""
        if "inputs" in state:  # several inputs: table_inputs.py (it imports this module)
            return import_module("nncli.data.table_inputs").TableInputsEncoder.from_state(state)
        num, cat = state.get("numeric", {}), state.get("categorical", {})
        columns: dict[str, NumericColumn | CategoricalColumn] = {
            column.name: column for column in (numeric_from_state(num) if num else [])
        }
        cat_fill = state_texts(cat.get("fill", []))
        for i, name in enumerate(state_texts(cat.get("columns", []))):
            categories = distinct_texts(cat["categories"][str(i)], f"categorical/categories/{i}")
            columns[name] = CategoricalColumn(
                name, categories, bool(cat["numeric"][i]), cat_fill[i]
            )
        loss, labels = state_text(state["loss"]), distinct_texts(state.get("labels", []), "labels")
        targets = state_texts(state["targets"])
        label_column = None
        if task_for_loss(loss) == "classification":
            numeric_labels = bool(int(state.get("numeric_labels", 0)))
            label_column = CategoricalColumn(targets[0], labels, numeric_labels, labels[0])
        encoder = cls(
            [columns[name] for name in state_texts(state["features"])],
            targets,
            loss,
            label_column,
            state_text(state.get("missing", "error")),
            state_texts(state.get("na_values", [])),
            state_text(state.get("delimiter", ",")),  # checkpoints before data.delimiter: ","
        )
        encoder.dtype = state_text(state.get("dtype", "float32"))
        return encoder


def _finite(
    x: np.ndarray, owners: list[str], frame: pd.DataFrame, na_values: list[str]
) -> np.ndarray:
    """x (N, F) float32 or float64, where file column ``owners[j]`` gave column j: x itself when
    every value is finite, else a DataError naming the column, its values and their lines in the
    file."""
    finite = np.isfinite(x)
    if finite.all():
        return x
    j = int(np.argmin(finite.all(axis=0)))
    rows, text = ~finite[:, j], cell_text(frame[owners[j]], na_values)[0]
    raise DataError(
        f"column {owners[j]!r} holds {describe_values(text[rows])} on "
        f"{describe_rows(frame, rows)}: not finite once encoded as {x.dtype}"
        + (" (limit ±3.4e38)" if x.dtype == np.float32 else ""),
        where=source_of(frame),
    )
