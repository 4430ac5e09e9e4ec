"""Moved to nncli.training.metrics (temporary shim, removed after the layout merge)."""

from nncli.training.metrics import (  # noqa: F401
    RunningMetrics,
    classification_report,
    predicted_classes,
)
