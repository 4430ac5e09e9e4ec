"""CSV files -> Dataset: read, check the columns, apply the missing-value policy, split, encode.

Reading and the cell helpers (text, numbers, the lines messages name) are in ``csv_reader.py``.
pandas is imported inside the functions that need it, so ``import nncli.data`` stays quick.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.data.csv_reader import (
    all_numbers,
    canonical_numbers,
    cell_numbers,
    cell_text,
    describe_rows,
    describe_values,
    source_of,
)
from nncli.data.dataset import Dataset, Part, parts_of, task_for_loss
from nncli.data.header import check_names, feature_columns
from nncli.data.image_column import without_unreadable
from nncli.data.labels import check_class_count
from nncli.data.missing import apply_missing
from nncli.data.readers import read_table
from nncli.data.split import MARKS, marked_parts, split_parts
from nncli.data.table_encoder import TabularEncoder
from nncli.data.table_inputs import TableInputsEncoder, image_columns, input_features
from nncli.errors import DataError, SpecError

if TYPE_CHECKING:
    import pandas as pd

MOSTLY_NUMBERS = 0.9  # a column with this share of numbers is numeric with typos, not text
MISSING = ("error", "drop", "fill")
# A text feature's distinct values per present row (over more than ID_ROWS rows): one-hot gives
# one input per value, learnt from the rows that hold it. Over LEAVE_OUT a value is seen in fewer
# than 2 rows on average and most rows hold one no other row has (at least 2 * share - 1 of them):
# a name, an id, free text, nothing a new row could share; `nncli init` leaves it out. Over WARN
# fewer than 5 rows a value on average: weights learnt from a handful of rows; `train` warns.
LEAVE_OUT, WARN, ID_ROWS = 0.5, 0.2, 20
CLASS_LIMIT = 50  # a numeric classification target with more distinct values may be regression
SCALINGS = ("standard", "minmax", "none")


# -- loading -------------------------------------------------------------------------------------


def resolve(path: Any, base_dir: Path) -> Path:
    """A spec path: absolute, or relative to the spec file's folder."""
    path = Path(path)
    return path if path.is_absolute() else Path(base_dir) / path


def load(
    cfg: Any, base_dir: Path, seed: int, loss: str, dtype: str = "float32", skip_bad: bool = False
) -> Dataset:
    """``data: {kind: csv, ...}`` -> Dataset in ``dtype``, the encoder fitted on the training
    part only. With ``data.inputs`` x is {input name: (N, ...)} (``table_inputs.py``), and
    ``skip_bad`` leaves out the rows whose image is missing or unreadable.

    Validation and test rows drawn from the training file encode categories unseen in the
    training part as all zeros; separate ``validation:``/``test:`` files must not have any.
    """
    task = task_for_loss(loss)
    na_values = [str(v) for v in getattr(cfg, "na_values", None) or []]
    missing = getattr(cfg, "missing", "error")
    normalize = getattr(cfg, "normalize", "standard")
    for key, value, choices in (("missing", missing, MISSING), ("normalize", normalize, SCALINGS)):
        if value not in choices:
            raise SpecError(
                f"expected one of {', '.join(choices)}, got {value!r}", field=f"data.{key}"
            )
    path = resolve(cfg.path, base_dir)
    delimiter = getattr(cfg, "delimiter", ",")
    if getattr(cfg, "streaming", False):  # larger than memory: read in chunks, not whole
        from nncli.data import streaming

        if getattr(cfg, "inputs", None):
            raise SpecError(
                "data.streaming reads a table as one input; leave out data.inputs or streaming",
                field="data.streaming",
            )

        other = partial(resolve, base_dir=base_dir)
        return streaming.load(cfg, path, seed, loss, dtype, columns=_columns, other=other)
    frame = read_table(path, na_values, True, delimiter, getattr(cfg, "sheet", None))
    targets, features, categorical = _columns(cfg, list(frame.columns), path)
    inputs = getattr(cfg, "inputs", None)
    notes: list[str] = []  # rows left out for missing values or images, id-like columns
    frame = readable(frame, inputs, skip_bad, notes)
    frame = apply_missing(frame, features, targets, missing, na_values, notes=notes)
    numeric = numeric_features(frame, features, categorical, na_values)
    strata = check_targets(frame, targets, task, loss, na_values)
    numbers = set(numeric)  # a set: a wide header costs linear time, not quadratic
    one_hot = [name for name in features if name not in numbers]  # text and data.categorical
    notes += distinct_warnings(frame, one_hot, na_values)
    split = getattr(cfg, "split_column", None)
    if split:  # the file's own split; validation_split may draw from its train rows
        files = {}
        marks = split_marks(frame, split, na_values)
        train, val, test = marked_parts(marks, seed, float(cfg.validation_split), strata)
    else:
        files, (train, val, test) = split_parts(cfg, len(frame), seed, strata, "rows")
    encoder = TabularEncoder.fit(
        frame.iloc[train],
        features=features,
        numeric=numeric,
        targets=targets,
        loss=loss,
        normalize=normalize,
        missing=missing,
        na_values=na_values,
        delimiter=delimiter,
    )
    encoder.dtype = dtype
    if inputs is not None:  # several inputs: the columns ones share this table encoder
        encoder = TableInputsEncoder.fit(encoder, inputs, frame.iloc[train])

    def encode(part: str, rows: np.ndarray) -> Part | None:
        if files.get(part):
            other = encoder.read_frame(resolve(files[part], base_dir), numbers=True)
            other = readable(other, inputs, skip_bad, notes)
            other = apply_missing(other, features, targets, missing, na_values, True, notes)
            return Part(*encoder.labelled(other))
        if part != "train" and len(rows) == 0:
            return None
        return Part(*encoder.labelled(frame.iloc[rows], unknown="ignore"))

    chosen = {"train": train, "validation": val, "test": test}
    parts = parts_of(**{name: encode(name, rows) for name, rows in chosen.items()})
    return Dataset(task, parts, encoder, str(path), warnings=notes)


