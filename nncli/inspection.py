"""Moved to nncli.commands.inspect and nncli.commands.validate (temporary shim, removed after
the layout merge)."""

from nncli.commands.inspect import inspect  # noqa: F401
from nncli.commands.validate import validate  # noqa: F401
