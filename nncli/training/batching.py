"""Mini-batch order. Derived from the seed and the epoch alone (``STREAM_SHUFFLE`` of the seeded
streams, nncli/data/streams.py), so a run resumed at any epoch sees exactly the batches an
uninterrupted run would, and no global random state matters."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nncli.data.streams import STREAM_SHUFFLE, rng_for


def resolve_batch_size(batch_size: int | str, n: int) -> int:
    """``full`` -> n; an integer is used as it is (1 = one record at a time)."""
    return n if batch_size == "full" else int(batch_size)


def epoch_batches(
    n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True
) -> Iterator[np.ndarray]:
    """Index arrays, one per batch, covering ``range(n)`` once (reshuffled every epoch)."""
    order = rng_for(seed, STREAM_SHUFFLE, epoch).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