def readable(
    frame: pd.DataFrame, inputs: dict | None, skip_bad: bool, notes: list[str]
) -> pd.DataFrame:
    """With ``skip_bad`` and image-path inputs, ``frame`` without the rows whose image is
    missing or unreadable, the warning added to ``notes``; else ``frame``."""
    if not (skip_bad and inputs):
        return frame
    kept, left_out = without_unreadable(frame, image_columns(inputs))
    notes += left_out
    return kept


def _columns(cfg: Any, header: list[str], path: Path) -> tuple[list[str], list[str], list[str]]:
    """(targets, features, categorical) column names, each checked against the header; the
    split column is none of them."""
    targets = [cfg.target] if isinstance(cfg.target, str) else list(cfg.target)
    check_names(targets, "data.target", header, path.name)
    reserved, role = targets, "the target"
    split = getattr(cfg, "split_column", None)
    if split:
        check_names([split], "data.split_column", header, path.name)
        if split in targets:
            raise SpecError(f"column {split!r} is the target", field="data.split_column")
        reserved, role = [*targets, split], "the target or the split column"
    if getattr(cfg, "inputs", None) is not None:
        features = input_features(cfg, header, path.name)
        categorical = list(getattr(cfg, "categorical", None) or [])
        check_names(categorical, "data.categorical", features, "a columns input", SpecError)
        return targets, features, categorical
    features, categorical = feature_columns(cfg, header, reserved, role, path.name)
    return targets, features, categorical


def split_marks(frame: pd.DataFrame, name: str, na_values: Sequence[str]) -> np.ndarray:
    """The split column ``name`` -> each row's part (N,), lower case; DataError naming the
    lines of any other value or an empty cell."""
    text, missing = cell_text(frame[name], na_values)
    marks = np.array([value.lower() for value in text.astype(str)], dtype=object)
    bad = missing | ~np.isin(marks, MARKS)
    if bad.any():
        raise DataError(
            f"split column {name!r} holds {describe_values(text[bad])} on "
            f"{describe_rows(frame, bad)}; expected train, validation or test (any case)",
            where=source_of(frame),
            field="data.split_column",
        )
    return marks


def numeric_features(
    frame: pd.DataFrame, features: list[str], categorical: list[str], na_values: Sequence[str]
) -> list[str]:
    """Features whose present values are all numbers (and not listed as categorical)."""
    numeric, categorical = [], set(categorical)
    for name in features:
        if name in categorical:
            continue
        _, missing, bad = cell_numbers(frame[name], na_values)
        if not bad.any():
            numeric.append(name)
        elif (error := stray_text(frame, name, missing, bad, na_values)) is not None:
            raise error
    return numeric


