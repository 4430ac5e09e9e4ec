"""CSV files -> Dataset: read, check the columns, apply the missing-value policy, split, encode.

Rows in messages are line numbers as an editor shows them: the header is line 1, the first data
row line 2 (blank lines and line breaks inside quoted fields count as they do in the file).
pandas is imported inside the functions that need it, so ``import nncli.data`` stays quick.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.data.dataset import Dataset, task_for_loss
from nncli.data.split import split_rows
from nncli.errors import DataError, SpecError

if TYPE_CHECKING:
    import pandas as pd

SHOW = 5  # rows or values a message lists before "..."
MOSTLY_NUMBERS = 0.9  # a column with this share of numbers is numeric with typos, not text
MISSING = ("error", "drop", "fill")
SCALINGS = ("standard", "minmax", "none")


# -- reading -------------------------------------------------------------------------------------


def read_table(path: Path, na_values: Sequence[str] = ()) -> pd.DataFrame:
    """CSV file -> frame of text cells (object dtype, the file's row order); missing cells are NaN.

    Only empty fields and the ``na_values`` strings are missing, so "NA" in a text column is data.
    """
    import pandas as pd

    path = Path(path)
    # pandas pads a short row with missing values without a word; the csv pass catches ragged
    # rows (and bad bytes, empty files) first, with the exact line.
    header = _check_records(path)
    try:
        frame = pd.read_csv(
            path,
            dtype=object,
            keep_default_na=False,
            na_values=["", *na_values],
            encoding="utf-8-sig",
            index_col=False,
        )
    except (OSError, ValueError) as err:  # pandas' ParserError is a ValueError
        raise DataError(f"cannot read it as CSV: {err}", where=str(path)) from err
    frame.columns = header
    frame.attrs["nncli_path"] = str(path)
    return frame


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each non-blank record of a CSV file, the header first."""
    reader: Any = None
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file)
            line = 1
            for fields in reader:
                if fields:
                    yield line, fields
                line = reader.line_num + 1
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except csv.Error as err:
        raise DataError(f"line {reader.line_num}: {err}", where=str(path)) from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None


def _check_records(path: Path) -> list[str]:
    """The header's column names, after checking every record has one field per column."""
    records = _records(path)
    first = next(records, None)
    if first is None:
        raise DataError("the file is empty; expected a header row and data rows", where=str(path))
    header = [name.strip() for name in first[1]]
    for i, name in enumerate(header):
        if not name:
            raise DataError(f"column {i + 1} of the header has no name", where=str(path))
        if name in header[:i]:
            raise DataError(f"column {name!r} appears twice in the header", where=str(path))
    n_rows = 0
    for line, fields in records:
        n_rows += 1
        if len(fields) != len(header):
            raise DataError(
                f"line {line} has {len(fields)} fields, expected {len(header)} like the header",
                where=str(path),
            )
    if n_rows == 0:
        raise DataError("the file has a header but no data rows", where=str(path))
    return header


def _not_utf8(path: Path) -> DataError:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        position = 0
    except UnicodeDecodeError as err:
        position = err.start
    line = raw.count(b"\n", 0, position) + 1
    return DataError(
        f"line {line}: byte 0x{raw[position]:02x} is not UTF-8 text; save the file as UTF-8",
        where=str(path),
    )


def record_lines(path: Path) -> np.ndarray:
    """Line number where each data record of ``path`` starts (the header is line 1)."""
    return np.array([line for line, _ in _records(Path(path))][1:], dtype=np.int64)


# -- cells ---------------------------------------------------------------------------------------


