"""``nncli plot``: a picture of a checkpoint as a PNG: the learning curves from its stored
history (on ``--data``, a confusion matrix for a classifier, the counts ``nncli evaluate``
computes, or for a regression each target's predictions against the actual values and the
residuals), a conv layer's learned filters (``--filters``), the feature maps of one image
through each conv2d layer (``--activations``), the layers and their arrows (``--graph``), or
the gradient of one image's predicted class with respect to its pixels (``--saliency``,
``saliency.py``).
What each picture plots is built here and in ``nncli.plots.panels``; ``nncli.plots.draw`` only
draws it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nncli.checkpoint import model as model_io
from nncli.commands.saliency import saliency_picture
from nncli.errors import DataError, SpecError

CONV_TYPES = ("conv2d", "conv1d")
SUFFIXES = {
    "curves": ".png",
    "filters": ".filters.png",
    "activations": ".activations.png",
    "graph": ".graph.png",
    "saliency": ".saliency.png",
}


def plot(
    checkpoint: Path,
    *,
    data: Path | None = None,
    output: Path | None = None,
    force: bool = False,
    filters: bool = False,
    layer: int | None = None,
    activations: Path | None = None,
    graph: bool = False,
    saliency: Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Draw one picture of ``checkpoint`` and write it atomically as a PNG -> ``path``,
    ``replaced``, ``size`` (width, height in pixels) and ``picture`` (the data drawn).

    Default output beside the checkpoint: ``model.h5`` -> ``model.png`` (``model.filters.png``,
    ``model.activations.png``, ``model.graph.png``, ``model.saliency.png``); outputs follow the
    one output rule (``nncli.checkpoint.outputs``: an existing one is kept unless ``force``);
    the options and outputs are checked before the checkpoint is read, and nothing is written
    before the picture is drawn."""
    from nncli import plots
    from nncli.checkpoint.folder import write_atomic
    from nncli.checkpoint.outputs import check_output
    from nncli.plots import draw

    what = _which(data, filters, layer, activations, graph, saliency)
    plots.require()
    checkpoint = Path(checkpoint)
    output = Path(output) if output is not None else default_output(checkpoint, what)
    replaced = check_output(output, [checkpoint, data, activations, saliency], force=force)
    if not output.name.lower().endswith(".png"):
        raise SpecError(f"expected a .png file, got {output.name!r}", field="--output")
    model = model_io.load(checkpoint)
    pictures = {
        "curves": lambda: curves(model, checkpoint, data, warn),
        "filters": lambda: learned_filters(model, layer),
        "activations": lambda: feature_maps(model, activations),
        "graph": lambda: layer_graph(model, checkpoint),
        "saliency": lambda: saliency_picture(model, saliency),
    }
    picture = pictures[what]()
    png = draw.render(picture)
    write_atomic(output, png)
    return {"path": output, "replaced": replaced, "size": draw.size(picture), "picture": picture}


def _which(
    data: Path | None,
    filters: bool,
    layer: int | None,
    activations: Path | None,
    graph: bool,
    saliency: Path | None = None,
) -> str:
    """curves, filters, activations, graph or saliency, from the options; SpecError for a mix
    that means nothing (two pictures at once, ``--layer`` without ``--filters``, ``--data`` with
    a picture other than the curves)."""
    chosen = [flag for flag, on in (("--filters", filters), ("--activations", activations),
                                    ("--graph", graph), ("--saliency", saliency))
               if on not in (False, None)]  # fmt: skip
    if len(chosen) > 1:
        raise SpecError(f"choose one of {' and '.join(chosen)}", field=chosen[0])
    if layer is not None and not filters:
        raise SpecError("--layer chooses the layer --filters draws; add --filters", field="--layer")
    if data is not None and chosen:
        raise SpecError(
            "--data adds a confusion matrix or a regression's fit to the learning curves",
            field="--data",
        )
    return chosen[0].removeprefix("--") if chosen else "curves"


def default_output(checkpoint: Path, what: str) -> Path:
    """Beside the checkpoint: ``a.h5`` -> ``a.png``, ``a.filters.png``, ``a.activations.png``,
    ``a.graph.png``."""
    return checkpoint.with_name(checkpoint.with_suffix("").name + SUFFIXES[what])


