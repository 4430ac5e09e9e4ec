"""Layer type -> ONNX converter, one function per type in ``CONVERTERS``.

A converter takes the graph, the built layer and the name of its input, and returns the name of
its output before the layer's activation; ``convert_network`` then applies the activation
through ``ACTIVATIONS``. Sequences are (N, T, F) in nncli; ONNX's convolutions and pools want
channels first, so the 1-D layers transpose to (N, F, T) and back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nncli.backend import to_host
from nncli.engine.graph import data_position
from nncli.engine.registry import ACTIVATIONS as ENGINE_ACTIVATIONS
from nncli.engine.registry import did_you_mean
from nncli.errors import SpecError
from nncli.export.activations import ACTIVATIONS, activate
from nncli.export.attention import attention, positional, transformer
from nncli.export.graph import Graph
from nncli.export.merge import add, concat, multiply, residual
from nncli.export.recurrent import RECURRENT

Converter = Callable[[Graph, Any, Any], str]  # a merge takes a list of names
CONVERTERS: dict[str, Converter] = {}
CHANNELS_LAST = [0, 2, 1]  # (N, T, F) <-> (N, F, T)


def converter(*names: str) -> Callable[[Converter], Converter]:
    def add(fn: Converter) -> Converter:
        for name in names:
            CONVERTERS[name] = fn
        return fn

    return add


def param(layer: Any, key: str) -> np.ndarray:
    return to_host(layer.params[key]).astype(np.float32)


@converter("dense")
def dense(g: Graph, layer: Any, x: str) -> str:
    """z = x W^T + b over the last axis (MatMul takes any leading axes, Gemm only 2-D)."""
    z = g.node("MatMul", [x, g.weight("weight", param(layer, "weight").T)])
    return g.node("Add", [z, g.weight("bias", param(layer, "bias"))]) if layer.use_bias else z


@converter("conv2d")
def conv2d(g: Graph, layer: Any, x: str) -> str:
    (top, bottom), (left, right) = layer.windows.pads
    inputs = [x, g.weight("weight", param(layer, "weight"))]
    if layer.use_bias:
        inputs.append(g.weight("bias", param(layer, "bias")))
    return g.node(
        "Conv",
        inputs,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        pads=[top, left, bottom, right],
    )


def same_pads(g: Graph, x: str, windows: Any) -> str:
    """The Pad node's pads [0, 0, left, 0, 0, right] for ``same`` on x (N, F, T):
    out = ceil(T / s), total = max((out - 1) s + span - T, 0), left = total // 2."""

    def const(hint: str, value: int) -> str:
        return g.weight(hint, [value], np.int64)

    span, stride = windows.dilation * (windows.size - 1) + 1, windows.stride
    steps = g.node("Shape", [x], start=2, end=3)
    out = g.node("Div", [g.node("Add", [steps, const("stride_1", stride - 1)]), const("s", stride)])
    reach = g.node(
        "Add", [g.node("Mul", [out, const("s", stride)]), const("span_s", span - stride)]
    )
    total = g.node("Max", [g.node("Sub", [reach, steps]), const("zero", 0)])
    left = g.node("Div", [total, const("two", 2)])
    zeros = g.weight("zeros", [0, 0], np.int64)
    return g.node("Concat", [zeros, left, zeros, g.node("Sub", [total, left])], axis=0)


def time_padded(g: Graph, x: str, windows: Any, fill: float = 0.0) -> str:
    """x (N, F, T) with the padding of a 1-D window on the time axis. ``same`` pads as Keras
    (ceil(T / stride) outputs, the odd cell on the right), computed in the graph for any T:
    ONNX Runtime refuses ``auto_pad`` with dilation."""
    if windows.padding == "valid" or windows.padding == 0:
        return x
    if windows.padding == "same":
        pads = same_pads(g, x, windows)
    else:
        pads = g.weight("pads", [0, 0, windows.padding, 0, 0, windows.padding], np.int64)
    return g.node("Pad", [x, pads, g.weight("fill", fill)], mode="constant")


@converter("conv1d")
def conv1d(g: Graph, layer: Any, x: str) -> str:
    win = layer.windows
    x = time_padded(g, g.transpose(x, CHANNELS_LAST), win)
    inputs = [x, g.weight("weight", param(layer, "weight"))]
    if layer.use_bias:
        inputs.append(g.weight("bias", param(layer, "bias")))
    z = g.node(
        "Conv",
        inputs,
        kernel_shape=[win.size],
        strides=[win.stride],
        dilations=[win.dilation],
    )
    return g.transpose(z, CHANNELS_LAST)


def pool2d(op: str, **extra: Any) -> Converter:
    def convert(g: Graph, layer: Any, x: str) -> str:
        (top, bottom), (left, right) = layer.windows.pads
        return g.node(
            op,
            [x],
            kernel_shape=list(layer.pool_size),
            strides=list(layer.strides),
            pads=[top, left, bottom, right],
            **extra,
        )

    return convert


