"""``kind: arrays``: the inputs ``x`` (N, ...) and targets ``y`` of an HDF5 or ``.npz`` file
(``data.x``/``data.y`` name them), used as stored: x in the spec's dtype, any shape; the task
from the loss as for every kind. A classifier's ``y`` is one class value a row, (N,) or (N, 1)
(labels in ``label_order``), or one-hot rows (N, K) (labels ``0`` .. ``K-1``); a regression's is
(N,) or (N, ...) of numbers, flattened to (N, k). The file is read by ``array_files``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nncli.data.array_files import read_arrays
from nncli.data.dataset import (
    Dataset,
    Part,
    class_predictions,
    distinct_texts,
    parts_of,
    state_text,
    task_for_loss,
)
from nncli.data.encoder import Encoder
from nncli.data.labels import check_class_count, label_order
from nncli.data.onehot import one_hot
from nncli.data.split import split_parts
from nncli.data.table import resolve
from nncli.errors import DataError, ShapeError

STATE_VERSION = 1


@dataclass
class ArraysFrame:
    """One file's arrays: ``x`` (N, ...), ``y`` (N, ...) or None (a file to predict)."""

    x: np.ndarray
    y: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.x)


class ArraysEncoder(Encoder):
    """Arrays as stored: the input shape and the targets' encoding, fitted on the training file."""

    kind = "arrays"

    def __init__(
        self, x_name: str, y_name: str, input_shape: tuple[int, ...], loss: str, labels=None
    ) -> None:
        self.x_name, self.y_name, self.input_shape = x_name, y_name, tuple(input_shape)
        self.loss, self.task = loss, task_for_loss(loss)
        self.class_labels: list[str] | None = labels
        self.width = 1  # regression targets a row (set by ``fit``)

    @property
    def labels(self) -> list[str] | None:
        return None if self.task != "classification" else list(self.class_labels or [])

    @property
    def feature_names(self) -> list[str]:
        return [f"{self.x_name}[{i}]" for i in range(int(np.prod(self.input_shape)))]

    @property
    def output_width(self) -> int:
        if self.task != "classification":
            return self.width
        return 1 if self.loss == "binary_cross_entropy" else len(self.class_labels or [])

    def read_frame(self, path: Any) -> ArraysFrame:
        found = read_arrays(Path(path), [self.x_name, self.y_name], optional=(self.y_name,))
        return frame_of(found, self.x_name, self.y_name, Path(path))

    def transform(self, data: Any, unknown: str = "error") -> np.ndarray:
        """A frame or a path -> x (N, *input_shape) in the spec's dtype; ShapeError for another
        shape."""
        frame = data if isinstance(data, ArraysFrame) else self.read_frame(data)
        if tuple(frame.x.shape[1:]) != self.input_shape:
            raise ShapeError(
                f"array {self.x_name!r}: expected rows of shape {self.input_shape} as in "
                f"training, got {tuple(frame.x.shape[1:])}",
                where=frame.source,
            )
        return frame.x.astype(self.dtype, copy=False)

    def codes(self, y: np.ndarray, source: str) -> np.ndarray:
        """Class values (N,) or one-hot rows (N, K) -> (N,) positions in the labels."""
        labels = self.class_labels or []
        if y.ndim == 2 and y.shape[1] > 1:
            if y.shape[1] != len(labels):
                raise DataError(
                    f"array {self.y_name!r}: expected one-hot rows of {len(labels)} classes, "
                    f"got {y.shape[1]} columns",
                    where=source,
                )
            return np.argmax(y, axis=1)
        text = class_text(y)
        index = {label: k for k, label in enumerate(labels)}
        names, inverse = np.unique(text, return_inverse=True)
        unknown = [str(n) for n in names if str(n) not in index]
        if unknown:
            raise DataError(
                f"array {self.y_name!r}: class {unknown[0]!r} is not one of the model's "
                f"({', '.join(labels)})",
                where=source,
            )
        return np.array([index[str(n)] for n in names], dtype=np.int64)[inverse.reshape(-1)]

    def encode(self, codes: np.ndarray) -> np.ndarray:
        if self.loss == "binary_cross_entropy":
            return codes[:, None].astype(self.dtype)
        return one_hot(codes, len(self.class_labels or [])).astype(self.dtype, copy=False)

    def targets(self, frame: ArraysFrame) -> np.ndarray:
        if frame.y is None:
            raise DataError(f"no array {self.y_name!r} of targets", where=frame.source)
        if self.task == "classification":
            return self.encode(self.codes(frame.y, frame.source))
        y = frame.y.reshape(len(frame.y), -1)
        if y.shape[1] != self.width:
            raise ShapeError(
                f"array {self.y_name!r}: expected {self.width} target(s) a row, got {y.shape[1]}",
                where=frame.source,
            )
        return y.astype(self.dtype)

    def decode(self, output: np.ndarray, proba: bool = False) -> dict[str, np.ndarray]:
        output = np.asarray(output, dtype=np.float64)
        if output.ndim != 2 or output.shape[1] != self.output_width:
            raise ShapeError(
                f"expected network outputs of shape (N, {self.output_width}), got {output.shape}"
            )
        if self.task == "classification":
            binary = self.loss == "binary_cross_entropy"
            return class_predictions(output, list(self.class_labels or []), binary, proba)
        if self.width == 1:
            return {"prediction": output[:, 0]}
        return {f"prediction_{j}": output[:, j] for j in range(self.width)}

    def to_state(self) -> dict:
        dtype = {"dtype": self.dtype} if self.dtype != "float32" else {}
        labels = {"labels": list(self.class_labels)} if self.class_labels else {}
        return {
            **dtype,
            **labels,
            "kind": self.kind,
            "version": STATE_VERSION,
            "x": self.x_name,
            "y": self.y_name,
            "input_shape": [int(d) for d in self.input_shape],
            "loss": self.loss,
            "width": int(self.width),
        }

    @classmethod
    def from_state(cls, state: dict) -> ArraysEncoder:
        shape = tuple(int(d) for d in np.asarray(state["input_shape"]).reshape(-1))
        if any(d < 1 for d in shape):
            raise ValueError(f"bad input_shape {shape}")
        labels = distinct_texts(state["labels"], "labels") if "labels" in state else None
        loss = state_text(state["loss"])
        encoder = cls(state_text(state["x"]), state_text(state["y"]), shape, loss, labels)
        encoder.width = int(state.get("width", 1))
        encoder.dtype = state_text(state.get("dtype", "float32"))
        return encoder


