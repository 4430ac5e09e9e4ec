"""Moved to nncli.training.guards (temporary shim, removed after the layout merge)."""

from nncli.training.guards import (  # noqa: F401
    CHUNK,
    SIGNALS,
    FiniteWeights,
    SignalStop,
    diverged,
    require_finite,
    stopped,
)