def mostly_numbers(missing: np.ndarray, bad: np.ndarray) -> bool:
    """Some present cells are not numbers, and at least MOSTLY_NUMBERS of them are."""
    return bool(bad.any()) and (~missing & ~bad).sum() >= MOSTLY_NUMBERS * (~missing).sum()


def stray_text(
    frame: pd.DataFrame,
    name: str,
    missing: np.ndarray,
    bad: np.ndarray,
    na_values: Sequence[str] = (),
    feature: bool = True,
) -> DataError | None:
    """The rule for text in a column of numbers (``bad``: present cells that are not numbers):
    when at least MOSTLY_NUMBERS of its present cells are numbers, the text is typos or
    placeholders, and the error names them and their lines; else (a text column) None. The
    loader applies it to the features, ``nncli init`` to every column (``feature``: the remedy
    may name data.categorical)."""
    if not mostly_numbers(missing, bad):
        return None
    text = cell_text(frame[name], na_values)[0]
    return DataError(
        f"column {name!r} holds numbers except {describe_values(text[bad])} on "
        f"{describe_rows(frame, bad)}; fix those values"
        + (
            ", list placeholders in data.na_values, or name the column in data.categorical"
            if feature
            else " or list placeholders in data.na_values"
        ),
        where=source_of(frame),
    )


def distinct_warnings(
    frame: pd.DataFrame, one_hot: list[str], na_values: Sequence[str] = ()
) -> list[str]:
    """A warning for each one-hot feature (text, or named in data.categorical) with many
    distinct values for its rows (``too_distinct`` at the WARN level): inputs each learnt from
    a few rows, which say little about new rows."""
    notes = []
    for name in one_hot:
        text, missing = cell_text(frame[name], na_values)
        present = text[~missing]
        distinct = len(np.unique(present.astype(str)))
        if too_distinct(distinct, len(present), WARN):
            notes.append(
                f"{source_of(frame)}: column {name!r} has {distinct} distinct values in "
                f"{len(present)} rows ({len(present) / distinct:.1f} rows a value); one-hot "
                f"encoding gives the model {distinct} inputs, each learnt from a few rows, "
                f"that say little about new rows. Leave it out with data.exclude: [{name}]"
            )
    return notes


def too_distinct(distinct: int, present: int, share: float = LEAVE_OUT) -> bool:
    """The one rule for a text column with too many distinct values to learn from: more than
    ``share`` of its ``present`` values distinct, over more than ID_ROWS rows. ``nncli init``
    leaves such columns out at LEAVE_OUT (data.exclude); ``train`` warns at WARN."""
    return present > ID_ROWS and distinct > share * present


def check_targets(
    frame: pd.DataFrame, targets: list[str], task: str, loss: str, na_values: Sequence[str]
) -> np.ndarray | None:
    """Check the target columns suit the task -> class code per row (classification) or None."""
    if task == "classification":
        if len(targets) != 1:
            raise DataError(
                f"{loss} takes one target column, got {len(targets)}: {', '.join(targets)}",
                field="data.target",
            )
        text = cell_text(frame[targets[0]], na_values)[0]
        numeric = all_numbers(text)
        labels = canonical_numbers(text) if numeric else text
        classes, codes = np.unique(labels.astype(str), return_inverse=True)
        if numeric and len(classes) > CLASS_LIMIT:
            raise DataError(
                f"{loss} treats each distinct value of target column {targets[0]!r} as a class, "
                f"and it has {len(classes)} distinct numbers ({describe_values(classes)}); to "
                "predict a number use loss: mse (or mae)",
                where=source_of(frame),
                field="data.target",
            )
        found = f"column {targets[0]!r} has {len(classes)}: {describe_values(classes)}"
        check_class_count(len(classes), loss, found, field="data.target")
        return codes.reshape(-1)
    for name in targets:
        bad = cell_numbers(frame[name], na_values)[2]
        if bad.any():
            text = cell_text(frame[name], na_values)[0]
            raise DataError(
                f"regression (loss: {loss}) needs numbers; column {name!r} has "
                f"{describe_values(text[bad])} on {describe_rows(frame, bad)} (for classes use "
                "loss: cross_entropy)",
                field="data.target",
            )
    return None
