"""Moved to nncli.training.batching (temporary shim, removed after the layout merge)."""

from nncli.training.batching import (  # noqa: F401
    STREAM_AUGMENT,
    STREAM_DROPOUT,
    STREAM_SHUFFLE,
    STREAM_SPLIT,
    epoch_batches,
    resolve_batch_size,
    rng_for,
)
