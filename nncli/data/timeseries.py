"""Time series: one CSV row per time step -> windows of history and the value ``horizon`` on.

x (N, window, F): the ``columns`` of rows s .. s + window - 1; y (N, k): the ``target`` columns
at row s + window - 1 + horizon. Window starts s are ``stride`` apart. Inputs and targets are
scaled with statistics of the training rows only (``normalize``), and predictions are mapped
back to the file's units, so a target that is also an input has the same scale in both.

The split is chronological: the test rows are the tail, the validation rows the stretch before
it. A window belongs to the part that holds its target row; its history may reach back into the
part before (a forecaster knows the past), and no training window sees a later part's values.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.data.columns import NumericColumn, numeric_from_state, numeric_state
from nncli.data.csv_reader import (
    cell_text,
    column_numbers,
    describe_rows,
    require_columns,
    source_of,
)
from nncli.data.dataset import Dataset, Part, state_text, task_for_loss
from nncli.data.encoder import Encoder
from nncli.data.header import check_names
from nncli.data.readers import read_table
from nncli.data.split import part_size
from nncli.data.table import resolve
from nncli.errors import DataError, ShapeError, SpecError

if TYPE_CHECKING:
    import pandas as pd

STATE_VERSION = 1


def numeric_columns(frame: pd.DataFrame, names: list[str], what: str) -> np.ndarray:
    """The named columns as float64 (rows, len(names)); every cell must hold a finite number."""
    require_columns(frame, names, what)
    blocks = []
    for name in names:
        text, missing = cell_text(frame[name])
        if missing.any():
            raise DataError(
                f"column {name!r} has missing values on {describe_rows(frame, missing)}; "
                "a time series needs a value at every step",
                where=source_of(frame),
            )
        blocks.append(column_numbers(frame, name, text, missing)[:, None])
    return np.concatenate(blocks, axis=1)


def window_indices(starts: np.ndarray, window: int) -> np.ndarray:
    """(N,) window starts -> (N, window) row indices, for one fancy-indexing gather."""
    return starts[:, None] + np.arange(window)


class TimeseriesEncoder(Encoder):
    """Rows of a series -> scaled windows (N, window, F); outputs (N, k) -> the file's units."""

    kind = "timeseries"
    tabular = True
    task = "regression"

    def __init__(
        self,
        inputs: list[NumericColumn],
        targets: list[NumericColumn],
        window: int,
        horizon: int = 1,
        stride: int = 1,
        delimiter: str = ",",
    ):
        self.input_columns = inputs
        self.delimiter = delimiter
        self.target_columns = targets
        self.window, self.horizon, self.stride = int(window), int(horizon), int(stride)

    # -- what it knows ---------------------------------------------------------------------------

    @property
    def labels(self) -> None:
        return None

    @property
    def feature_names(self) -> list[str]:
        return [column.name for column in self.input_columns]

    @property
    def target_names(self) -> list[str]:
        return [column.name for column in self.target_columns]

    def row_columns(self) -> list[dict[str, Any]]:
        """Each input column, then the targets that are not inputs: ``Encoder.row_columns``.
        The last ``window`` rows make the forecast."""
        inputs = [c.described() for c in self.input_columns]
        names = set(self.feature_names)
        targets = [n for n in self.target_names if n not in names]
        return inputs + [{"name": n, "role": "target", "type": "number"} for n in targets]

    # -- scaling ---------------------------------------------------------------------------------

    def _scale(self, values: np.ndarray, columns: list[NumericColumn]) -> np.ndarray:
        """float64 values -> scaled, in the encoder's dtype (float64 stays unrounded)."""
        offset = np.array([c.offset for c in columns])
        scale = np.array([c.scale for c in columns])
        return ((values - offset) / scale).astype(self.dtype)

    def unscale_targets(self, y: np.ndarray) -> np.ndarray:
        """Scaled targets (N, k) -> the file's units, float64."""
        offset = np.array([c.offset for c in self.target_columns])
        scale = np.array([c.scale for c in self.target_columns])
        return np.asarray(y, dtype=np.float64) * scale + offset

    def scaled_series(self, frame: pd.DataFrame, targets: bool = False) -> np.ndarray:
        """The input (or target) columns of every row, scaled: (rows, F or k) in ``dtype``."""
        columns = self.target_columns if targets else self.input_columns
        what = "target" if targets else "input"
        values = numeric_columns(frame, [c.name for c in columns], what)
        return self._scale(values, columns)

    # -- new data --------------------------------------------------------------------------------

    def read_frame(self, path: str | Path) -> pd.DataFrame:
        return read_table(Path(path), delimiter=self.delimiter)

    def inputs(self, frame: pd.DataFrame, unknown: str = "error") -> tuple[np.ndarray, None]:
        """The last ``window`` rows -> x (1, window, F): the input of the next forecast."""
        if len(frame) < self.window:
            raise DataError(
                f"the model forecasts from the last {self.window} rows (its window); the file "
                f"has {len(frame)}",
                where=source_of(frame),
            )
        return self.scaled_series(frame.iloc[len(frame) - self.window :])[None], None

    def transform(self, data: Any, unknown: str = "error") -> np.ndarray:
        frame = data if not isinstance(data, (str, Path)) else self.read_frame(data)
        return self.inputs(frame, unknown)[0]

    def labelled(
        self, frame: pd.DataFrame, unknown: str = "error"
    ) -> tuple[np.ndarray, np.ndarray, None]:
        """Every window of the file that has a target (``stride`` apart): x, y, no mask."""
        need = self.window + self.horizon
        if len(frame) < need:
            raise DataError(
                f"window {self.window} + horizon {self.horizon} needs at least {need} rows; the "
                f"file has {len(frame)}",
                where=source_of(frame),
            )
        series, targets = self.scaled_series(frame), self.scaled_series(frame, targets=True)
        starts = np.arange(0, len(frame) - need + 1, self.stride)
        return self.windows(series, targets, starts)

    def windows(
        self, series: np.ndarray, targets: np.ndarray, starts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, None]:
        """Scaled rows and window starts -> x (N, window, F), y (N, k), no mask."""
        x = series[window_indices(starts, self.window)]
        y = targets[starts + self.window - 1 + self.horizon]
        return x, y, None

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return self.labelled(frame)[1]

    def id_columns(self, frame: Any) -> dict[str, np.ndarray]:
        """``step``: how many rows after the file's last one the forecast is for."""
        return {"step": np.array([self.horizon])}

    def decode(
        self, output: np.ndarray, proba: bool = False, mask: Any = None
    ) -> dict[str, np.ndarray]:
        """Outputs (N, k) in scaled units -> ``prediction`` (or ``prediction_<target>`` per
        target) in the file's units."""
        output = np.asarray(output)
        if output.ndim != 2 or output.shape[1] != len(self.target_columns):
            raise ShapeError(
                f"expected network outputs of shape (N, {len(self.target_columns)}), got "
                f"{output.shape}"
            )
        values = self.unscale_targets(output)
        if len(self.target_columns) == 1:
            return {"prediction": values[:, 0]}
        return {f"prediction_{name}": values[:, j] for j, name in enumerate(self.target_names)}

    def feedback(self) -> np.ndarray:
        """For rolling forecasts: the target index that feeds each input column (F,).

        A forecast can only be fed back as the next row when the model forecasts one step and
        every input column is among its targets (with the same scaling)."""
        if self.horizon != 1:
            raise SpecError(
                f"each forecast is fed back as the next row, which needs horizon 1; this "
                f"model forecasts {self.horizon} steps ahead",
                field="--steps",
            )
        names = self.target_names
        for column in self.input_columns:
            if column.name not in names:
                raise SpecError(
                    f"each forecast is fed back as the next row, so every input column "
                    f"must be a target; input {column.name!r} is not (targets: {', '.join(names)})",
                    field="--steps",
                )
        return np.array([names.index(column.name) for column in self.input_columns], dtype=np.int64)

    # -- checkpoint state ------------------------------------------------------------------------

    def to_state(self) -> dict:
        # only a delimiter other than "," is stored: older checkpoints then resume unchanged
        delimiter = {"delimiter": self.delimiter} if self.delimiter != "," else {}
        dtype = {"dtype": self.dtype} if self.dtype != "float32" else {}  # the same for dtype
        return {
            **delimiter,
            **dtype,
            "kind": self.kind,
            "version": STATE_VERSION,
            "window": self.window,
            "horizon": self.horizon,
            "stride": self.stride,
            "inputs": numeric_state(self.input_columns, fill=False),
            "targets": numeric_state(self.target_columns, fill=False),
        }

    @classmethod
    def from_state(cls, state: dict) -> TimeseriesEncoder:
        encoder = cls(
            numeric_from_state(state["inputs"], "inputs"),
            numeric_from_state(state["targets"], "targets"),
            int(state["window"]),
            int(state["horizon"]),
            int(state.get("stride", 1)),
            state_text(state.get("delimiter", ",")),
        )
        encoder.dtype = state_text(state.get("dtype", "float32"))
        return encoder


