"""What each picture plots, as plain arrays: the pure-data step between a checkpoint and
matplotlib (``nncli.plots.draw`` draws exactly these and nothing else, so a test can compare
them with the checkpoint's history instead of pixels). numpy only here; the pictures of
``nncli lr-find`` and ``nncli report``: ``figures.py``.

- ``Curves``: one ``CurvePanel`` per quantity (loss first, then each metric; training and
  validation series side by side; a log y axis for one falling by orders of magnitude), the
  learning rate's panel when a schedule ran, the best epoch and an early stop as marks, and a
  ``Confusion`` panel (a classifier) or a ``Fit`` per target (a regression: predicted, actual).
- ``FilterGrid``: one tile per filter of a conv layer; ``FeatureMaps``: the input image, then
  one ``LayerMaps`` per conv2d layer.
- ``GraphPicture``: one ``Box`` per layer (and the input) on rows by run order, and the arrows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HIDDEN_KEYS = ("epoch", "time", "lr")  # logged every epoch, but not curves of their own
LOG_SPAN = 100.0  # a panel whose values stay positive and span more than this: log y axis


@dataclass(frozen=True)
class Series:
    """One line: ``values[i]`` at ``epochs[i]``."""

    label: str
    epochs: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Marks:
    """Vertical lines on every curve panel: the best epoch (of ``monitor``, worth ``best_value``)
    and the epoch early stopping ended the run at (``restored``: the model holds the best
    epoch's weights)."""

    best_epoch: int | None = None
    monitor: str | None = None
    best_value: float | None = None
    stop_epoch: int | None = None
    restored: bool = False


@dataclass(frozen=True)
class CurvePanel:
    title: str
    series: list[Series]
    log: bool = False  # a log y axis: the values stay positive and span orders of magnitude


@dataclass(frozen=True)
class Confusion:
    """Counts (rows: true class, columns: predicted) with their row-normalised colours."""

    title: str
    labels: list[str]
    counts: np.ndarray

    @property
    def colours(self) -> np.ndarray:
        """Each row divided by its sum (a class absent from the data: a row of zeros)."""
        sums = self.counts.sum(axis=1, keepdims=True)
        return np.divide(self.counts, sums, out=np.zeros(self.counts.shape), where=sums > 0)


@dataclass(frozen=True)
class Fit:
    """One regression target on labelled data, in the file's units: ``predicted[i]`` is what
    the model gives for the row whose true value is ``actual[i]``. Two panels: predicted
    against actual with the line y = x (a perfect model's points lie on it), and the residuals
    ``actual - predicted`` against the prediction with the line y = 0."""

    name: str
    title: str  # the data and its scores
    actual: np.ndarray
    predicted: np.ndarray

    @property
    def residuals(self) -> np.ndarray:
        return self.actual - self.predicted

    @property
    def diagonal(self) -> np.ndarray:
        """The two ends of y = x, spanning every actual and predicted value."""
        both = np.concatenate([self.actual, self.predicted])
        return np.array([both.min(), both.max()])


@dataclass(frozen=True)
class Curves:
    title: str
    panels: list[CurvePanel]
    marks: Marks = field(default_factory=Marks)
    confusion: Confusion | None = None
    fits: list[Fit] = field(default_factory=list)

    @property
    def fit_start(self) -> int:
        """The grid cell of the first fit panel: each fit's pair of panels on a row of its own."""
        return len(self.panels) + len(self.panels) % 2

    @property
    def panel_count(self) -> int:
        if self.fits:
            return self.fit_start + 2 * len(self.fits)
        return len(self.panels) + (self.confusion is not None)


@dataclass(frozen=True)
class FilterGrid:
    """One tile per filter: (kh, kw) grey, (kh, kw, 3) RGB in [0, 1], or (features, taps) for
    conv1d. ``limit``: the largest magnitude in the tiles, whose shared scale is -limit..limit
    (mid-grey, or for RGB 0.5 in every channel, is 0)."""

    title: str
    tiles: list[np.ndarray]
    mode: str  # "grey" | "mean" (channels averaged) | "rgb" | "taps" (conv1d)
    limit: float


@dataclass(frozen=True)
class LayerMaps:
    """The feature maps (H, W) of one conv2d layer's output for the one image."""

    title: str
    maps: list[np.ndarray]


@dataclass(frozen=True)
class FeatureMaps:
    title: str
    image: np.ndarray  # (H, W) grey or (H, W, 3) RGB, as the network saw it
    layers: list[LayerMaps]


@dataclass(frozen=True)
class GraphNode:
    """One layer as the graph picture reads it: its config (``layer.config()``), its name,
    the positions of the outputs it takes (-1: the input), its output shape (no batch) and
    its parameter count."""

    config: dict[str, Any]
    name: str | None
    inputs: tuple[int, ...]
    shape: tuple[int, ...]
    params: int


@dataclass(frozen=True)
class Box:
    """One box of the graph picture: ``row`` 0 is the input's, a layer's 1 + the deepest of its
    inputs'; ``column`` is the box's centre in column widths from the middle of the picture
    (a row of m boxes: -(m-1)/2 .. (m-1)/2)."""

    label: str  # "dense 64 relu", "'wide': dense 8"
    shape: str  # "(N, 64)"
    params: int
    row: int
    column: float
    kind: str = "layer"  # "input", "layer", "merge" or "block" (residual, transformer)


@dataclass(frozen=True)
class GraphPicture:
    """``boxes[0]`` is the input, ``boxes[i + 1]`` layer i; ``edges`` (from, to) index boxes,
    a merge's in the order of its inputs."""

    title: str
    boxes: list[Box]
    edges: list[tuple[int, int]]

    @property
    def rows(self) -> int:
        return 1 + max(box.row for box in self.boxes)

    @property
    def span(self) -> float:
        """The widest reach of a box from the middle, in column widths."""
        return max(abs(box.column) for box in self.boxes)


def layer_label(config: dict[str, Any]) -> str:
    """``dense 64 relu``, ``conv2d 8 3x3 relu``, ``attention 4 heads causal``; a residual block
    names its parts in order: ``residual: conv2d, batchnorm, relu (+ projection)``."""
    kind = str(config.get("type"))
    if kind == "residual":
        parts = [p if isinstance(p, str) else str(p.get("type")) for p in config["layers"]]
        shortcut = " + projection" if config.get("projection") else ""
        return f"residual: {', '.join(parts)}{shortcut}"
    words = [kind]
    for key, say in SETTINGS.items():
        value = config.get(key)
        if value is not None and value is not False:
            words.append(say(value, kind))
    activation = config.get("activation")
    if isinstance(activation, dict):
        activation = activation.get("type")
    if activation and activation != "linear":
        words.append(str(activation))
    return " ".join(words)


def window(value: Any, kind: str) -> str:
    """A kernel or pool size: ``3x3`` on images (a number meaning both sides), ``k3`` on
    sequences."""
    sides = list(value) if isinstance(value, list | tuple) else [value]
    if kind.endswith("2d"):
        sides = sides * (3 - len(sides))
        return "x".join(map(str, sides))
    return "k" + "x".join(map(str, sides))


SETTINGS: dict[str, Callable[[Any, str], str]] = {  # the settings a box names, and how
    "units": lambda v, _: str(v),
    "filters": lambda v, _: str(v),
    "output_dim": lambda v, _: str(v),
    "kernel_size": window,
    "pool_size": window,
    "rate": lambda v, _: str(v),
    "heads": lambda v, _: f"{v} heads",
    "feedforward": lambda v, _: f"ff {v}",
    "encoding": lambda v, _: str(v),
    "causal": lambda v, _: "causal",
}


def graph_picture(title: str, input_shape: Any, nodes: list[GraphNode]) -> GraphPicture:
    """The inputs and each layer as boxes on rows (a layer one row below its deepest input);
    ``input_shape``: one shape, or {input name: shape} for several inputs, side by side."""
    given = input_shape if isinstance(input_shape, dict) else {"input": input_shape}
    first = len(given)  # boxes 0 .. first - 1: the inputs; box first + i: layer i

    def box(source: int) -> int:  # a layer's input position (-1, -2, ...: the data) -> its box
        return -1 - source if source < 0 else first + source

    rows = [0] * first
    for node in nodes:
        rows.append(1 + max(rows[box(source)] for source in node.inputs))
    columns = spread([0.0] * first) + [0.0] * len(nodes)
    for row in range(1, max(rows) + 1):
        members = [b for b in range(first, len(rows)) if rows[b] == row]
        wanted = [
            float(np.mean([columns[box(s)] for s in nodes[b - first].inputs])) for b in members
        ]
        for b, column in zip(members, spread(wanted), strict=True):
            columns[b] = column
    boxes = [
        Box(name, shown_shape(shape), 0, 0, columns[j], "input")
        for j, (name, shape) in enumerate(given.items())
    ]
    for i, node in enumerate(nodes):
        label, kind = layer_label(node.config), KINDS.get(str(node.config.get("type")), "layer")
        if node.name:
            label = f"{node.name!r}: {label}"
        at = first + i
        boxes.append(Box(label, shown_shape(node.shape), node.params, rows[at], columns[at], kind))
    edges = [(box(source), first + i) for i, node in enumerate(nodes) for source in node.inputs]
    return GraphPicture(title, boxes, edges)


def spread(wanted: list[float]) -> list[float]:
    """Columns for one row's boxes, each wanting the mean column of its inputs (a chain goes
    straight down, branches stay apart): in the order of what they want, at least one column
    apart, the row's mean kept where the wanted mean is."""
    order = sorted(range(len(wanted)), key=lambda k: (wanted[k], k))
    placed: list[float] = []
    for k in order:
        placed.append(wanted[k] if not placed else max(wanted[k], placed[-1] + 1.0))
    shift = float(np.mean(wanted) - np.mean(placed))
    columns = [0.0] * len(wanted)
    for k, column in zip(order, placed, strict=True):
        columns[k] = column + shift
    return columns


KINDS = {"add": "merge", "multiply": "merge", "concat": "merge", "residual": "block",
         "transformer": "block"}  # fmt: skip


def shown_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def curve_panels(history: dict[str, np.ndarray], schedule: bool) -> list[CurvePanel]:
    """Loss first, then each metric in name order (training and ``val_`` series in one panel),
    then the learning rate when ``schedule`` (a schedule ran) and the history logged it."""
    epochs = np.asarray(history["epoch"], dtype=np.int64)
    names = sorted({k.removeprefix("val_") for k in history if k not in HIDDEN_KEYS})
    names.sort(key=lambda name: name != "loss")
    panels = []
    for name in names:
        series = [
            Series(label, epochs, np.asarray(history[key], dtype=np.float64))
            for key, label in ((name, "training"), (f"val_{name}", "validation"))
            if key in history
        ]
        panels.append(CurvePanel(name, series, spans_decades(series)))
    if schedule and "lr" in history:
        lr = [Series("learning rate", epochs, np.asarray(history["lr"], dtype=np.float64))]
        panels.append(CurvePanel("learning rate", lr, spans_decades(lr)))
    return panels


def spans_decades(series: list[Series]) -> bool:
    """True when every value is positive and finite and the largest is more than ``LOG_SPAN``
    times the smallest (a loss that falls from 10 to 0.01): on a linear axis such a curve is
    flat after its first epochs, on a log one each decade gets the same height."""
    values = np.concatenate([s.values for s in series]) if series else np.array([])
    if not len(values) or not np.isfinite(values).all() or values.min() <= 0:
        return False
    return bool(values.max() > LOG_SPAN * values.min())


def fits(title: str, actual: dict[str, np.ndarray], predicted: dict[str, np.ndarray]) -> list[Fit]:
    """One ``Fit`` per target from decoded columns (``{target: values}``, the same keys), each
    titled with ``title``, the rows and its RMSE and MAE in the target's units."""
    out = []
    for name, truth in actual.items():
        truth = np.asarray(truth, dtype=np.float64)
        guess = np.asarray(predicted[name], dtype=np.float64)
        error = truth - guess
        rmse, mae = np.sqrt(np.mean(error**2)), np.mean(np.abs(error))
        scores = f"{len(truth)} rows, rmse {rmse:.4g}, mae {mae:.4g}"
        out.append(Fit(name, f"{title}: {scores}", truth, guess))
    return out


def early_stop_marks(
    history: dict[str, np.ndarray],
    best_epoch: int | None,
    best_value: float | None,
    stopping: dict | None,
) -> Marks:
    """The best epoch, and the stop when early stopping's patience ran out at the last epoch
    (``stopping``: the spec's ``training.early_stopping`` and its ``version``, None when it had
    none). The run stops as soon as the epochs since the best reach the patience (Keras's rule,
    spec version 2; at least one) or exceed it (version 1), so that is the test."""
    if best_epoch is None or stopping is None:
        return Marks()
    last = int(np.asarray(history["epoch"])[-1])
    patience = int(stopping["patience"])
    needed = max(patience, 1) if stopping.get("version", 1) >= 2 else patience + 1
    stopped = last - int(best_epoch) >= needed
    return Marks(
        best_epoch=int(best_epoch),
        monitor=str(stopping["monitor"]),
        best_value=None if best_value is None else float(best_value),
        stop_epoch=last if stopped else None,
        restored=stopped and bool(stopping["restore_best"]),
    )


def filter_grid(title: str, weight: np.ndarray) -> FilterGrid:
    """A conv layer's weight -> one tile per filter. conv2d (filters, C, kh, kw): C = 1 as it
    is, C = 3 as RGB, any other C averaged over the channels; conv1d (filters, F, k): each
    filter as features x taps."""
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim == 3:
        tiles, mode = list(weight), "taps"
    elif weight.shape[1] == 3:
        tiles, mode = list(weight.transpose(0, 2, 3, 1)), "rgb"
    elif weight.shape[1] == 1:
        tiles, mode = list(weight[:, 0]), "grey"
    else:
        tiles, mode = list(weight.mean(axis=1)), "mean"
    limit = float(max(np.abs(np.asarray(tiles)).max(initial=0.0), np.finfo(np.float64).tiny))
    if mode == "rgb":  # one scale for all: -limit -> 0, 0 -> 0.5, limit -> 1
        tiles = [(tile / limit + 1.0) / 2.0 for tile in tiles]
    return FilterGrid(title, tiles, mode, limit)


def feature_maps(
    title: str, image: np.ndarray, outputs: list[tuple[str, np.ndarray]]
) -> FeatureMaps:
    """The network's input ``image`` (C, H, W) and each conv2d layer's output (C', H', W') ->
    the picture's data: grey for one channel, RGB (rescaled to [0, 1]) for three, else the mean."""
    layers = [LayerMaps(name, list(np.asarray(out, dtype=np.float64))) for name, out in outputs]
    return FeatureMaps(title, viewable(image), layers)


def viewable(image: np.ndarray) -> np.ndarray:
    """An encoded image (C, H, W) as it is shown: (H, W, 3) rescaled to [0, 1] for three
    channels, else (H, W), the channels' mean."""
    image = np.asarray(image, dtype=np.float64)
    if image.shape[0] != 3:
        return image.mean(axis=0)
    low, high = image.min(), image.max()
    return (image.transpose(1, 2, 0) - low) / (high - low if high > low else 1.0)


def grid_shape(count: int, columns: int) -> tuple[int, int]:
    """(rows, columns) of a grid of ``count`` tiles at most ``columns`` wide."""
    cols = max(1, min(count, columns))
    return math.ceil(count / cols) if count else 1, cols