def curves(
    model: model_io.Model,
    checkpoint: Path,
    data: Path | None,
    warn: Callable[[str], None] | None = None,
) -> Any:
    """The learning curves of the stored history; on ``data``, a classifier's confusion matrix
    or a regression's predicted-against-actual and residual panels too."""
    from nncli.plots import panels

    history = {k: np.asarray(v) for k, v in model.training.get("history", {}).items()}
    if not len(history.get("epoch", ())):
        raise SpecError(f"{checkpoint} holds no training history to plot", field="CKPT")
    schedule, stopping = training_settings(model.spec_yaml, history)
    best = model.training.get("best_epoch")
    marks = panels.early_stop_marks(history, best, model.training.get("best_value"), stopping)
    name = Path(checkpoint.parent.name, checkpoint.name)  # runs/iris/model.h5 -> iris/model.h5
    title = f"{name}: {int(history['epoch'][-1])} epochs"
    if marks.best_epoch is not None:
        title += f", best {marks.monitor} {marks.best_value:.4g} at epoch {marks.best_epoch}"
    confusion, fits = None, []
    if data is not None and model.data.get("task") == "regression":
        fits = fit_panels(model, data, warn)
    elif data is not None:
        confusion = confusion_panel(model, checkpoint, data, warn)
    curve_panels = panels.curve_panels(history, schedule)
    return panels.Curves(title, curve_panels, marks, confusion, fits)


def training_settings(
    spec_yaml: str, history: dict[str, np.ndarray]
) -> tuple[bool, dict[str, Any] | None]:
    """(a schedule ran, the early-stopping settings or None) from the checkpoint's spec; a
    spec that cannot be read: a schedule ran when the logged rate changed, no early stopping."""
    from nncli.spec import loads

    try:
        spec = loads(spec_yaml, "the checkpoint's spec")
    except SpecError:
        rates = history.get("lr")
        return rates is not None and len(np.unique(rates)) > 1, None
    stopping = spec.training.early_stopping
    settings = None if stopping is None else {**stopping.model_dump(), "version": spec.version}
    return spec.optimizer.get("schedule") is not None, settings


def confusion_panel(
    model: model_io.Model,
    checkpoint: Path,
    data: Path,
    warn: Callable[[str], None] | None = None,
) -> Any:
    """The confusion matrix ``nncli evaluate`` computes on ``data`` (its counts, its labels)."""
    from nncli.commands.evaluate import score_file
    from nncli.commands.predictor import Predictor
    from nncli.plots.panels import Confusion

    if model.labels is None:
        raise SpecError(
            f"--data draws a classifier's confusion matrix or a regression's fit, and "
            f"{checkpoint} is neither",
            field="--data",
        )
    result = score_file(Predictor.of(model), data, warn=warn)  # the model read once
    report = result["report"]
    scores = ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items() if k != "loss")
    title = f"{Path(data).name}: {result['rows']} rows" + (f", {scores}" if scores else "")
    labels = [str(label) for label in result["labels"]]
    return Confusion(title, labels, np.asarray(report["confusion"]).astype(np.int64))


def fit_panels(
    model: model_io.Model, data: Path, warn: Callable[[str], None] | None = None
) -> list[Any]:
    """Each target's predictions on ``data`` against its actual values, both decoded to the
    file's units as ``predict`` writes them (per-step targets: every real step)."""
    from nncli.commands.predictor import Predictor
    from nncli.training.guards import require_finite

    predictor = Predictor.of(model)
    x, y, mask = predictor.encoder.labelled(predictor.read_file(data, warn=warn))
    require_finite(x, "the inputs", str(data))
    require_finite(y, "the targets", str(data))
    return fits_of(predictor, x, y, mask, Path(data).name)


def fits_of(predictor: Any, x: Any, y: np.ndarray, mask: Any, title: str) -> list[Any]:
    """Each target's predictions for the encoded rows ``x`` against ``y``, both decoded."""
    from nncli.plots import panels

    predicted = predictor.decode(predictor.outputs(x, mask), mask)
    actual = predictor.decode(y, mask)
    names = target_names(predictor.model.spec_yaml, list(actual))
    return panels.fits(
        title,
        dict(zip(names, actual.values(), strict=True)),
        dict(zip(names, predicted.values(), strict=True)),
    )


