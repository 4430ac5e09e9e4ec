"""What every data loader returns: host arrays for each part plus the fitted encoder.

x: float32 (N, *input_shape). y: float32 (N, K) one-hot for cross_entropy, (N, 1) 0/1 for
binary_cross_entropy, (N, k) raw target values for regression. With ``dtype: float64`` the csv,
sequences and timeseries kinds make their real values in float64; with an embedding first,
text and sequences x are int32 ids (N, T).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncli.data.encoder import Encoder
from nncli.errors import CheckpointError

CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")


def task_for_loss(loss: str) -> str:
    """cross_entropy, binary_cross_entropy -> "classification"; any other loss -> "regression"."""
    return "classification" if loss in CLASSIFICATION_LOSSES else "regression"


def state_text(value: Any) -> str:
    """A string of a stored encoder state -> str (a checkpoint may give it back as bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def state_texts(values: Any) -> list[str]:
    """Stored strings (a list or an array, of str or bytes) -> list[str]."""
    return [state_text(v) for v in (values.tolist() if isinstance(values, np.ndarray) else values)]


def distinct_texts(values: Any, field: str) -> list[str]:
    """Stored strings that each name one thing (labels, categories, symbols) -> list[str];
    CheckpointError at ``field`` for one that appears twice (which would it mean?)."""
    texts, seen = state_texts(values), set()
    for text in texts:
        if text in seen:
            raise CheckpointError(f"{text!r} appears twice: each must name one thing", field=field)
        seen.add(text)
    return texts


def class_predictions(
    output: np.ndarray, labels: list[str], binary: bool, proba: bool
) -> dict[str, np.ndarray]:
    """Class outputs (N, K), or (N, 1) P(second label) when ``binary`` -> ``prediction``: the
    most likely label (N,), and with ``proba`` one ``proba_<label>`` column (N,) per label."""
    names = np.array(labels, dtype=object)
    if binary:
        output = np.concatenate([1.0 - output, output], axis=1)  # P(first), P(second)
    columns = {"prediction": names[np.argmax(output, axis=1)]}
    if proba:
        columns.update({f"proba_{label}": output[:, k] for k, label in enumerate(names)})
    return columns


@dataclass
class Dataset:
    """Training, validation and test arrays (the last two may be None) and the encoder fitted
    on the training part only."""

    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    encoder: Encoder
    source: str
    # (N, T) booleans, True at real steps, for padded variable-length sequences; else None
    mask_train: np.ndarray | None = None
    mask_val: np.ndarray | None = None
    mask_test: np.ndarray | None = None
    # (x_batch, rng) -> changed x_batch, applied by ``fit`` to training batches only (images)
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None
    # (k,) scaled targets times this are in the file's units (time series); None: unscaled
    target_scale: np.ndarray | None = None
    # what the loader left out or ignored (e.g. "skipped 3 unreadable images"), for the CLI
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for x, y in (
            (self.x_train, self.y_train),
            (self.x_val, self.y_val),
            (self.x_test, self.y_test),
        ):
            assert (x is None) == (y is None), "x and y of a part come together"
            assert x is None or len(x) == len(y), "x and y of a part have the same rows"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, without the batch: (F,) for tables."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def output_width(self) -> int:
        """Units the last layer needs: K classes, 1 for binary, k regression targets (the last
        axis, also for per-step targets (N, T, K))."""
        return int(self.y_train.shape[-1])

    @property
    def labels(self) -> list[str] | None:
        """Class labels in output order; None for regression."""
        return self.encoder.labels

    @property
    def feature_names(self) -> list[str]:
        """One name per input column after encoding, e.g. ``island=Biscoe``."""
        return self.encoder.feature_names