def class_text(y: np.ndarray) -> np.ndarray:
    """Class values (N,) or (N, 1) -> their text (N,): whole numbers without a fraction."""
    values = y.reshape(len(y), -1)
    if values.shape[1] != 1:
        raise DataError(f"expected one class value a row, got rows of {values.shape[1]}")
    values = values[:, 0]
    if (
        values.dtype.kind == "f"
        and np.isfinite(values).all()
        and (values == np.round(values)).all()
    ):
        values = values.astype(np.int64)
    return values.astype(str)


def frame_of(found: dict, x_name: str, y_name: str, path: Path) -> ArraysFrame:
    """The arrays read -> a frame, after checking x and y have one row each alike."""
    x, y = found[x_name], found.get(y_name)
    if y is not None and len(y) != len(x):
        raise DataError(
            f"array {x_name!r} has {len(x)} rows and {y_name!r} {len(y)}; expected one target "
            "row per input row",
            where=str(path),
        )
    if len(x) == 0:
        raise DataError(f"array {x_name!r} has no rows", where=str(path))
    return ArraysFrame(x, y, str(path))


def load(cfg: Any, base_dir: Path, seed: int, loss: str, dtype: str = "float32") -> Dataset:
    """``data: {kind: arrays, ...}`` -> Dataset in ``dtype``, split by rows (stratified for a
    classifier), the labels fitted on the whole file as a table's are."""
    path = resolve(cfg.path, base_dir)
    x_name, y_name = getattr(cfg, "x", "x"), getattr(cfg, "y", "y")
    frame = frame_of(read_arrays(path, [x_name, y_name]), x_name, y_name, path)
    encoder = ArraysEncoder(x_name, y_name, frame.x.shape[1:], loss)
    encoder.dtype = dtype
    strata = None
    if encoder.task == "classification":
        assert frame.y is not None
        if frame.y.ndim == 2 and frame.y.shape[1] > 1:
            encoder.class_labels = [str(k) for k in range(frame.y.shape[1])]
        else:
            encoder.class_labels = label_order(np.unique(class_text(frame.y)))
        found = f"array {y_name!r} holds {len(encoder.class_labels)}"
        check_class_count(len(encoder.class_labels), loss, found, where=str(path))
        strata = encoder.codes(frame.y, str(path))
    else:
        encoder.width = int(np.prod(frame.y.shape[1:], dtype=np.int64)) if frame.y.ndim > 1 else 1
    files, (train, val, test) = split_parts(cfg, len(frame), seed, strata, "rows")

    def part(name: str, rows: np.ndarray) -> Part | None:
        if files.get(name):
            other = encoder.read_frame(resolve(files[name], base_dir))
            return Part(encoder.transform(other), encoder.targets(other))
        if name != "train" and len(rows) == 0:
            return None
        sub = ArraysFrame(frame.x[rows], frame.y[rows], frame.source)
        return Part(encoder.transform(sub), encoder.targets(sub))

    chosen = {"train": train, "validation": val, "test": test}
    parts = parts_of(**{name: part(name, rows) for name, rows in chosen.items()})
    return Dataset(encoder.task, parts, encoder, str(path))