def target_names(spec_yaml: str, columns: list[str]) -> list[str]:
    """The targets' names for decoded ``columns``: ``prediction_<name>`` gives its own, a lone
    ``prediction`` the spec's ``data.target`` (or "target" when the spec cannot be read)."""
    from nncli.spec import loads

    if columns != ["prediction"]:
        return [column.removeprefix("prediction_") for column in columns]
    try:
        target = loads(spec_yaml, "the checkpoint's spec").data.target
    except SpecError:
        return ["target"]
    return [target if isinstance(target, str) else target[0]]


def layer_graph(model: model_io.Model, checkpoint: Path) -> Any:
    """The input and each layer (its config, name, inputs, output shape, parameters) as the
    graph picture's boxes and arrows."""
    from nncli.plots import panels

    net = model.net
    names, inputs = net.wiring.names, net.wiring.inputs
    nodes = [
        panels.GraphNode(layer.config(), names[i], inputs[i], layer.out_shape,
                         layer.parameter_count())
        for i, layer in enumerate(net.layers)
    ]  # fmt: skip
    name = Path(checkpoint.parent.name, checkpoint.name)
    title = f"{name}: {len(nodes)} layers, {net.parameter_count():,} parameters"
    return panels.graph_picture(title, net.input_shape, nodes)


def conv_layers(model: model_io.Model, types: tuple[str, ...] = CONV_TYPES) -> list[Any]:
    return [layer for layer in model.net.layers if layer.type_name in types]


def learned_filters(model: model_io.Model, index: int | None) -> Any:
    """The filters of layer ``index`` (default: the first conv layer) as one tile each."""
    from nncli.plots.panels import filter_grid

    convs = conv_layers(model)
    layers = model.net.layers
    where = ", ".join(f"{layer.index} ({layer.type_name})" for layer in convs) or "none"
    if index is None and not convs:
        raise SpecError(
            f"--filters draws a conv2d or conv1d layer; this model has none "
            f"({', '.join(layer.type_name for layer in layers)})",
            field="--filters",
        )
    chosen = convs[0] if index is None else layers[index] if index < len(layers) else None
    if chosen is None or chosen.type_name not in CONV_TYPES:
        found = "no such layer" if chosen is None else f"a {chosen.type_name} layer"
        raise SpecError(
            f"expected the index of a conv layer ({where}), got {index}: {found}", field="--layer"
        )
    weight = model.net.backend.to_host(chosen.params["weight"])
    count, inputs, *kernel = weight.shape
    per = ("channel" if len(kernel) == 2 else "feature") + ("s" if inputs > 1 else "")
    title = (
        f"layers[{chosen.index}] ({chosen.type_name}): {count} filters of "
        f"{'x'.join(map(str, kernel))} on {inputs} input {per}"
    )
    grid = filter_grid(title, weight)
    how = {"mean": ", channels averaged", "rgb": ", as RGB", "taps": " (rows: features)"}
    return type(grid)(grid.title + how.get(grid.mode, ""), grid.tiles, grid.mode, grid.limit)


def feature_maps(model: model_io.Model, image: Path) -> Any:
    """The one image, encoded as ``predict`` encodes it, and each conv2d layer's output."""
    from nncli.commands import apply
    from nncli.commands.predictor import Predictor
    from nncli.plots import panels
    from nncli.training.guards import require_finite

    predictor = Predictor.of(model)
    encoder = predictor.encoder
    if encoder.kind != "images":
        raise SpecError(
            f"--activations shows an image going through an image model; this model reads "
            f"{apply.READS.get(encoder.kind, encoder.kind)}",
            field="--activations",
        )
    if not conv_layers(model, ("conv2d",)):
        raise SpecError(
            "--activations shows conv2d layers; this model has none", field="--activations"
        )
    image = Path(image)
    if image.is_dir():
        raise DataError("--activations takes one image file, got a folder", where=str(image))
    x, _ = encoder.inputs(predictor.read_file(image))
    require_finite(x, "the inputs", str(image))
    outputs = [
        (f"layers[{layer.index}] (conv2d): {len(out)} maps of {out.shape[1]}x{out.shape[2]}", out)
        for layer, out in layer_outputs(model.net, x[:1])
        if layer.type_name == "conv2d"
    ]
    return panels.feature_maps(f"{image.name} as the network sees it", x[0], outputs)


def layer_outputs(net: Any, x: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    """(layer, its output for the first row, on the host) for every layer, in order."""
    backend = net.backend
    y = backend.xp.asarray(x, dtype=backend.dtype)
    return [(layer, backend.to_host(out)[0]) for layer, out in net.outputs(y)]
