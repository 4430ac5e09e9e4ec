"""The drawing step: a picture's data (``nncli.plots.panels``) -> PNG bytes of a documented
size. Only this room imports matplotlib, and only its object API with the Agg canvas (no
pyplot, no display, no global state).

Sizes in pixels (100 dpi): learning curves 560 x 420 a panel, two panels a row; filters 800
wide, 100 a row of 8 tiles plus 60 for the title; feature maps 800 wide, each section (the
input, then each conv2d layer) 40 for its title plus 100 a row of 8 maps; the graph of layers
240 a column (at least 2), 120 a row of boxes plus 50 for the title, each box 210 x 80; the
learning-rate range test one panel, 560 x 420.
"""

from __future__ import annotations

import io
import textwrap
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from nncli.plots import figures
from nncli.plots.panels import (
    Confusion,
    CurvePanel,
    Curves,
    FeatureMaps,
    FilterGrid,
    Fit,
    GraphPicture,
    grid_shape,
)

DPI = 100
PANEL = (560, 420)  # one learning-curve or confusion panel
CURVE_COLUMNS = 2
TILE = 100  # one filter or feature map
TILE_COLUMNS = 8
FILTER_HEADER = 60
SECTION_HEADER = 40
WRITE_COUNTS_UP_TO = 20  # classes; beyond that the cells are too small for numbers
BEST, STOP = "tab:green", "tab:red"
COLUMN, ROW, GRAPH_HEADER = 240, 120, 50  # the graph of layers
GRAPH_COLUMNS = 2  # the narrowest picture, so the title fits
BOX = (210, 80)
LABEL_WIDTH = 34  # characters on a box's line before the label wraps
FILL = {"input": "#e8e8e8", "layer": "#dbe9f6", "merge": "#fde0c5", "block": "#d9f0d3"}


def curves_size(picture: Curves) -> tuple[int, int]:
    rows, cols = grid_shape(picture.panel_count, CURVE_COLUMNS)
    return PANEL[0] * cols, PANEL[1] * rows


def filters_size(picture: FilterGrid) -> tuple[int, int]:
    rows, _ = grid_shape(len(picture.tiles), TILE_COLUMNS)
    return TILE * TILE_COLUMNS, FILTER_HEADER + TILE * rows


def section_rows(picture: FeatureMaps) -> list[int]:
    """Rows of tiles of each section: the input image (one), then each conv2d layer's maps."""
    return [1] + [grid_shape(len(layer.maps), TILE_COLUMNS)[0] for layer in picture.layers]


def maps_size(picture: FeatureMaps) -> tuple[int, int]:
    return TILE * TILE_COLUMNS, sum(SECTION_HEADER + TILE * rows for rows in section_rows(picture))


def graph_size(picture: GraphPicture) -> tuple[int, int]:
    columns = max(2 * picture.span + 1, GRAPH_COLUMNS)
    return round(COLUMN * columns), GRAPH_HEADER + ROW * picture.rows


def box_centre(picture: GraphPicture, i: int) -> tuple[float, float]:
    """Box i's centre in pixels from the picture's top left corner."""
    width, _ = graph_size(picture)
    box = picture.boxes[i]
    return width / 2 + COLUMN * box.column, GRAPH_HEADER + ROW * box.row + ROW / 2


def size(picture: Any) -> tuple[int, int]:
    """(width, height) in pixels of the PNG ``render`` makes of ``picture``."""
    return SIZES[type(picture)](picture)