def pool1d(op: str, fill: float) -> Converter:
    """Padded steps hold ``fill``: -inf for the maximum, 0 for the average (counted, as
    PyTorch's count_include_pad)."""

    def convert(g: Graph, layer: Any, x: str) -> str:
        win = layer.windows
        x = time_padded(g, g.transpose(x, CHANNELS_LAST), win, fill)
        y = g.node(op, [x], kernel_shape=[win.size], strides=[win.stride])
        return g.transpose(y, CHANNELS_LAST)

    return convert


# padded cells count as zeros in nncli's averages (PyTorch's count_include_pad)
CONVERTERS["maxpool2d"] = pool2d("MaxPool")
CONVERTERS["avgpool2d"] = pool2d("AveragePool", count_include_pad=1)
CONVERTERS["maxpool1d"] = pool1d("MaxPool", -np.inf)
CONVERTERS["avgpool1d"] = pool1d("AveragePool", 0.0)


def global_pool(op: str) -> Converter:
    """(N, C, H, W) -> (N, C); sequences (N, T, F) -> (N, F) through (N, F, T)."""

    def convert(g: Graph, layer: Any, x: str) -> str:
        if len(layer.in_shape) == 2:
            x = g.transpose(x, CHANNELS_LAST)
        return g.node("Flatten", [g.node(op, [x])], axis=1)

    return convert


CONVERTERS["global_avgpool"] = global_pool("GlobalAveragePool")
CONVERTERS["global_maxpool"] = global_pool("GlobalMaxPool")


@converter("flatten")
def flatten(g: Graph, layer: Any, x: str) -> str:
    return g.node("Flatten", [x], axis=1)


@converter("reshape")
def reshape(g: Graph, layer: Any, x: str) -> str:
    return g.node("Reshape", [x, g.weight("shape", [0, *layer.shape], np.int64)])


@converter("dropout")
def identity(g: Graph, layer: Any, x: str) -> str:
    """Dropout is the identity at inference; so is an activation layer before its activation."""
    return x


@converter("batchnorm")
def batchnorm(g: Graph, layer: Any, x: str) -> str:
    """Inference form with the running statistics; sequences through (N, F, T)."""
    sequences = len(layer.in_shape) == 2
    if sequences:
        x = g.transpose(x, CHANNELS_LAST)
    state = {k: to_host(v).astype(np.float32) for k, v in layer.state.items()}
    inputs = [
        x,
        g.weight("scale", param(layer, "weight")),
        g.weight("bias", param(layer, "bias")),
        g.weight("mean", state["running_mean"]),
        g.weight("var", state["running_var"]),
    ]
    y = g.node("BatchNormalization", inputs, epsilon=float(layer.epsilon))
    return g.transpose(y, CHANNELS_LAST) if sequences else y


@converter("layernorm")
def layernorm(g: Graph, layer: Any, x: str) -> str:
    inputs = [x, g.weight("scale", param(layer, "weight")), g.weight("bias", param(layer, "bias"))]
    return g.node("LayerNormalization", inputs, axis=-1, epsilon=float(layer.epsilon))


@converter("embedding")
def embedding(g: Graph, layer: Any, x: str) -> str:
    """The float ids the input carries -> int64 -> rows of the weight."""
    from onnx import TensorProto

    ids = g.node("Cast", [x], to=TensorProto.INT64)
    return g.node("Gather", [g.weight("weight", param(layer, "weight")), ids], axis=0)


CONVERTERS.update(RECURRENT)
CONVERTERS.update(attention=attention, positional=positional)
CONVERTERS.update(add=add, multiply=multiply, concat=concat)
for _name in ENGINE_ACTIVATIONS.names():  # an activation layer: its activation does the work
    CONVERTERS.setdefault(_name, identity)


def convert_layer(g: Graph, layer: Any, x: Any) -> str:
    """One layer followed by its activation -> the output's name (``x`` a list of names for a
    merge)."""
    convert = CONVERTERS.get(layer.type_name)
    if convert is None:
        raise SpecError(
            f"{layer.label} has no ONNX converter (types with one: "
            f"{', '.join(sorted(CONVERTERS))})" + did_you_mean(layer.type_name, list(CONVERTERS))
        )
    x = convert(g, layer, x)
    return x if layer.activation is None else activate(g, layer.activation, x)


CONVERTERS["transformer"] = transformer(convert_layer)  # its parts through convert_layer
CONVERTERS["residual"] = residual(convert_layer)


def convert_network(g: Graph, net: Any, x: str | dict[str, str]) -> str:
    """Every layer of ``net`` in the order it runs, each on the outputs it takes and followed by
    its activation -> the output's name. ``x``: the input's name, or {input name: graph name}
    for a network of several inputs."""
    given = x if isinstance(x, dict) else {net.input_names[0]: x}
    names = {data_position(k): given[name] for k, name in enumerate(net.input_names)}
    for i in net.wiring.order:
        layer, taken = net.layers[i], [names[source] for source in net.wiring.inputs[i]]
        names[i] = convert_layer(g, layer, taken if layer.several_inputs else taken[0])
    return names[len(net.layers) - 1]


__all__ = ["ACTIVATIONS", "CONVERTERS", "convert_network"]
