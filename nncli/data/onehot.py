"""The one one-hot encoding every data kind uses: class ids -> rows with a single 1.

Table categories and class labels, image classes and text symbols all encode through
``one_hot``, so an unknown value (id -1) reads the same everywhere: a row of zeros.
"""

from __future__ import annotations

import numpy as np


def one_hot(ids: np.ndarray, size: int) -> np.ndarray:
    """int ids (...) -> float32 (..., size); an id of -1 (an unknown value) gives all zeros."""
    ids = np.asarray(ids)
    out = np.zeros((*ids.shape, size), dtype=np.float32)
    np.put_along_axis(out, np.maximum(ids, 0)[..., None], 1.0, axis=-1)
    if (ids < 0).any():
        out[ids < 0] = 0.0
    return out
