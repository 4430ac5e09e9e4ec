"""Moved to nncli.data.csv_reader (temporary shim, removed after the layout merge)."""

from nncli.data.csv_reader import (  # noqa: F401
    SHOW,
    all_numbers,
    canonical_numbers,
    cell_missing,
    cell_numbers,
    cell_text,
    column_numbers,
    describe_rows,
    describe_values,
    not_numbers,
    parse_numbers,
    read_table,
    record_lines,
    require_columns,
    source_of,
)