def load(cfg: Any, base_dir: Path, seed: int, loss: str, dtype: str = "float32") -> Dataset:
    """``data: {kind: timeseries, ...}`` -> Dataset of windows in ``dtype``, split in time."""
    if task_for_loss(loss) != "regression":
        raise SpecError(
            f"a timeseries model forecasts numbers: expected a regression loss (mse, mae), "
            f"got {loss!r}",
            field="loss",
        )
    path = resolve(cfg.path, base_dir)
    frame = read_table(path, (), False, getattr(cfg, "delimiter", ","), getattr(cfg, "sheet", None))
    inputs = list(dict.fromkeys(cfg.columns))
    targets = [cfg.target] if isinstance(cfg.target, str) else list(dict.fromkeys(cfg.target))
    for field, names in (("data.columns", inputs), ("data.target", targets)):
        check_names(names, field, list(frame.columns), path.name)
    names = list(dict.fromkeys(inputs + targets))
    values = numeric_columns(frame, names, "series")
    window, horizon, stride = int(cfg.window), int(cfg.horizon), int(cfg.stride)
    n = len(frame)
    if n < window + horizon:
        raise DataError(
            f"window {window} + horizon {horizon} needs at least {window + horizon} rows; the "
            f"series has {n}",
            where=str(path),
            field="data.window",
        )
    n_test = part_size(float(cfg.test_split), n)
    n_val = part_size(float(cfg.validation_split), n)
    n_train = n - n_val - n_test
    if n_train < window + horizon:
        raise DataError(
            f"the training part (the first {n_train} of {n} rows) is shorter than window + "
            f"horizon ({window + horizon} rows); lower the window or the validation/test splits",
            where=str(path),
            field="data.window",
        )
    fitted = {
        name: NumericColumn.fit(name, values[:n_train, j], cfg.normalize)
        for j, name in enumerate(names)
    }
    encoder = TimeseriesEncoder(
        [fitted[name] for name in inputs],
        [fitted[name] for name in targets],
        window,
        horizon,
        stride,
        getattr(cfg, "delimiter", ","),
    )
    encoder.dtype = dtype
    series = encoder._scale(values[:, [names.index(c) for c in inputs]], encoder.input_columns)
    target_values = encoder._scale(
        values[:, [names.index(c) for c in targets]], encoder.target_columns
    )

    starts = np.arange(0, n - window - horizon + 1, stride)
    target_rows = starts + window - 1 + horizon
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_val)}
    bounds["test"] = (n_train + n_val, n)
    parts: dict[str, Part] = {}
    for part, (low, high) in bounds.items():
        chosen = starts[(target_rows >= low) & (target_rows < high)]
        if part != "train" and high == low:
            continue
        if len(chosen) == 0:
            raise DataError(
                f"the {part} part (rows {low + 1}..{high} of the series) holds no window's "
                f"target with stride {stride}; lower the stride or raise data.{part}_split",
                where=str(path),
                field=f"data.{part}_split" if part != "train" else "data.stride",
            )
        parts[part] = Part(*encoder.windows(series, target_values, chosen))
    return Dataset(
        "regression",
        parts,
        encoder,
        str(path),
        target_scale=np.array([c.scale for c in encoder.target_columns]),
    )
