"""``nncli predict --steps K``: roll a time-series forecast K steps forward.

window_{k+1} = [window_k[1:], forecast_k]: each forecast (in scaled units) becomes the newest row
of the next window, so the model forecasts step k + 1 from its own forecasts of steps 1..k. This
needs a one-step model (horizon 1) whose every input column is also a target (the only way to
know the next row's inputs); anything else is a clear error, not a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nncli.commands.predictor import Predictor
from nncli.errors import SpecError


def rolled(
    predictor: Predictor, window: np.ndarray, feedback: np.ndarray, steps: int
) -> np.ndarray:
    """x (1, W, F) scaled, feedback (F,) target index per input -> forecasts (steps, k) scaled."""
    forecasts = []
    for _ in range(steps):  # a loop over time steps: each needs the one before
        forecast = predictor.outputs(window)  # (1, k)
        forecasts.append(forecast[0])
        next_row = forecast[:, feedback].astype(window.dtype)[:, None]  # (1, 1, F)
        window = np.concatenate([window[:, 1:], next_row], axis=1)
    return np.stack(forecasts)


def forecast_files(checkpoint: Path, paths: list[Path], *, steps: int, device: str = "cpu") -> Any:
    """A table per file, one row per step 1..K: ``step`` and the forecast in the file's units."""
    import pandas as pd

    if steps < 1:
        raise SpecError(f"expected a positive number of steps, got {steps}", field="--steps")
    predictor = Predictor.load(checkpoint, device)
    encoder = predictor.encoder
    if encoder.kind != "timeseries":
        raise SpecError(
            f"rolling forecasts need a time-series model; {checkpoint} is a "
            f"{encoder.kind or 'different'} model",
            field="--steps",
        )
    feedback = encoder.feedback()
    tables = []
    for path in paths:
        window, _ = encoder.inputs(encoder.read_frame(path))
        forecasts = rolled(predictor, window, feedback, steps)
        tables.append(pd.DataFrame({"step": np.arange(1, steps + 1), **encoder.decode(forecasts)}))
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
