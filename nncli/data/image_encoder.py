"""Images -> network inputs and outputs -> class labels, fitted on the training part only.

x = (pixels - mean[c]) / std[c] per channel c, pixels in [0, 1]: (N, C, H, W) float32; with
``normalize: none`` mean 0 and std 1. Targets: one-hot (N, K), or 0/1 (N, 1) for
binary_cross_entropy. Everything predict needs (labels, image size, color, mean, std) goes
into ``to_state()``, so a checkpoint reads new images exactly as training did (no augmentation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nncli.data.dataset import (
    class_predictions,
    distinct_texts,
    state_text,
    task_for_loss,
)
from nncli.data.encoder import Encoder
from nncli.data.image_files import CHANNELS, ImageFrame, read_frame, read_image_bytes
from nncli.data.onehot import one_hot
from nncli.errors import DataError, ShapeError, SpecError

STATE_VERSION = 1
CHANNEL_NAMES = {"grayscale": ["gray"], "rgb": ["red", "green", "blue"]}


class ImageEncoder(Encoder):
    """Image files -> (N, C, H, W) in the spec's dtype (float32 by default); class folders ->
    targets; outputs -> labels."""

    kind = "images"

    def __init__(
        self,
        labels: list[str],
        loss: str,
        image_size: tuple[int, int],
        color: str,
        normalize: str = "none",
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        resize: bool = True,
    ):
        channels = CHANNELS[color]
        self.class_labels = list(labels)
        self.loss = loss
        self.task = task_for_loss(loss)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.color = color
        self.normalize = normalize
        self.mean = np.zeros(channels) if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = np.ones(channels) if std is None else np.asarray(std, dtype=np.float64)
        # False: the spec gave no image_size, so new images must have the training size
        self.resize = bool(resize)

    @classmethod
    def fit(
        cls,
        pixels: np.ndarray,
        labels: list[str],
        loss: str,
        color: str,
        normalize: str = "none",
        resize: bool = True,
    ) -> ImageEncoder:
        """pixels: the training images (N, C, H, W) in [0, 1]; per-channel statistics from them."""
        mean = std = None
        if normalize == "standard":
            mean = pixels.mean(axis=(0, 2, 3), dtype=np.float64)
            std = pixels.std(axis=(0, 2, 3), dtype=np.float64)
            std = np.where(std > 0, std, 1.0)  # a constant channel is only centred
        return cls(labels, loss, pixels.shape[2:], color, normalize, mean, std, resize)

    # -- what it knows ---------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """Class labels in output order: the class folder names, sorted (numbers as numbers)."""
        return list(self.class_labels)

    @property
    def feature_names(self) -> list[str]:
        """The channels: ``gray``, or ``red``, ``green``, ``blue``."""
        return list(CHANNEL_NAMES[self.color])

    @property
    def output_width(self) -> int:
        return 1 if self.loss == "binary_cross_entropy" else len(self.class_labels)

    @property
    def fill(self) -> tuple[float, ...]:
        """(C,) the scaled value of a black pixel, for the border of shifted images."""
        return tuple(float(v) for v in -self.mean / self.std)

    # -- new data --------------------------------------------------------------------------------

    def read_frame(self, path: str | Path, skip_bad: bool = False) -> ImageFrame:
        """A folder (one sub-folder per class, or images alone) or an image file -> ImageFrame,
        read as in training: same color, resized to the training size."""
        size = self.image_size if self.resize else None
        frame = read_frame(Path(path), size, self.color, skip_bad, np.dtype(self.dtype))
        if len(frame) and frame.pixels.shape[2:] != self.image_size:
            raise self.other_size(frame.pixels.shape[2:], frame.files[0])
        return frame

    def read_uploads(self, uploads: list[tuple[str, bytes]], files: list[str]) -> ImageFrame:
        """Images as bytes (``(name, bytes)`` each: a server's uploads) -> ImageFrame, read as
        ``read_frame`` reads the files (``files``: each one's name in the predictions);
        DataError naming the first that is no image, or of a size the model does not take."""
        size = self.image_size if self.resize else None
        dtype = np.dtype(self.dtype)
        images = []
        for name, data in uploads:  # one Pillow decode per image; the array work is batched
            values = read_image_bytes(data, name, size, self.color, dtype)
            if values.shape[:2] != self.image_size:
                raise self.other_size(values.shape[:2], name)
            images.append(values)
        pixels = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))
        return ImageFrame(files=list(files), labels=None, pixels=pixels, source="uploads")

    def other_size(self, found: tuple[int, ...], where: str) -> DataError:
        """The error for images of another size than a model that does not resize takes."""
        return DataError(
            f"the images are {found[0]}x{found[1]} (H x W) but the model was trained on "
            f"{self.image_size[0]}x{self.image_size[1]} without data.image_size, so it "
            "does not resize them",
            where=where,
        )

    def scale(self, pixels: np.ndarray) -> np.ndarray:
        """(N, C, H, W) in [0, 1] -> (pixels - mean) / std per channel, in the spec's dtype."""
        dtype = np.dtype(self.dtype)
        mean = self.mean.astype(dtype)[:, None, None]
        std = self.std.astype(dtype)[:, None, None]
        return ((pixels - mean) / std).astype(dtype, copy=False)

    def transform(self, data: ImageFrame | str | Path, unknown: str = "error") -> np.ndarray:
        """ImageFrame or path -> (N, C, H, W); ``unknown`` is for tables and unused."""
        if unknown not in ("error", "ignore"):
            raise SpecError(f"expected unknown to be error or ignore, got {unknown!r}")
        frame = data if isinstance(data, ImageFrame) else self.read_frame(data)
        return self.scale(frame.pixels)

    def id_columns(self, frame: ImageFrame) -> dict[str, np.ndarray]:
        """``file``: each image's path, the first column of predict's output."""
        return {"file": np.array(frame.files, dtype=object)}

    def codes(self, frame: ImageFrame) -> np.ndarray:
        """(N,) class index of each image, from its class folder; DataError for unknown ones."""
        if frame.labels is None:
            raise DataError(
                "expected a labelled folder (one sub-folder per class, named by its label), "
                "got images without classes",
                where=frame.source,
            )
        return class_codes(frame.labels, self.class_labels, frame.source)

    def encode(self, codes: np.ndarray) -> np.ndarray:
        """(N,) class indices -> one-hot (N, K), or 0/1 (N, 1) for binary, in the spec's dtype."""
        if self.loss == "binary_cross_entropy":
            return codes[:, None].astype(self.dtype)
        return one_hot(codes, len(self.class_labels)).astype(self.dtype, copy=False)

    def targets(self, frame: ImageFrame) -> np.ndarray:
        """Labelled frame -> y, one row per image."""
        return self.encode(self.codes(frame))

    def decode(self, output: np.ndarray, proba: bool = False) -> dict[str, np.ndarray]:
        """Network output (N, width) -> ``prediction`` (labels) and, with ``proba``,
        ``proba_<label>`` per class."""
        output = np.asarray(output, dtype=np.float64)
        if output.ndim != 2 or output.shape[1] != self.output_width:
            raise ShapeError(
                f"expected network outputs of shape (N, {self.output_width}), got {output.shape}"
            )
        binary = self.loss == "binary_cross_entropy"
        return class_predictions(output, self.class_labels, binary, proba)

    # -- checkpoint state ------------------------------------------------------------------------

    def to_state(self) -> dict:
        """Everything predict needs, as strings, numbers and arrays."""
        dtype = {"dtype": self.dtype} if self.dtype != "float32" else {}  # older: float32
        return {
            **dtype,
            "kind": self.kind,
            "version": STATE_VERSION,
            "loss": self.loss,
            "task": self.task,
            "labels": list(self.class_labels),
            "image_size": list(self.image_size),
            "resize": int(self.resize),
            "color": self.color,
            "normalize": self.normalize,
            "mean": np.asarray(self.mean, dtype=np.float64),
            "std": np.asarray(self.std, dtype=np.float64),
        }

    @classmethod
    def from_state(cls, state: dict) -> ImageEncoder:
        """Rebuild from ``to_state()``; tolerates what a checkpoint gives back (bytes, arrays)."""
        color = state_text(state["color"])
        if color not in CHANNELS:
            raise ValueError(f"unknown color {color!r}")
        mean = np.asarray(state["mean"], dtype=np.float64).reshape(-1)
        std = np.asarray(state["std"], dtype=np.float64).reshape(-1)
        fits = len(mean) == len(std) == CHANNELS[color] and np.isfinite([*mean, *std]).all()
        if not fits or not (std > 0).all():
            raise ValueError(f"channel statistics do not fit {color} images")
        size = [int(v) for v in np.asarray(state["image_size"]).reshape(-1)]
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"bad image_size {size}")
        labels = distinct_texts(state["labels"], "labels")
        encoder = cls(
            labels,
            state_text(state["loss"]),
            (size[0], size[1]),
            color,
            state_text(state.get("normalize", "none")),
            mean,
            std,
            bool(int(state.get("resize", 1))),
        )
        encoder.dtype = state_text(state.get("dtype", "float32"))
        return encoder


def class_codes(labels: list[str], classes: list[str], source: str) -> np.ndarray:
    """(N,) class folder names -> (N,) int64 positions in ``classes``; DataError for others."""
    index = {label: k for k, label in enumerate(classes)}
    names, inverse = np.unique(np.array(labels, dtype=str), return_inverse=True)
    unknown = [str(name) for name in names if name not in index]
    if unknown:
        raise DataError(
            f"class folder {unknown[0]!r} is not one of the model's classes ({', '.join(classes)})",
            where=source,
        )
    # one lookup per class folder name, then a gather for the images
    return np.array([index[str(name)] for name in names], dtype=np.int64)[inverse.reshape(-1)]
