"""Moved to nncli.spec.resolve (temporary shim, removed after the layout merge)."""

from nncli.spec.resolve import Resolved, input_shape, monitors, resolve  # noqa: F401
