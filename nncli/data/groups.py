"""A sequence CSV's rows grouped into sequences: ``Groups`` (which rows, in which order, at which
step of which sequence), ``group`` (a frame's rows by their id column, ordered) and
``check_padding`` (the memory padding them to the longest would take, checked first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nncli.bounds.limits import over_memory, size_text
from nncli.data.csv_reader import (
    cell_text,
    describe_rows,
    describe_values,
    parse_numbers,
    source_of,
)
from nncli.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Groups:
    """A frame's rows as sequences: ``rows`` lists frame positions sequence after sequence, each
    in step order; ``seq`` and ``pos`` give each of those rows' sequence and step."""

    ids: np.ndarray  # (N,) each sequence's id, in the order the ids first appear
    rows: np.ndarray  # (R,)
    seq: np.ndarray  # (R,)
    pos: np.ndarray  # (R,)

    @property
    def lengths(self) -> np.ndarray:
        return np.bincount(self.seq, minlength=len(self.ids))

    def mask(self) -> np.ndarray:
        """(N, T) booleans, True at real steps; T = the longest sequence."""
        lengths = self.lengths
        return np.arange(lengths.max())[None, :] < lengths[:, None]

    def pad(self, values: np.ndarray) -> np.ndarray:
        """Per-row values (R, ...), in ``rows`` order -> (N, T, ...) of their dtype, zeros after
        the end."""
        shape = (len(self.ids), int(self.lengths.max()), *values.shape[1:])
        out = np.zeros(shape, values.dtype)
        out[self.seq, self.pos] = values
        return out

    def padded_steps(self) -> int:
        """Steps in the padded arrays: N sequences times the longest's length."""
        return len(self.ids) * int(self.lengths.max(initial=0))

    def first_rows(self) -> np.ndarray:
        """Index into ``rows`` of each sequence's first step (N,)."""
        return np.flatnonzero(self.pos == 0)

    def subset(self, which: np.ndarray) -> Groups:
        """The sequences ``which`` (sorted indices), renumbered 0..len(which) - 1."""
        keep = np.isin(self.seq, which)
        renumber = np.full(len(self.ids), -1)
        renumber[which] = np.arange(len(which))
        return Groups(self.ids[which], self.rows[keep], renumber[self.seq[keep]], self.pos[keep])


def check_padding(parts: list[Groups], step_bytes: int, source: str) -> None:
    """DataError before any padding when the padded arrays of ``parts`` (each (N, T, ...), T
    its longest sequence) at ``step_bytes`` bytes a step would pass the memory limit, naming the
    longest sequence and the memory it would take (``limits.over_memory``)."""
    need = sum(g.padded_steps() for g in parts) * step_bytes
    over = over_memory(need)
    if over is None:
        return
    longest = max(parts, key=lambda g: int(g.lengths.max(initial=0)))
    i = int(np.argmax(longest.lengths))
    n = sum(len(g.ids) for g in parts)
    raise DataError(
        f"sequence {longest.ids[i]!r} has {int(longest.lengths[i]):,} steps: padding the {n:,} "
        f"sequences to the longest takes {size_text(need)}, {over}; or shorten or split the "
        "longest sequences",
        where=source,
    )


def group(frame: pd.DataFrame, id_column: str, order: str | None) -> Groups:
    """Group a frame's rows by ``id_column``, each sequence sorted by the ``order`` column."""
    import pandas as pd

    text, missing = cell_text(frame[id_column])
    if missing.any():
        raise DataError(
            f"column {id_column!r} (the sequence id) is empty on {describe_rows(frame, missing)};"
            " every row needs the id of its sequence",
            where=source_of(frame),
        )
    codes, ids = pd.factorize(pd.Series(text, dtype=object))  # codes in first-appearance order
    codes = np.asarray(codes, dtype=np.int64)
    if order is None:
        rows = np.argsort(codes, kind="stable")
    else:
        order_text, order_missing = cell_text(frame[order])
        steps, bad = parse_numbers(order_text, order_missing)
        if (bad | order_missing).any():
            found = describe_values(order_text[bad]) if bad.any() else "empty cells"
            raise DataError(
                f"column {order!r} (the step order) expects numbers, found {found} on "
                f"{describe_rows(frame, bad | order_missing)}",
                where=source_of(frame),
            )
        rows = np.lexsort((steps, codes))
        twice = (codes[rows][1:] == codes[rows][:-1]) & (steps[rows][1:] == steps[rows][:-1])
        if twice.any():
            i = int(np.argmax(twice))
            same = np.zeros(len(frame), dtype=bool)
            same[rows[[i, i + 1]]] = True
            raise DataError(
                f"sequence {ids[codes[rows[i]]]!r} has {order} {order_text[rows[i]]!r} on more "
                f"than one row ({describe_rows(frame, same)})",
                where=source_of(frame),
            )
    seq = codes[rows]
    lengths = np.bincount(seq, minlength=len(ids))
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(len(rows)) - starts[seq]
    return Groups(np.asarray(ids, dtype=object), rows, seq, pos)