def render(picture: Any) -> bytes:
    """PNG bytes of ``picture``: a ``Curves``, ``FilterGrid``, ``FeatureMaps``,
    ``GraphPicture``, or one of ``figures`` (``Lines``, ``Examples``, ``Saliency``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size(picture)
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    DRAW[type(picture)](figure, picture)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": "nncli"})
    return buffer.getvalue()


def draw_curves(figure: Any, picture: Curves) -> None:
    rows, cols = grid_shape(picture.panel_count, CURVE_COLUMNS)
    axes = list(figure.subplots(rows, cols, squeeze=False).ravel())
    for ax, panel in zip(axes, picture.panels, strict=False):
        draw_curve_panel(ax, panel, picture)
    used = len(picture.panels)
    if picture.confusion is not None:
        draw_confusion(axes[used], picture.confusion)
        used += 1
    for i, fit in enumerate(picture.fits):
        first = picture.fit_start + 2 * i
        draw_fit(axes[first], axes[first + 1], fit)
    for ax in axes[used : picture.fit_start if picture.fits else None]:
        ax.set_axis_off()
    figure.suptitle(picture.title)


def draw_curve_panel(ax: Any, panel: CurvePanel, picture: Curves) -> None:
    for series in panel.series:
        few = len(series.epochs) < 20
        ax.plot(series.epochs, series.values, marker="o" if few else None, label=series.label)
    marks = picture.marks
    if marks.best_epoch is not None:
        ax.axvline(
            marks.best_epoch, color=BEST, linestyle="--", label=f"best epoch {marks.best_epoch}"
        )
    if marks.stop_epoch is not None:
        restored = ", best restored" if marks.restored else ""
        ax.axvline(marks.stop_epoch, color=STOP, linestyle=":", label=f"early stop{restored}")
    ax.set_title(panel.title + (" (log scale)" if panel.log else ""))
    if panel.log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def draw_fit(ax: Any, residual_ax: Any, fit: Fit) -> None:
    """Predicted against actual with y = x, then the residuals against the prediction with
    y = 0; a point's size shrinks as their number grows, so thousands stay readable."""
    size = float(np.clip(2000 / max(len(fit.actual), 1), 2, 30))
    ax.scatter(fit.actual, fit.predicted, s=size, alpha=0.6)
    ax.plot(fit.diagonal, fit.diagonal, color="black", linewidth=1, label="y = x")
    ax.set_xlabel(f"actual {fit.name}")
    ax.set_ylabel(f"predicted {fit.name}")
    ax.set_title(fit.title, fontsize="small")
    ax.legend(fontsize="small")
    residual_ax.scatter(fit.predicted, fit.residuals, s=size, alpha=0.6)
    residual_ax.axhline(0.0, color="black", linewidth=1)
    residual_ax.set_xlabel(f"predicted {fit.name}")
    residual_ax.set_ylabel("residual (actual - predicted)")
    residual_ax.set_title(f"residuals of {fit.name}", fontsize="small")
    for axis in (ax, residual_ax):
        axis.grid(alpha=0.3)


