"""Moved to nncli.checkpoint.model (temporary shim, removed after the layout merge)."""

from nncli.checkpoint.model import Model, history_columns, load, save  # noqa: F401
