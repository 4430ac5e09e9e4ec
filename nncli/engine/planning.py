"""A network's layers made from their configs and wired on the data's inputs, and what each
will hold, known before a weight is drawn (``planned_arrays``: what a spec asks for can be
refused first)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nncli.engine import graph
from nncli.engine.graph import Wiring
from nncli.engine.layer import Layer, Shape, take_trainable
from nncli.engine.registry import LAYERS
from nncli.errors import SpecError


def make_layer(config: str | dict[str, Any] | Layer, index: int) -> Layer:
    """``"flatten"`` or ``{"type": "dense", "units": 3}`` -> a Layer; errors name ``layers[i]``."""
    if isinstance(config, Layer):
        layer = config
    else:
        settings = {"type": config} if isinstance(config, str) else dict(config)
        name = settings.pop("type", None)
        try:
            trainable = take_trainable(settings)
            layer = LAYERS.create(name, settings)
        except SpecError as exc:
            exc.field = f"layers[{index}].{exc.field or 'type'}"
            raise
        layer.trainable = trainable
    layer.index = index
    return layer


@dataclass
class LayerArrays:
    """What one layer of a network will hold, known before it is built (``planned_arrays``)."""

    label: str  # "layers[0] (dense)"
    params: dict[str, Shape]
    state: dict[str, Shape]

    def count(self, which: str = "params") -> int:
        return sum(math.prod(shape) for shape in getattr(self, which).values())


def wired_layers(
    configs: list[Any], input_names: tuple[str, ...] = (graph.INPUT_NAME,)
) -> tuple[list[Layer], Wiring]:
    """Layer configs (with their ``name``/``inputs``) -> the layers and how they are wired on
    the data's ``input_names``."""
    if not configs:
        raise SpecError("expected at least one layer, got none", field="layers")
    split = [graph.split(config) for config in configs]
    layers = [make_layer(own, i) for i, (own, _) in enumerate(split)]
    kinds = [(layer.type_name, layer.several_inputs) for layer in layers]
    wiring = graph.wire([keys for _, keys in split], kinds, input_names)
    for i, taken in enumerate(wiring.inputs):
        layers[i].input_labels = tuple(wiring.label(source, kinds) for source in taken)
    return layers, wiring


def input_shapes(layer: Layer, taken: tuple[int, ...], shapes: dict[int, Shape]) -> Any:
    """The input shape of a layer taking the outputs ``taken`` (a list for a merge)."""
    return [shapes[i] for i in taken] if layer.several_inputs else shapes[taken[0]]


def named_shapes(input_shape: Shape | dict[str, Shape]) -> dict[str, Shape]:
    """One input's shape, or {input name: shape} for several -> {input name: shape}."""
    given = input_shape if isinstance(input_shape, dict) else {graph.INPUT_NAME: input_shape}
    return {str(name): tuple(int(d) for d in shape) for name, shape in given.items()}


def data_shapes(shapes: dict[str, Shape]) -> dict[int, Shape]:
    """{input name: shape} -> {data position: shape} (-1, -2, ...)."""
    return {graph.data_position(k): shape for k, shape in enumerate(shapes.values())}


def planned_arrays(layers: list[Any], input_shape: Shape | dict[str, Shape]) -> list[LayerArrays]:
    """The parameter and state shapes each layer of ``layers`` (configs) will make on
    ``input_shape`` (a dict for several inputs), without allocating any array: what a network
    takes is known (and can be refused) before ``Network`` draws a single weight."""
    named = named_shapes(input_shape)
    made, wiring = wired_layers(layers, tuple(named))
    shapes = data_shapes(named)
    planned: dict[int, LayerArrays] = {}
    for i in wiring.order:
        layer, shape = made[i], input_shapes(made[i], wiring.inputs[i], shapes)
        planned[i] = LayerArrays(layer.label, layer.param_shapes(shape), layer.state_shapes(shape))
        shapes[i] = nonempty(layer, layer.output_shape(shape))
    return [planned[i] for i in range(len(made))]


def nonempty(layer: Layer, shape: Shape) -> Shape:
    if any(d < 1 for d in shape):
        raise SpecError(f"{layer.label} gives an empty output {shape}", field="layers")
    return shape
