"""A model of several inputs from one table (``data.inputs``) as an ONNX graph: one graph
input per spec input, named after it, each with its own first nodes.

A columns input is its columns in the file's units (categories one-hot), filled and scaled in
the graph as a table's features are; an image input is its pixels (N, C, H, W) in [0, 1]; a
text input is its token ids (N, T) as float32 (0 pads, 1 an unknown token), the time axis
dynamic: the graph has no padding mask, so give each text its own length (a batch of texts of
one length, or one text a call) to get what ``nncli predict`` gives.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from nncli.data.text_column import TextColumn
from nncli.export.graph import Graph
from nncli.export.inputs import table_description, table_inputs
from nncli.export.onnx_graph import convert_network


def first_nodes(g: Graph, encoder: Any, net: Any) -> tuple[dict[str, str], dict[str, list]]:
    """Each input's graph name after its scaling, and its dims."""
    by_name = {column.name: column for column in encoder.table.columns}
    scaled, dims = {}, {}
    for name, shape in net.input_shapes.items():
        entry = encoder.encoders[name]
        if isinstance(entry, list):  # columns: the table's scaling of this input's columns
            part = SimpleNamespace(
                columns=[by_name[c] for c in entry], missing=encoder.table.missing
            )
            scaled[name], dims[name] = table_inputs(g, part, name), ["N", *shape]
        elif isinstance(entry, TextColumn):
            scaled[name], dims[name] = name, ["N", f"T_{name}"]
        else:
            scaled[name], dims[name] = name, ["N", *shape]
    return scaled, dims


def described(encoder: Any, dims: dict[str, list]) -> dict[str, Any]:
    """``nncli.inputs`` of a model of several inputs: each input's kind, shape and encoding."""
    inputs: dict[str, Any] = {}
    for name, entry in encoder.encoders.items():
        if isinstance(entry, list):
            inputs[name] = {"type": "columns", **table_description(encoder.table)}
            inputs[name]["features"] = list(entry)
        else:
            inputs[name] = {k: v for k, v in entry.to_state().items() if k != "image_size"}
            if not isinstance(entry, TextColumn):
                inputs[name]["image_size"] = list(entry.image_size)
        inputs[name]["shape"] = dims[name]
    return {"kind": encoder.kind, "inputs": inputs}


def several_inputs_model(g: Graph, model: Any, encoder: Any) -> tuple[Any, ...]:
    """(graph inputs {name: dims}, the output's name, the metadata's inputs) of ``model``."""
    scaled, dims = first_nodes(g, encoder, model.net)
    y = convert_network(g, model.net, scaled)
    return dims, y, described(encoder, dims)
