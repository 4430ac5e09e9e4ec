"""Grouped sequences: a CSV with one row per step and an ``id`` column naming each sequence.

Rows are grouped by id (sequences in the order their ids first appear), put in ``order`` within a
sequence when that column is given (the file's order otherwise), and padded at the end to the
longest sequence: x (N, T, F) and mask (N, T), True at real steps. The features are encoded row
by row as a CSV table is (numbers scaled, text one-hot, fitted on the training sequences' rows).
``target_per: sequence``: y (N, K), the target constant within each sequence (sequence to one);
``target_per: step``: y (N, T, K), padded like x (sequence to sequence). The split draws whole
sequences, seeded, stratified by class for sequence-to-one classification.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.data.csv_reader import (
    all_numbers,
    canonical_numbers,
    cell_text,
    describe_rows,
    require_columns,
    source_of,
)
from nncli.data.dataset import PART_NAMES, Dataset, Part, parts_of, state_text, task_for_loss
from nncli.data.encoder import Encoder
from nncli.data.groups import Groups, check_padding, group
from nncli.data.header import check_names, feature_columns
from nncli.data.readers import read_table
from nncli.data.split import split_parts
from nncli.data.table import apply_missing, check_targets, numeric_features, resolve
from nncli.data.table_encoder import TabularEncoder
from nncli.errors import CheckpointError, DataError, ShapeError, SpecError

if TYPE_CHECKING:
    import pandas as pd

STATE_VERSION = 1


class SequenceEncoder(Encoder):
    """Rows of sequences -> padded (N, T, F) inputs, mask and targets; outputs -> predictions."""

    kind = "sequences"
    tabular = True

    def __init__(
        self,
        table: TabularEncoder,
        id_column: str,
        order: str | None,
        target_per: str,
        input_form: str = "onehot",
    ):
        self.table, self.id_column, self.order, self.target_per = (
            table,
            id_column,
            order,
            target_per,
        )
        self.task = table.task
        self.input_form = input_form  # "ids": the one categorical feature's codes (N, T)

    @property
    def vocabulary_size(self) -> int | None:
        """The categories of the token column, plus one id for a value training never saw."""
        return len(self.table.feature_names) + 1 if self.input_form == "ids" else None

    @property
    def labels(self) -> list[str] | None:
        return self.table.labels

    @property
    def feature_names(self) -> list[str]:
        return self.table.feature_names

    def row_columns(self) -> list[dict[str, Any]]:
        """The sequence's id (and order) column, then the table's: ``Encoder.row_columns``."""
        keys = [{"name": self.id_column, "role": "id", "type": "any"}]
        if self.order:
            keys.append({"name": self.order, "role": "order", "type": "any"})
        return keys + self.table.row_columns()

    # -- new data --------------------------------------------------------------------------------

    def read_frame(self, path: str | Path) -> pd.DataFrame:
        return self.table.read_frame(path)

    def step_bytes(self, targets: bool = False) -> int:
        """Bytes one padded step takes: its inputs (F values, or one int32 id), the mask's byte,
        and with ``targets`` a per-step target's values."""
        itemsize = np.dtype(self.table.dtype).itemsize
        width = 4 if self.input_form == "ids" else len(self.feature_names) * itemsize
        per_step = targets and self.target_per == "step"
        return width + 1 + (self.table.output_width * itemsize if per_step else 0)

    def group(self, frame: pd.DataFrame) -> Groups:
        columns = [self.id_column] + ([self.order] if self.order else [])
        require_columns(frame, columns, "sequence")
        return group(frame, self.id_column, self.order)

    def inputs(
        self, frame: pd.DataFrame, unknown: str = "error", groups: Groups | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """x (N, T, F) padded at the end, and the mask (N, T) of real steps; DataError first
        when they would pass the memory limit (``check_padding``)."""
        groups = groups or self.group(frame)
        check_padding([groups], self.step_bytes(), source_of(frame))
        x = self.table.transform(frame.iloc[groups.rows], unknown=unknown)
        if self.input_form == "ids":  # one-hot rows -> their category; an unseen one -> K
            x = np.where(x.any(axis=1), x.argmax(axis=1), x.shape[1]).astype(np.int32)
        return groups.pad(x), groups.mask()

    def transform(self, data: Any, unknown: str = "error") -> np.ndarray:
        frame = data if not isinstance(data, (str, Path)) else self.read_frame(data)
        return self.inputs(frame, unknown)[0]

    def scored_rows(self, frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
        """The table's rule: the rows training would have kept under ``data.missing``."""
        return self.table.scored_rows(frame, notes)

    def targets(self, frame: pd.DataFrame, groups: Groups | None = None) -> np.ndarray:
        """y (N, K) per sequence, or (N, T, K) per step (zeros after the end)."""
        groups = groups or self.group(frame)
        ordered = frame.iloc[groups.rows]
        if self.target_per == "sequence":
            check_constant(ordered, self.table.target_columns[0], groups, self.id_column)
            return self.table.targets(ordered.iloc[groups.first_rows()])
        return groups.pad(self.table.targets(ordered))

    def id_columns(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The sequence id (and, per step, the order value or the step number from 1)."""
        groups = self.group(frame)
        if self.target_per == "sequence":
            return {self.id_column: groups.ids}
        if self.order:
            steps = cell_text(frame[self.order])[0][groups.rows]
            return {self.id_column: groups.ids[groups.seq], self.order: steps}
        return {self.id_column: groups.ids[groups.seq], "step": groups.pos + 1}

    def kept_columns(
        self, frame: pd.DataFrame, names: list[str], rows: int
    ) -> dict[str, np.ndarray]:
        """``--keep``: per step, each row's values; per sequence, columns constant within each
        sequence (the id, a per-sequence attribute), one value a sequence."""
        groups = self.group(frame)
        ordered = frame.iloc[groups.rows]
        if self.target_per == "step":
            return {name: ordered[name].to_numpy() for name in names}
        for name in names:
            text = ordered[name].astype(str).to_numpy()
            changes = (groups.seq[1:] == groups.seq[:-1]) & (text[1:] != text[:-1])
            if changes.any():
                i = int(np.argmax(changes))
                raise DataError(
                    f"--keep column {name!r} changes within sequence "
                    f"{groups.ids[groups.seq[i]]!r} ({text[i]!r}, then {text[i + 1]!r}); a model "
                    "of one prediction a sequence keeps only columns constant within each"
                )
        first = ordered.iloc[groups.first_rows()]
        return {name: first[name].to_numpy() for name in names}

    def decode(
        self, output: np.ndarray, proba: bool = False, mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Per sequence: (N, K) -> one row each; per step: (N, T, K) -> one row per real step."""
        output = np.asarray(output)
        if self.target_per == "step":
            if mask is None or output.ndim != 3 or output.shape[:2] != mask.shape:
                raise ShapeError(
                    f"expected per-step outputs (N, T, K) and a mask (N, T), got {output.shape}"
                )
            output = output[mask]  # row-major: sequence after sequence, step after step
        return self.table.decode(output, proba=proba)

    # -- checkpoint state ------------------------------------------------------------------------

    def to_state(self) -> dict:
        return {
            "kind": self.kind,
            "version": STATE_VERSION,
            "id": self.id_column,
            "order": self.order or "",
            "target_per": self.target_per,
            "table": self.table.to_state(),
            # stored only for ids: older checkpoints then resume unchanged
            **({"input_form": self.input_form} if self.input_form != "onehot" else {}),
        }

    @classmethod
    def from_state(cls, state: dict) -> SequenceEncoder:
        try:
            table = TabularEncoder.from_state(state["table"])
        except CheckpointError as exc:  # its place in this state
            exc.field = f"table/{exc.field}" if exc.field else "table"
            raise
        return cls(
            table,
            state_text(state["id"]),
            state_text(state["order"]) or None,
            state_text(state["target_per"]),
            state_text(state.get("input_form", "onehot")),  # older checkpoints: one-hot
        )


def check_constant(ordered: pd.DataFrame, target: str, groups: Groups, id_column: str) -> None:
    """DataError at the first sequence whose ``target`` changes between its steps."""
    text = cell_text(ordered[target])[0]
    values = canonical_numbers(text) if all_numbers(text) else text
    changes = (groups.seq[1:] == groups.seq[:-1]) & (values[1:] != values[:-1])
    if changes.any():
        i = int(np.argmax(changes))
        rows = np.zeros(len(ordered), dtype=bool)
        rows[i + 1] = True
        raise DataError(
            f"sequence {groups.ids[groups.seq[i]]!r} changes its target {target!r} from "
            f"{text[i]!r} to {text[i + 1]!r} on {describe_rows(ordered, rows)}; target_per: "
            "sequence needs one target per sequence (target_per: step predicts every step)",
            where=source_of(ordered),
        )


def _columns(cfg: Any, header: list[str], path: Path) -> tuple[list[str], list[str]]:
    """(features, categorical), every named column checked against the header."""
    check_names([cfg.id], "data.id", header, path.name)
    check_names([cfg.order] if cfg.order else [], "data.order", header, path.name)
    check_names([cfg.target], "data.target", header, path.name)
    special = [cfg.id, cfg.order, cfg.target]
    return feature_columns(cfg, header, special, "the id, order or target", path.name)


def check_token_column(features: list[str], categorical: list[str], path: Path) -> None:
    """SpecError unless the features are one categorical column: an embedding takes its ids."""
    if len(features) != 1 or features[0] not in categorical:
        raise SpecError(
            "an embedding first layer takes one categorical column as ids; expected data.features "
            f"to be one column named in data.categorical, got features {features} "
            f"(categorical {categorical}) in {path.name}",
            field="data.features",
        )


def load(
    cfg: Any,
    base_dir: Path,
    seed: int,
    loss: str,
    input_form: str = "onehot",
    dtype: str = "float32",
) -> Dataset:
    """``data: {kind: sequences, ...}`` -> padded sequences with masks, split by sequence;
    ``input_form="ids"``: the one categorical feature as ids (N, T) for an embedding."""
    task = task_for_loss(loss)
    path = resolve(cfg.path, base_dir)
    frame = read_table(path, (), False, getattr(cfg, "delimiter", ","), getattr(cfg, "sheet", None))
    features, categorical = _columns(cfg, list(frame.columns), path)
    if input_form == "ids":
        check_token_column(features, categorical, path)
    notes: list[str] = []  # rows left out for missing values
    frame = apply_missing(frame, features, [cfg.target], cfg.missing, [], notes=notes)
    numeric = numeric_features(frame, features, categorical, [])
    codes = check_targets(frame, [cfg.target], task, loss, [])
    groups = group(frame, cfg.id, cfg.order)
    ordered = frame.iloc[groups.rows]
    per_sequence = cfg.target_per == "sequence"
    if per_sequence:
        check_constant(ordered, cfg.target, groups, cfg.id)
    strata = codes[groups.rows][groups.first_rows()] if per_sequence and codes is not None else None
    parts = split_parts(cfg, len(groups.ids), seed, strata, "sequences")[1]
    train = groups.subset(parts[0])
    table = TabularEncoder.fit(
        frame.iloc[train.rows],
        features=features,
        numeric=numeric,
        targets=[cfg.target],
        loss=loss,
        normalize=cfg.normalize,
        missing=cfg.missing,
        delimiter=getattr(cfg, "delimiter", ","),
    )
    table.dtype = dtype
    encoder = SequenceEncoder(table, cfg.id, cfg.order, cfg.target_per, input_form)

    # every part's padded inputs, masks and targets at once, before any is made
    check_padding([groups.subset(p) for p in parts], encoder.step_bytes(True), str(path))

    def encode(chosen: np.ndarray) -> Part | None:
        if len(chosen) == 0:
            return None
        sub = groups.subset(chosen)
        x, mask = encoder.inputs(frame, unknown="ignore", groups=sub)
        return Part(x, encoder.targets(frame, groups=sub), mask)

    encoded = parts_of(**{name: encode(p) for name, p in zip(PART_NAMES, parts, strict=True)})
    return Dataset(task, encoded, encoder, str(path), warnings=notes)
