"""Moved to nncli.checkpoint.folder (temporary shim, removed after the layout merge)."""

from nncli.checkpoint.folder import (  # noqa: F401
    HDF5_SIGNATURE,
    PLAIN_STEM,
    TEMP_NAME,
    RunFiles,
    alive,
    check_outputs,
    check_replace,
    continues,
    history_csv,
    is_hdf5,
    remove_stale_temps,
    removed_note,
    run_files,
    temp_path,
    write_text_atomic,
)
