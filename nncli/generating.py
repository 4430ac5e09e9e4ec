"""Moved to nncli.commands.generate (temporary shim, removed after the layout merge)."""

from nncli.commands.generate import generate, next_distribution, text_encoder  # noqa: F401