def cell_text(column: pd.Series, na_values: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """A column -> (stripped text, object (N,); missing, bool (N,)). Missing cells hold ""."""
    missing = np.array(column.isna(), dtype=bool)  # copies: pandas hands out read-only views
    text = np.array(column.astype(str).str.strip(), dtype=object)
    text[missing] = ""
    missing |= (text == "") | np.isin(text, list(na_values))
    text[missing] = ""
    return text, missing


def parse_numbers(text: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Text (N,) -> (float64 (N,), NaN where missing; bad (N,): present but not a finite number)."""
    import pandas as pd

    values = np.array(pd.to_numeric(pd.Series(text, dtype=object), errors="coerce"), dtype=float)
    bad = ~missing & ~np.isfinite(values)
    values[missing] = np.nan
    return values, bad


def all_numbers(text: np.ndarray) -> bool:
    """True when every (present) text value is a finite number."""
    return not parse_numbers(text, np.zeros(len(text), dtype=bool))[1].any()


def canonical_numbers(text: np.ndarray) -> np.ndarray:
    """One spelling per number: "2007.0" and "2007" -> "2007", "1e-1" -> "0.1"; other text stays."""
    uniques, inverse = np.unique(np.asarray(text, dtype=str), return_inverse=True)
    spelled = np.array([_spell(u) for u in uniques], dtype=object)  # distinct values only
    return spelled[inverse.reshape(-1)]


def _spell(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return str(text)
    if not np.isfinite(number):
        return str(text)
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(number)


def source_of(frame: pd.DataFrame) -> str:
    """The file a frame was read from, for messages."""
    return frame.attrs.get("nncli_path", "data")


def describe_rows(frame: pd.DataFrame, mask: np.ndarray) -> str:
    """Rows where ``mask`` holds -> "lines 5, 273 (2 of 344 rows)", at most SHOW lines listed."""
    positions = np.flatnonzero(mask)
    labels = frame.index.to_numpy()[positions[:SHOW]]
    lines = positions[:SHOW] + 2
    path = frame.attrs.get("nncli_path")
    if path and labels.dtype.kind in "iu":  # index labels are the file's record numbers
        all_lines = record_lines(Path(path))
        if len(labels) and labels.max() < len(all_lines):
            lines = all_lines[labels]
    shown = ", ".join(str(n) for n in lines) + (", ..." if len(positions) > SHOW else "")
    word = "line" if len(positions) == 1 else "lines"
    return f"{word} {shown} ({len(positions)} of {len(frame)} rows)"


def describe_values(values: np.ndarray) -> str:
    """Distinct values -> "'abc', 'x'", at most SHOW listed."""
    distinct = list(dict.fromkeys(str(v) for v in values))
    return ", ".join(repr(v) for v in distinct[:SHOW]) + (", ..." if len(distinct) > SHOW else "")


# -- loading -------------------------------------------------------------------------------------


def resolve(path: Any, base_dir: Path) -> Path:
    """A spec path: absolute, or relative to the spec file's folder."""
    path = Path(path)
    return path if path.is_absolute() else Path(base_dir) / path


def load(cfg: Any, base_dir: Path, seed: int, loss: str) -> Dataset:
    """``data: {kind: csv, ...}`` -> Dataset, the encoder fitted on the training part only.

    Validation and test rows drawn from the training file encode categories unseen in the
    training part as all zeros; separate ``validation:``/``test:`` files must not have any.
    """
    from nncli.data.encoders import TabularEncoder  # encoders imports this module's helpers

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
    frame = read_table(path, na_values)
    targets, features, categorical = _columns(cfg, list(frame.columns), path)
    frame = apply_missing(frame, features, targets, missing, na_values)
    numeric = _numeric_columns(frame, features, categorical, na_values)
    strata = _check_targets(frame, targets, task, loss, na_values)

    files = {part: getattr(cfg, part, None) for part in ("validation", "test")}
    fractions = {
        part: 0.0 if files[part] else float(getattr(cfg, f"{part}_split", 0.0) or 0.0)
        for part in ("validation", "test")
    }
    if fractions["validation"] + fractions["test"] >= 1:
        raise SpecError(
            f"validation_split + test_split must leave rows for training, got "
            f"{fractions['validation']} + {fractions['test']}",
            field="data.validation_split",
        )
    train, val, test = split_rows(
        len(frame), seed, fractions["validation"], fractions["test"], strata
    )
    for part, rows in (("validation", val), ("test", test)):
        if fractions[part] > 0 and len(rows) == 0:
            raise DataError(
                f"{fractions[part]} of {len(frame)} rows leaves no {part} rows",
                field=f"data.{part}_split",
            )

    encoder = TabularEncoder.fit(
        frame.iloc[train],
        features=features,
        numeric=numeric,
        targets=targets,
        loss=loss,
        normalize=normalize,
        missing=missing,
        na_values=na_values,
    )

    def encode(part: str, rows: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        if files.get(part):
            other = read_table(resolve(files[part], base_dir), na_values)
            other = apply_missing(other, features, targets, missing, na_values, check=True)
            return encoder.transform(other), encoder.targets(other)
        if part != "train" and len(rows) == 0:
            return None, None
        sub = frame.iloc[rows]
        return encoder.transform(sub, unknown="ignore"), encoder.targets(sub)

    x_train, y_train = encode("train", train)
    x_val, y_val = encode("validation", val)
    x_test, y_test = encode("test", test)
    return Dataset(task, x_train, y_train, x_val, y_val, x_test, y_test, encoder, str(path))


def _columns(cfg: Any, header: list[str], path: Path) -> tuple[list[str], list[str], list[str]]:
    """(targets, features, categorical) column names, each checked against the header."""

    def check(names: list[str], field: str, choices: list[str], what: str) -> None:
        for name in names:
            if name not in choices:
                from nncli.engine.registry import did_you_mean  # only on this error path

                raise DataError(
                    f"column {name!r} not in {what}" + did_you_mean(name, choices), field=field
                )

    targets = [cfg.target] if isinstance(cfg.target, str) else list(cfg.target)
    check(targets, "data.target", header, path.name)
    features = list(dict.fromkeys(getattr(cfg, "features", None) or []))
    check(features, "data.features", header, path.name)
    both = [name for name in features if name in targets]
    if both:
        raise DataError(f"column {both[0]!r} is also the target", field="data.features")
    features = features or [name for name in header if name not in targets]
    if not features:
        raise DataError(f"{path.name} has no columns besides the target", field="data.features")
    categorical = list(getattr(cfg, "categorical", None) or [])
    check(categorical, "data.categorical", features, "the feature columns")
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
    missing = {name: cell_text(frame[name], na_values)[1] for name in [*targets, *features]}
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
        raise DataError(
            f"no rows left after dropping {len(frame)} rows with missing values",
            where=source_of(frame),
        )
    return frame.iloc[np.flatnonzero(~dropped)] if dropped.any() else frame


def _numeric_columns(
    frame: pd.DataFrame, features: list[str], categorical: list[str], na_values: Sequence[str]
) -> list[str]:
    """Features whose present values are all numbers (and not listed as categorical)."""
    numeric = []
    for name in features:
        if name in categorical:
            continue
        text, missing = cell_text(frame[name], na_values)
        bad = parse_numbers(text, missing)[1]
        if not bad.any():
            numeric.append(name)
        elif (~missing & ~bad).sum() >= MOSTLY_NUMBERS * (~missing).sum():
            raise DataError(
                f"column {name!r} holds numbers except {describe_values(text[bad])} on "
                f"{describe_rows(frame, bad)}; fix those values, list placeholders in "
                "data.na_values, or name the column in data.categorical",
                where=source_of(frame),
            )
    return numeric


def _check_targets(
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
        labels = canonical_numbers(text) if all_numbers(text) else text
        classes, codes = np.unique(labels.astype(str), return_inverse=True)
        wanted = "exactly 2" if loss == "binary_cross_entropy" else "at least 2"
        if len(classes) < 2 or (loss == "binary_cross_entropy" and len(classes) != 2):
            raise DataError(
                f"{loss} needs {wanted} classes; column {targets[0]!r} has {len(classes)}: "
                f"{describe_values(classes)}",
                field="data.target",
            )
        return codes.reshape(-1)
    for name in targets:
        text, missing = cell_text(frame[name], na_values)
        bad = parse_numbers(text, missing)[1]
        if bad.any():
            raise DataError(
                f"regression (loss: {loss}) needs numbers; column {name!r} has "
                f"{describe_values(text[bad])} on {describe_rows(frame, bad)} (for classes use "
                "loss: cross_entropy)",
                field="data.target",
            )
    return None
