"""The pictures of ``nncli report`` and ``nncli plot --saliency``: their data (numpy only) and
how each is drawn; ``draw.render`` renders them as it renders the others.

Sizes in pixels (100 dpi): lines (ROC, precision-recall, reliability, learning curves of several
runs) 480 x 400 a panel; examples 120 a tile, 6 a row, plus 40 for the title; saliency two
panels of 360 x 380 side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncli.plots.panels import grid_shape

LINES = (480, 400)
EXAMPLE, EXAMPLE_COLUMNS, EXAMPLE_HEADER = 120, 6, 40
SALIENCY = (360, 380)


@dataclass(frozen=True)
class Line:
    label: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Lines:
    """Panels of lines: ``panels`` (title, lines) side by side, the axes' labels shared;
    ``diagonal`` draws y = x (a chance ROC, a perfect calibration); ``unit`` fixes both axes
    to [0, 1]."""

    title: str
    panels: list[tuple[str, list[Line]]]
    x_label: str
    y_label: str
    diagonal: bool = False
    unit: bool = True


@dataclass(frozen=True)
class Examples:
    """Images with a caption each (true class, predicted class, its probability); ``tiles``
    (H, W) grey or (H, W, 3) in [0, 1] (``panels.viewable``)."""

    title: str
    tiles: list[np.ndarray]
    captions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Saliency:
    """One image (``image``, as ``panels.viewable`` shows it) and the gradient of the predicted
    class's output with respect to its pixels: ``gradient`` (C, H, W) as computed, ``heat``
    (H, W) its largest absolute value over the channels, drawn over the image."""

    title: str
    image: np.ndarray
    gradient: np.ndarray
    heat: np.ndarray


@dataclass
class RangeCurve:
    """The learning-rate range test: each step's loss and smoothed loss against its rate (a
    log x axis), the suggested rate marked."""

    title: str
    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float


def saliency(title: str, image: np.ndarray, gradient: np.ndarray) -> Saliency:
    """The picture of an encoded ``image`` (C, H, W) and its ``gradient`` (C, H, W)."""
    from nncli.plots.panels import viewable

    gradient = np.asarray(gradient, dtype=np.float64)
    return Saliency(title, viewable(image), gradient, np.abs(gradient).max(axis=0))


def lines_size(picture: Lines) -> tuple[int, int]:
    return LINES[0] * max(len(picture.panels), 1), LINES[1]


def examples_size(picture: Examples) -> tuple[int, int]:
    rows, _ = grid_shape(len(picture.tiles), EXAMPLE_COLUMNS)
    return EXAMPLE * EXAMPLE_COLUMNS, EXAMPLE_HEADER + EXAMPLE * rows


def saliency_size(picture: Saliency) -> tuple[int, int]:
    return 2 * SALIENCY[0], SALIENCY[1]


def draw_lines(figure: Any, picture: Lines) -> None:
    axes = figure.subplots(1, max(len(picture.panels), 1), squeeze=False)[0]
    for ax, (title, lines) in zip(axes, picture.panels, strict=False):
        for line in lines:
            few = len(line.x) < 20
            ax.plot(line.x, line.y, marker="o" if few else None, label=line.label)
        if picture.diagonal:
            ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        if picture.unit:
            ax.set_xlim(0.0, 1.0)
            ax.set_ylim(0.0, 1.02)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel(picture.x_label)
        ax.set_ylabel(picture.y_label)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize="x-small")
    figure.suptitle(picture.title)


def draw_examples(figure: Any, picture: Examples) -> None:
    rows, _ = grid_shape(len(picture.tiles), EXAMPLE_COLUMNS)
    axes = list(figure.subplots(rows, EXAMPLE_COLUMNS, squeeze=False).ravel())
    for ax in axes:
        ax.set_axis_off()
    for ax, tile, caption in zip(axes, picture.tiles, picture.captions, strict=False):
        ax.imshow(tile, cmap="gray" if tile.ndim == 2 else None, interpolation="nearest")
        ax.set_title(caption, fontsize="x-small")
    figure.suptitle(picture.title)


def draw_saliency(figure: Any, picture: Saliency) -> None:
    """The image, then the heat map over it (the image in grey beneath, half transparent)."""
    left, right = figure.subplots(1, 2, squeeze=True)
    grey = picture.image if picture.image.ndim == 2 else picture.image.mean(axis=2)
    left.imshow(picture.image, cmap="gray" if picture.image.ndim == 2 else None)
    left.set_title("the image as the network sees it", fontsize="small")
    right.imshow(grey, cmap="gray")
    shown = right.imshow(picture.heat, cmap="inferno", alpha=0.6, vmin=0.0)
    figure.colorbar(shown, ax=right, label="|gradient|", shrink=0.8)
    right.set_title("|d score / d pixel|", fontsize="small")
    for ax in (left, right):
        ax.set_axis_off()
    figure.suptitle(picture.title)
