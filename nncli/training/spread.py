"""Rank 0 reads the data and sends each rank the rows it needs: the memory of a shared run.

With several processes (nncli/training/parallel.py) only rank 0 reads the data files.
``share_dataset`` sends the others, once, what a Dataset says about itself and the arrays every
rank holds whole (targets, masks of padded steps: small beside the inputs); the inputs of each
part become a ``Spread``: on rank 0 the whole array, elsewhere only its shape and dtype.

Before an epoch, ``Spread.hold`` gives each rank the rows of its shares of that epoch's batches
(rank 0 sends them one rank at a time, so it holds at most one other rank's rows extra); a rank
then indexes them by global row number (``HeldRows``), so ``fit`` and ``evaluate`` read a batch
the same way whoever holds the rows. A rank other than 0 holds 1/size of the training inputs,
and 1/size of the validation and test inputs (sent once, kept for the run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nncli.data.dataset import Dataset
from nncli.data.shipping import layouts, pack, unpack
from nncli.training.parallel import World, share_of


class HeldRows:
    """Some rows of a (total, ...) array, read by their global row numbers (a slice, an index
    array); reading a row this rank was not given is an internal error, never a zero row."""

    def __init__(self, total: int, positions: np.ndarray, rows: np.ndarray):
        self.shape = (int(total), *rows.shape[1:])
        self.dtype = rows.dtype
        self.rows = rows
        self.local = np.full(total, -1, dtype=np.int64)
        self.local[positions] = np.arange(len(positions))

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes)

    def __getitem__(self, key: Any) -> np.ndarray:
        at = self.local[key]
        if len(at) and at.min() < 0:
            raise RuntimeError("a row this rank was not sent was read (a share mismatch)")
        return self.rows[at]


class Spread:
    """One part's inputs across the ranks: ``whole`` on rank 0, None on the others."""

    def __init__(self, world: World, whole: np.ndarray | None, shape: tuple, dtype: Any):
        self.world, self.whole = world, whole
        self.shape, self.dtype = tuple(int(d) for d in shape), np.dtype(dtype)
        self.kept: dict[Any, Any] = {}  # ``hold(..., keep=key)``: rows held for the run

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: slice) -> Spread:
        """The first rows (``[:k]``, a smoke run's), still spread."""
        if not isinstance(key, slice) or key.start not in (None, 0) or key.step not in (None, 1):
            raise TypeError("a spread part is read through hold(); only [:k] slices it")
        whole = None if self.whole is None else self.whole[key]
        rows = len(range(*key.indices(len(self))))
        return Spread(self.world, whole, (rows, *self.shape[1:]), self.dtype)

    def hold(self, positions: Callable[[int], np.ndarray], keep: Any = None) -> Any:
        """Every rank's rows ``positions(rank)`` (global numbers) sent to it by rank 0 -> what
        this rank indexes by global row: the whole array on rank 0, its ``HeldRows`` elsewhere.
        ``keep``: a key under which the rows stay for later calls (validation every epoch)."""
        if keep is not None and keep in self.kept:
            return self.kept[keep]
        world = self.world
        if world.lead:
            for rank in range(1, world.size):
                world.send(np.ascontiguousarray(self.whole[positions(rank)]), rank)
            held: Any = self.whole
        else:
            mine = positions(world.rank)
            rows = world.receive(np.empty((len(mine), *self.shape[1:]), dtype=self.dtype))
            held = HeldRows(len(self), mine, rows)
        if keep is not None:
            self.kept[keep] = held
        return held


def is_spread(x: Any) -> bool:
    """A shared run's inputs: a ``Spread``, or a dict of them (several inputs)."""
    return isinstance(x, Spread) or (
        isinstance(x, dict) and isinstance(next(iter(x.values())), Spread)
    )


def hold(x: Any, positions: Callable[[int], np.ndarray], keep: Any = None) -> Any:
    """``Spread.hold`` of the inputs, or of each of several inputs (a dict)."""
    if isinstance(x, dict):
        return {k: s.hold(positions, None if keep is None else (keep, k)) for k, s in x.items()}
    return x.hold(positions, keep)


def whole_rows(x: Any) -> Any:
    """Rank 0's whole inputs of a spread part (a dict of them for several inputs); anything
    else as it is."""
    if isinstance(x, dict):
        return {k: getattr(v, "whole", v) for k, v in x.items()}
    return getattr(x, "whole", x)


def batch_positions(world: World, batches: Iterable[Any]) -> Callable[[int], np.ndarray]:
    """rank -> the global row numbers of its shares of ``batches`` (index arrays or slices), in
    batch order: what ``Spread.hold`` sends that rank for them."""
    batches = list(batches)

    def of(rank: int) -> np.ndarray:
        parts = []
        for idx in batches:
            rows = np.arange(idx.start, idx.stop) if isinstance(idx, slice) else np.asarray(idx)
            parts.append(rows[share_of(len(rows), rank, world.size)])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    return of


def held_bytes(x: Any) -> int:
    """The bytes of inputs this rank holds (for the tests and the memory figures of
    docs/guides/more-than-one-process.md)."""
    return int(x.nbytes) if hasattr(x, "nbytes") else 0


def share_dataset(world: World, ds: Dataset | None) -> Dataset:
    """Rank 0's loaded ``ds`` -> on every rank a Dataset whose inputs are ``Spread`` and whose
    other arrays are rank 0's (the other ranks pass None and read no file)."""
    if world.lead:
        description, arrays = pack(ds)
    else:
        description, arrays = b"", {}
    size = world.broadcast(np.array([len(description)], dtype=np.int64))
    text = np.frombuffer(description, dtype=np.uint8).copy() if world.lead else None
    if text is None:
        text = np.empty(int(size[0]), dtype=np.uint8)
    description = world.broadcast(text).tobytes()
    for name, (shape, dtype) in sorted(layouts(description).items()):
        buffer = arrays[name] if world.lead else np.empty(shape, dtype=dtype)
        arrays[name] = world.broadcast(buffer)
    whole = {name: part.x for name, part in ds.parts.items()} if world.lead else {}

    def inputs(part: str, shape: tuple, dtype: Any, key: str | None = None) -> Spread:
        given = whole.get(part)  # several inputs (data.inputs): a Spread each, by ``key``
        return Spread(world, given if key is None or given is None else given[key], shape, dtype)

    shared = unpack(description, arrays, inputs)
    if world.lead:  # rank 0 keeps what it loaded (its encoder, its notes), inputs spread
        shared.encoder, shared.augment, shared.warnings = ds.encoder, ds.augment, ds.warnings
    return shared
