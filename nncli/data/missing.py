"""``data.missing`` on a labelled table: which rows training (and evaluate) leave out, and the
line that says how many and why.

error: a DataError naming the column and rows. drop: rows with any missing value go. fill: only
rows with a missing target go; the encoder fills features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nncli.data.csv_reader import cell_missing, describe_rows, describe_values, source_of
from nncli.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def apply_missing(
    frame: pd.DataFrame,
    features: list[str],
    targets: list[str],
    policy: str,
    na_values: Sequence[str],
    check: bool = False,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Apply ``missing: error | drop | fill`` to a labelled frame -> the rows to train on.

    ``check``: first check that the frame has every column (for separate validation/test
    files). ``notes``: gets one line saying how many rows were left out, which and why.
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
    if not dropped.any():
        return frame
    if notes is not None:
        notes.append(left_out(frame, missing, dropped, policy))
    return frame.iloc[np.flatnonzero(~dropped)]


def left_out(
    frame: pd.DataFrame,
    missing: dict[str, np.ndarray],
    dropped: np.ndarray,
    policy: str,
) -> str:
    """``penguins.csv: left out the rows with no target ('species' empty): lines 5, 273 (2 of
    344 rows); data.missing: fill fills features, never the target``."""
    empty = [name for name, mask in missing.items() if (mask & dropped).any()]
    if policy == "fill":
        what = f"the rows with no target ({describe_values(empty)} empty)"
        why = "data.missing: fill fills features, never the target"
    else:
        counts = ", ".join(f"{name!r} {int((missing[name] & dropped).sum())}" for name in empty)
        what = f"the rows with an empty cell ({counts})"
        why = "data.missing: drop leaves out every row with one"
    return f"{source_of(frame)}: left out {what}: {describe_rows(frame, dropped)}; {why}"
