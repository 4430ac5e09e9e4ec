"""The data's scaling inside the graph, per data kind, and the inputs described for metadata.

The ONNX input is the data as the user has it: CSV features in the file's units with categorical
columns one-hot (the encoder's ``feature_names`` order), image pixels in [0, 1], sequences and
time series in the file's units, text as one-hot symbols. ``KINDS`` maps each data kind to its
``DataForm``: the first nodes (a table's empty cells filled, then (x - offset) / scale), the last
ones for a time series' targets (y scale + offset), and the JSON that ``nncli.inputs`` stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncli.data.columns import CategoricalColumn, NumericColumn
from nncli.errors import CheckpointError
from nncli.export.graph import Graph


def scale_nodes(g: Graph, x: str, offset: Any, scale: Any, dtype: Any = np.float32) -> str:
    """(x - offset) / scale, broadcast over the leading axes, with constants in ``dtype``."""
    centred = g.node("Sub", [x, g.weight("offset", offset, dtype)], hint="centred")
    return g.node("Div", [centred, g.weight("scale", scale, dtype)], hint="scaled")


def table_scaling(table: Any) -> tuple[np.ndarray, np.ndarray]:
    """(F,) offsets and scales of a table encoder's encoded columns; one-hot columns pass as
    they are (offset 0, scale 1)."""
    offset, scale = [], []
    for column in table.columns:
        width = len(column.names)
        numeric = isinstance(column, NumericColumn)
        offset += [column.offset if numeric else 0.0] * width
        scale += [column.scale if numeric else 1.0] * width
    return np.array(offset), np.array(scale)


def table_fill(table: Any) -> np.ndarray:
    """(F,) what an empty cell becomes in each encoded column with ``missing: fill``: a number's
    training mean, a category's most frequent training value one-hot."""
    values: list[float] = []
    for column in table.columns:
        if isinstance(column, NumericColumn):
            values.append(column.fill)
        else:
            values += column.encode(column.codes(np.array([column.fill])))[0].tolist()
    return np.array(values, dtype=np.float64)


def table_inputs(g: Graph, table: Any, x: str) -> str:
    """An empty cell, NaN (a category: NaN in its one-hot columns), takes the training fill when
    the model was trained with ``missing: fill``, as predict does; then (x - offset) / scale.
    Both in float64 as nncli does them (float32 would round a number far from its mean, a year
    near 2007 with a spread of 1, to a few digits), the result float32 as nncli feeds it."""
    from onnx import TensorProto

    wide = g.node("Cast", [x], to=TensorProto.DOUBLE)
    if table.missing == "fill":
        fill = g.weight("fill", table_fill(table), np.float64)
        wide = g.node("Where", [g.node("IsNaN", [wide]), fill, wide], hint="filled")
    scaled = scale_nodes(g, wide, *table_scaling(table), np.float64)
    return g.node("Cast", [scaled], to=TensorProto.FLOAT)


def table_description(table: Any) -> dict[str, Any]:
    categories = {
        c.name: list(c.categories) for c in table.columns if isinstance(c, CategoricalColumn)
    }
    described = {"columns": table.feature_names, "features": table.feature_columns,
                 "categories": categories, "missing": table.missing}  # fmt: skip
    if table.missing == "fill":
        described["fill"] = {c.name: c.fill for c in table.columns}
    return described


def image_inputs(g: Graph, encoder: Any, x: str) -> str:
    """Per channel, in float32 as nncli scales: (pixels - mean[c]) / std[c]."""
    mean = encoder.mean.astype(np.float32)[:, None, None]
    return scale_nodes(g, x, mean, encoder.std.astype(np.float32)[:, None, None])


def image_description(encoder: Any) -> dict[str, Any]:
    return {"image_size": list(encoder.image_size), "color": encoder.color,
            "resize": bool(encoder.resize), "pixels": "[0, 1]"}  # fmt: skip


def series_inputs(g: Graph, encoder: Any, x: str) -> str:
    columns = encoder.input_columns
    return scale_nodes(g, x, [c.offset for c in columns], [c.scale for c in columns])


def series_outputs(g: Graph, encoder: Any, y: str) -> str:
    """Scaled forecasts -> the file's units: y scale + offset, in float64 as nncli does it
    (in float32 a forecast near 0 of a series near 100 would lose its last digits)."""
    from onnx import TensorProto

    columns = encoder.target_columns
    wide = g.node("Cast", [y], to=TensorProto.DOUBLE)
    scale = g.weight("target_scale", [c.scale for c in columns], np.float64)
    offset = g.weight("target_offset", [c.offset for c in columns], np.float64)
    values = g.node("Add", [g.node("Mul", [wide, scale]), offset])
    return g.node("Cast", [values], to=TensorProto.FLOAT)


def series_description(encoder: Any) -> dict[str, Any]:
    return {"columns": encoder.feature_names, "targets": encoder.target_names,
            "window": encoder.window, "horizon": encoder.horizon}  # fmt: skip


def text_description(encoder: Any) -> dict[str, Any]:
    return {
        "level": encoder.level,
        "vocabulary": list(encoder.vocabulary),
        "one_hot": encoder.input_form != "ids",
    }  # ids: an embedding first


def unchanged(g: Graph, encoder: Any, x: str) -> str:
    return x


@dataclass(frozen=True)
class DataForm:
    """How one data kind enters and leaves the graph."""

    scale: Callable[[Graph, Any, str], str]
    describe: Callable[[Any], dict[str, Any]]
    unscale: Callable[[Graph, Any, str], str] = unchanged
    any_steps: bool = False  # the time axis is dynamic (sequences differ in length)


KINDS = {
    "csv": DataForm(table_inputs, table_description),
    "sequences": DataForm(  # rows of sequences: encoded as a table's rows
        lambda g, encoder, x: table_inputs(g, encoder.table, x),
        lambda encoder: table_description(encoder.table),
        any_steps=True,
    ),
    "images": DataForm(image_inputs, image_description),
    "timeseries": DataForm(series_inputs, series_description, series_outputs),
    "text": DataForm(unchanged, text_description, any_steps=True),
    "arrays": DataForm(unchanged, lambda encoder: {"x": encoder.x_name, "y": encoder.y_name}),
}


def data_form(kind: str, where: str) -> DataForm:
    form = KINDS.get(kind)
    if form is None:
        raise CheckpointError(
            f"expected a data kind of {', '.join(KINDS)}, got {kind!r}", where=where
        )
    return form
