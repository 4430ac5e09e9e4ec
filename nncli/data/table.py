"""CSV files -> Dataset: read, check the columns, apply the missing-value policy, split, encode.

Reading and the cell helpers (text, numbers, the lines messages name) are in ``csv_reader.py``.
pandas is imported inside the functions that need it, so ``import nncli.data`` stays quick.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.data.csv_reader import (
    all_numbers,
    canonical_numbers,
    cell_missing,
    cell_numbers,
    cell_text,
    describe_rows,
    describe_values,
    read_table,
    source_of,
)
from nncli.data.dataset import Dataset, task_for_loss
from nncli.data.header import check_names, feature_columns
from nncli.data.labels import check_class_count
from nncli.data.split import split_parts
from nncli.data.table_encoder import TabularEncoder
from nncli.errors import DataError, SpecError

if TYPE_CHECKING:
    import pandas as pd

MOSTLY_NUMBERS = 0.9  # a column with this share of numbers is numeric with typos, not text
MISSING = ("error", "drop", "fill")
ID_SHARE, ID_ROWS = 0.9, 20  # a text column with >90% distinct values over >20 rows is an id
CLASS_LIMIT = 50  # a numeric classification target with more distinct values may be regression
SCALINGS = ("standard", "minmax", "none")


# -- loading -------------------------------------------------------------------------------------


def resolve(path: Any, base_dir: Path) -> Path:
    """A spec path: absolute, or relative to the spec file's folder."""
    path = Path(path)
    return path if path.is_absolute() else Path(base_dir) / path


def load(cfg: Any, base_dir: Path, seed: int, loss: str, dtype: str = "float32") -> Dataset:
    """``data: {kind: csv, ...}`` -> Dataset in ``dtype``, the encoder fitted on the training
    part only.

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
    frame = read_table(path, na_values, numbers=True, delimiter=delimiter)
    targets, features, categorical = _columns(cfg, list(frame.columns), path)
    frame = apply_missing(frame, features, targets, missing, na_values)
    numeric = numeric_features(frame, features, categorical, na_values)
    strata = check_targets(frame, targets, task, loss, na_values)
    coded = {*numeric, *categorical}  # sets: a wide header costs linear time, not quadratic
    text_features = [name for name in features if name not in coded]
    notes = id_like_warnings(frame, text_features, na_values)
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

    def encode(part: str, rows: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        if files.get(part):
            other = encoder.read_frame(resolve(files[part], base_dir), numbers=True)
            other = apply_missing(other, features, targets, missing, na_values, check=True)
            return encoder.transform(other), encoder.targets(other)
        if part != "train" and len(rows) == 0:
            return None, None
        sub = frame.iloc[rows]
        return encoder.transform(sub, unknown="ignore"), encoder.targets(sub)

    x_train, y_train = encode("train", train)
    x_val, y_val = encode("validation", val)
    x_test, y_test = encode("test", test)
    parts = (x_train, y_train, x_val, y_val, x_test, y_test)
    return Dataset(task, *parts, encoder, str(path), warnings=notes)


def _columns(cfg: Any, header: list[str], path: Path) -> tuple[list[str], list[str], list[str]]:
    """(targets, features, categorical) column names, each checked against the header."""
    targets = [cfg.target] if isinstance(cfg.target, str) else list(cfg.target)
    check_names(targets, "data.target", header, path.name)
    features, categorical = feature_columns(cfg, header, targets, "the target", path.name)
    return targets, features, categorical


def apply_missing(
    frame: pd.DataFrame,
    features: list[str],
    targets: list[str],
    policy: str,
    na_values: Sequence[str],
    check: bool = False,
) -> pd.DataFrame:
    """Apply ``missing: error | drop | fill`` to a labelled frame -> the rows to train on.

    error: a DataError naming the column and rows. drop: rows with any missing value go.
    fill: only rows with a missing target go; the encoder fills features. ``check``: first
    check that the frame has every column (for separate validation/test files).
    """
    if check:
        absent = [name for name in [*features, *targets] if name not in frame.columns]
        if absent:
            raise DataError(f"missing columns: {describe_values(absent)}", where=source_of(frame))
    missing = {name: cell_missing(frame[name], na_values) for name in [*targets, *features]}
    if policy == "error":
        for name, mask in missing.items():
            if mask.any():
                raise DataError(
                    f"column {name!r} has missing values on {describe_rows(frame, mask)}; "
                    "set data.missing to drop or fill",
                    where=source_of(frame),
                )
    dropped = np.zeros(len(frame), dtype=bool)
    for name, mask in missing.items():
        if name in targets or policy == "drop":
            dropped |= mask
    if dropped.all():
        columns = [name for name, mask in missing.items() if mask.any()]
        raise DataError(
            f"no rows left after dropping all {len(frame)} rows for missing values (in "
            f"{describe_values(columns)})"
            + (
                "; data.missing: fill keeps rows with a missing feature" if policy == "drop" else ""
            ),
            where=source_of(frame),
        )
    return frame.iloc[np.flatnonzero(~dropped)] if dropped.any() else frame


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
        elif (~missing & ~bad).sum() >= MOSTLY_NUMBERS * (~missing).sum():
            text = cell_text(frame[name], na_values)[0]
            raise DataError(
                f"column {name!r} holds numbers except {describe_values(text[bad])} on "
                f"{describe_rows(frame, bad)}; fix those values, list placeholders in "
                "data.na_values, or name the column in data.categorical",
                where=source_of(frame),
            )
    return numeric


def id_like_warnings(
    frame: pd.DataFrame, text_features: list[str], na_values: Sequence[str] = ()
) -> list[str]:
    """A warning for each text feature whose present values are nearly all distinct (more than
    ID_SHARE of them, over more than ID_ROWS rows): an id or free text, which one-hot encoding
    turns into one input per row that predicts nothing about new rows."""
    notes = []
    for name in text_features:
        text, missing = cell_text(frame[name], na_values)
        present = text[~missing]
        distinct = len(np.unique(present.astype(str)))
        if id_like(distinct, len(present)):
            notes.append(
                f"{source_of(frame)}: column {name!r} has {distinct} distinct values in "
                f"{len(present)} rows, like an id; one-hot encoding it gives the model "
                f"{distinct} inputs that say nothing about new rows. Leave it out with "
                f"data.exclude: [{name}]"
            )
    return notes


def id_like(distinct: int, present: int) -> bool:
    """The id rule for a text column: more than ID_SHARE of its ``present`` values distinct,
    over more than ID_ROWS rows (``nncli init`` leaves such columns out with data.exclude)."""
    return present > ID_ROWS and distinct > ID_SHARE * present


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
