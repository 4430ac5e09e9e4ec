"""Moved to nncli.checkpoint.lock (temporary shim, removed after the layout merge)."""

from nncli.checkpoint.folder import alive  # noqa: F401
from nncli.checkpoint.lock import LOCK_NAME, hold, other_hosts  # noqa: F401
