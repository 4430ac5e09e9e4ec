"""Moved to nncli.commands.forecast (temporary shim, removed after the layout merge)."""

from nncli.commands.forecast import forecast_files, rolled  # noqa: F401
