"""Moved to nncli.data.sequences (temporary shim, removed after the layout merge)."""

from nncli.data.sequences import (  # noqa: F401
    STATE_VERSION,
    Groups,
    SequenceEncoder,
    check_constant,
    group,
    load,
)
