"""Moved to nncli.training.loop and nncli.training.callbacks (temporary shim, removed after the
layout merge)."""

from nncli.training.callbacks import Callback, EarlyStop, EarlyStopping, History  # noqa: F401
from nncli.training.guards import diverged  # noqa: F401
from nncli.training.loop import PREDICT_BATCH, FitConfig, evaluate, fit, predict  # noqa: F401
