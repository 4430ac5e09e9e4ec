"""Moved to nncli.spec.build (temporary shim, removed after the layout merge)."""

from nncli.spec.build import backend_for, loss, network, optimizer, resolve_layers  # noqa: F401
