"""Moved to nncli.data.table (temporary shim, removed after the layout merge)."""

from nncli.data.table import (  # noqa: F401
    CLASS_LIMIT,
    MISSING,
    MOSTLY_NUMBERS,
    SCALINGS,
    apply_missing,
    check_targets,
    id_like_warnings,
    load,
    numeric_features,
    resolve,
)
