"""A trained model as an ONNX graph: scaling in, the network, unscaling out, and metadata.

``onnx_model`` builds the ``onnx.ModelProto`` of a loaded checkpoint: one input ``input`` (one
per spec input, named after it, for a table of several inputs: ``several.py``)
(float32, a dynamic batch axis, and a dynamic time axis for sequences and text), the data's
scaling as the first nodes (``inputs.py``), every layer through its converter
(``onnx_graph.py``), and one output ``output`` as ``nncli predict`` gives it.
"""

from __future__ import annotations

import json
from typing import Any

from nncli import __version__
from nncli.export.graph import Graph
from nncli.export.inputs import data_form
from nncli.export.onnx_graph import convert_network
from nncli.export.several import several_inputs_model

DEFAULT_OPSET = 17  # LayerNormalization's first opset
MIN_OPSET = 17


def onnx_model(model: Any, encoder: Any, opset: int = DEFAULT_OPSET) -> Any:
    """A loaded checkpoint (``nncli.checkpoint.model.Model``) and its stored encoder ->
    onnx.ModelProto."""
    form = data_form(str(model.data.get("kind", encoder.kind)), str(model.path))
    net = model.net
    g = Graph(opset)
    if net.several_inputs:  # one graph input per spec input (data.inputs), named after it
        inputs, y, described = several_inputs_model(g, model, encoder)
        out_dims = ["N", *net.output_shape]
        return g.model(inputs, y, [], out_dims, metadata(model, encoder, [], form, described))
    x = "input"
    y = form.unscale(g, encoder, convert_network(g, net, form.scale(g, encoder, x)))
    steps = form.any_steps and len(net.input_shape) == 2
    in_dims = ["N", *(["T"] if steps else []), *net.input_shape[int(steps) :]]
    out_dims: list[Any] = ["N", *net.output_shape]
    if steps and len(out_dims) == 3:
        out_dims[1] = "T_out"  # strided 1-D layers may change the number of steps
    return g.model(x, y, in_dims, out_dims, metadata(model, encoder, in_dims, form))


def metadata(
    model: Any, encoder: Any, in_dims: list[Any], form: Any, inputs: dict | None = None
) -> dict[str, str]:
    """``nncli.version``, ``nncli.inputs`` (JSON), ``nncli.labels`` (JSON), ``nncli.spec``."""
    if inputs is None:
        inputs = {"kind": encoder.kind, "shape": in_dims, **form.describe(encoder)}
    labels = model.labels
    if labels is None and encoder.kind == "text":
        labels = list(encoder.vocabulary)  # one output per symbol
    return {
        "nncli.version": __version__,
        "nncli.inputs": json.dumps(inputs),
        "nncli.labels": json.dumps(labels),
        "nncli.task": str(model.data.get("task", "")),
        "nncli.spec": model.spec_yaml,
    }


__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "onnx_model"]
