"""Moved to nncli.commands.train and nncli.commands.resume (temporary shim, removed after the
layout merge)."""

from nncli.commands.resume import (  # noqa: F401
    RESUME_MAY_CHANGE,
    first_difference,
    resume_command,
)
from nncli.commands.train import (  # noqa: F401
    SMOKE_ROWS,
    TrainResult,
    refuse_outputs_on_inputs,
    train,
)
from nncli.training.callbacks import PeriodicCheckpoints  # noqa: F401
