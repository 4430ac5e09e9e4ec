"""Moved to nncli.commands.apply, .predict and .evaluate (temporary shim, removed after the
layout merge)."""

from nncli.commands.apply import (  # noqa: F401
    READS,
    check_input_kind,
    check_table_output,
    model_inputs,
    read_data,
    stored_encoder,
)
from nncli.commands.evaluate import evaluate_file  # noqa: F401
from nncli.commands.predict import predict_files, write_table  # noqa: F401