def draw_confusion(ax: Any, confusion: Confusion) -> None:
    """Row-normalised colours (recall along the diagonal), the counts written in the cells."""
    colours, n = confusion.colours, len(confusion.labels)
    shown = ax.imshow(colours, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.figure.colorbar(shown, ax=ax, label="share of the true class", shrink=0.8)
    if n <= WRITE_COUNTS_UP_TO:
        for (i, j), count in np.ndenumerate(confusion.counts):
            ink = "white" if colours[i, j] > 0.5 else "black"
            ax.text(j, i, str(int(count)), ha="center", va="center", color=ink, fontsize="small")
    ticks = np.arange(n)
    tilt = sum(len(label) for label in confusion.labels) > 40  # long names would overlap
    ax.set_xticks(
        ticks, confusion.labels, rotation=45 if tilt else 0, ha="right" if tilt else "center"
    )
    ax.set_yticks(ticks, confusion.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(confusion.title)


def draw_filters(figure: Any, picture: FilterGrid) -> None:
    axes = tile_axes(figure, len(picture.tiles))
    for i, (ax, tile) in enumerate(zip(axes, picture.tiles, strict=False)):
        if picture.mode == "rgb":
            ax.imshow(np.clip(tile, 0.0, 1.0), interpolation="nearest")
        else:
            aspect = "auto" if picture.mode == "taps" else "equal"
            limit = picture.limit
            ax.imshow(
                tile, cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest", aspect=aspect
            )
        ax.set_title(f"#{i}", fontsize="small")
    figure.suptitle(picture.title)


def draw_maps(figure: Any, picture: FeatureMaps) -> None:
    heights = [SECTION_HEADER + TILE * rows for rows in section_rows(picture)]
    sections = figure.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    grey = picture.image.ndim == 2
    (ax,) = tile_axes(sections[0], 1)
    ax.imshow(picture.image, cmap="gray" if grey else None, interpolation="nearest")
    sections[0].suptitle(picture.title)
    for section, layer in zip(sections[1:], picture.layers, strict=True):
        for ax, fmap in zip(tile_axes(section, len(layer.maps)), layer.maps, strict=False):
            ax.imshow(fmap, cmap="viridis", interpolation="nearest")
        section.suptitle(layer.title)


def draw_graph(figure: Any, picture: GraphPicture) -> None:
    """Boxes as rounded patches with their text, arrows from a box's bottom to the top of each
    box taking its output, on one axes whose data units are the picture's pixels (y down)."""
    from matplotlib.patches import FancyBboxPatch

    width, height = graph_size(picture)
    figure.set_layout_engine("none")  # one axes over the whole figure, placed by hand
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    ax.text(width / 2, GRAPH_HEADER / 2, picture.title, ha="center", va="center")
    half_w, half_h = BOX[0] / 2, BOX[1] / 2
    for i, box in enumerate(picture.boxes):
        x, y = box_centre(picture, i)
        corner = (x - half_w, y - half_h)
        style = "round,pad=0,rounding_size=8"
        ax.add_patch(
            FancyBboxPatch(corner, *BOX, boxstyle=style, facecolor=FILL[box.kind], edgecolor="grey")
        )
        label = textwrap.fill(box.label, LABEL_WIDTH)
        lines = [label, box.shape] + ([f"{box.params:,} parameters"] if box.params else [])
        ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=8)
    arrow = {"arrowstyle": "-|>", "color": "black", "shrinkA": 0, "shrinkB": 0}
    for source, target, x1 in arrow_ends(picture):
        (x0, y0), (_, y1) = box_centre(picture, source), box_centre(picture, target)
        ax.annotate("", xy=(x1, y1 - half_h), xytext=(x0, y0 + half_h), arrowprops=arrow)


def arrow_ends(picture: GraphPicture) -> list[tuple[int, int, float]]:
    """(from, to, x where the arrow meets the top of its box): a merge's inputs land side by
    side across its top, the first on the left, so the order of a concat reads off the picture."""
    taken = Counter(target for _, target in picture.edges)
    seen: Counter[int] = Counter()
    ends = []
    for source, target in picture.edges:
        k, count = seen[target], taken[target]
        seen[target] += 1
        offset = (k - (count - 1) / 2) * BOX[0] / (count + 1)
        ends.append((source, target, box_centre(picture, target)[0] + offset))
    return ends


def tile_axes(figure: Any, count: int) -> list[Any]:
    """A grid of ``TILE_COLUMNS`` axes a row without ticks; the first ``count`` are returned,
    the rest hidden."""
    rows, _ = grid_shape(count, TILE_COLUMNS)
    axes = list(figure.subplots(rows, TILE_COLUMNS, squeeze=False).ravel())
    for ax in axes:
        ax.set_axis_off()
    return axes[:count]


def draw_range(figure: Any, picture: figures.RangeCurve) -> None:
    ax = figure.subplots()
    ax.plot(picture.rates, picture.losses, alpha=0.35, label="loss")
    ax.plot(picture.rates, picture.smoothed, label="smoothed loss")
    ax.axvline(picture.suggestion, color=BEST, linestyle="--",
               label=f"suggested {picture.suggestion:.2g}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_title(picture.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


SIZES: dict[type, Callable[[Any], tuple[int, int]]] = {
    Curves: curves_size,
    FilterGrid: filters_size,
    FeatureMaps: maps_size,
    GraphPicture: graph_size,
    figures.Lines: figures.lines_size,
    figures.Examples: figures.examples_size,
    figures.Saliency: figures.saliency_size,
    figures.RangeCurve: lambda picture: PANEL,
}
DRAW: dict[type, Callable[[Any, Any], None]] = {
    Curves: draw_curves,
    FilterGrid: draw_filters,
    FeatureMaps: draw_maps,
    GraphPicture: draw_graph,
    figures.Lines: figures.draw_lines,
    figures.Examples: figures.draw_examples,
    figures.Saliency: figures.draw_saliency,
    figures.RangeCurve: draw_range,
}
