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
from nncli.engine import feeds
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


PART_NAMES = ("train", "validation", "test")


@dataclass
class Part:
    """One part's examples: ``x`` (N, *input_shape) (text's lazy windows, a shared run's
    ``Spread``), ``y`` (N, K) targets, ``mask`` (N, T) True at real steps of padded sequences
    (else None). Data of several inputs (``data.inputs``): ``x`` is {input name: (N, ...)} in
    the spec's input order and ``mask`` None or {input name: (N, T) bool} for the padded ones
    (``engine/feeds.py`` takes rows of either form)."""

    x: Any
    y: Any
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert len(self) == len(self.y), "x and y of a part have the same rows"

    def __len__(self) -> int:
        return feeds.rows(self.x)


def parts_of(**given: Part | None) -> dict[str, Part]:
    """``train=Part(...), validation=None, ...`` -> the parts there are, in PART_NAMES order."""
    assert set(given) <= set(PART_NAMES), f"parts are {PART_NAMES}, got {sorted(given)}"
    return {name: given[name] for name in PART_NAMES if given.get(name) is not None}


@dataclass
class Dataset:
    """``parts``: ``{"train": Part(x, y, mask), "validation": ..., "test": ...}``, the training
    part always, the others when the data has them; the encoder fitted on the training part
    only."""

    task: str
    parts: dict[str, Part]
    encoder: Encoder
    source: str
    # (x_batch, rng) -> changed x_batch, applied by ``fit`` to training batches only (images)
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None
    # (k,) scaled targets times this are in the file's units (time series); None: unscaled
    target_scale: np.ndarray | None = None
    # what the loader left out or ignored (e.g. "skipped 3 unreadable images"), for the CLI
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert "train" in self.parts, "a Dataset has a training part"
        assert set(self.parts) <= set(PART_NAMES), f"parts are {PART_NAMES}"

    def rows(self, name: str) -> int:
        """The examples of part ``name``; 0 when the data has no such part."""
        part = self.parts.get(name)
        return 0 if part is None else len(part)

    @property
    def input_shape(self) -> Any:
        """One sample's shape, without the batch: (F,) for tables; {input name: shape} for
        data of several inputs."""
        return feeds.shapes(self.parts["train"].x)

    @property
    def output_width(self) -> int:
        """Units the last layer needs: K classes, 1 for binary, k regression targets (the last
        axis, also for per-step targets (N, T, K))."""
        return int(self.parts["train"].y.shape[-1])

    @property
    def labels(self) -> list[str] | None:
        """Class labels in output order; None for regression."""
        return self.encoder.labels

    @property
    def feature_names(self) -> list[str]:
        """One name per input column after encoding, e.g. ``island=Biscoe``."""
        return self.encoder.feature_names
