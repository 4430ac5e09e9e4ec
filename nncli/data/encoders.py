"""Moved to nncli.data.table_encoder (temporary shim, removed after the layout merge)."""

from nncli.data.table_encoder import (  # noqa: F401
    STATE_VERSION,
    CategoricalColumn,
    NumericColumn,
    TabularEncoder,
)
