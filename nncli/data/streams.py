"""The seeded random streams: every random number of a run comes from ``rng_for(seed, stream,
epoch)``, one generator per (seed, stream, epoch), never from global numpy state.

Streams are kept apart so that adding one never shifts another: the data room draws the split
(``STREAM_SPLIT``) and the cross-validation folds (``STREAM_FOLDS``); training draws each
epoch's batch order (``STREAM_SHUFFLE``), dropout masks (``STREAM_DROPOUT``) and image
augmentation (``STREAM_AUGMENT``), so a run resumed at any epoch draws what an uninterrupted
run would. Here, below both rooms, because both draw from it.
"""

from __future__ import annotations

import numpy as np

STREAM_SPLIT, STREAM_SHUFFLE, STREAM_DROPOUT, STREAM_AUGMENT = 1, 2, 3, 4
STREAM_FOLDS = 5  # cross-validation folds (data/folds.py)


def rng_for(seed: int, stream: int, epoch: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream, int(epoch)])
