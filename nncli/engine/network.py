"""``Network``: layers built from configs and wired as a graph (a stack being the plain case),
with shape inference, the forward and backward passes and the flat parameter buffers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncli.backend import Backend, get_backend, to_host
from nncli.engine import graph
from nncli.engine.activations import ReLU
from nncli.engine.graph import INPUT
from nncli.engine.layer import Layer, Shape, frozen_keys, written_config
from nncli.engine.optimizers import FlatParameters, trainable_part
from nncli.engine.planning import (  # noqa: F401 - importable from here as they always were
    LayerArrays,
    data_shapes,
    input_shapes,
    make_layer,
    named_shapes,
    nonempty,
    planned_arrays,
    wired_layers,
)
from nncli.errors import ShapeError


@dataclass(frozen=True)
class Step:
    """One layer as the passes run it: what it takes, what no later layer reads once it ran,
    and whether backward visits it when dL/d(input) is not wanted."""

    layer: Layer
    index: int
    inputs: tuple[int, ...]
    first: int  # inputs[0]: the one input of most layers, the one whose mask a merge takes
    several: bool  # a merge: it takes and returns lists
    release: tuple[int, ...]  # outputs (and the input) read for the last time here
    behind_params: bool  # a layer with parameters feeds it: it must return dL/d(its input)
    visited: bool  # it or a layer feeding it has parameters


class Network:
    """The layers as a graph, each run after the outputs it takes: y = the last layer's output.
    A stack (each layer taking the one before it) runs and costs as a plain chain of layers.

    ``layers`` are configs (or Layer objects), each may carry ``name`` and ``inputs``
    (``graph.py``); ``input_shape`` leaves out the batch, e.g. (4,) or (1, 28, 28), or is a dict
    {input name: shape} for data of several inputs (``inputs`` may name each). Parameters
    are drawn on the host from ``seed``, layer after layer in the order they run, then moved to
    ``backend``. ``check(layer, in_shape)``, when given, sees each layer before it is built (a
    checkpoint's loader compares ``layer.array_shapes(in_shape)`` with the arrays it holds).

    After the build every parameter is a view into one 1-D buffer and every gradient a view
    into another (``named_parameters`` / ``named_gradients`` hand them over as
    ``FlatParameters``), so an optimizer updates all of them in a few whole-array passes.
    """

    def __init__(
        self,
        layers: list[Any],
        input_shape: Shape | dict[str, Shape],
        backend: Backend | None = None,
        seed: int = 0,
        check: Callable[[Layer, Shape], None] | None = None,
    ):
        self.backend = backend or get_backend()
        self.input_shapes = named_shapes(input_shape)
        self.input_names = tuple(self.input_shapes)
        # one input: its shape, as always; several: {name: shape}
        self.input_shape: Any = (
            dict(self.input_shapes) if isinstance(input_shape, dict) else self.input_shapes["input"]
        )
        self.layers, self.wiring = wired_layers(layers, self.input_names)
        rng = np.random.default_rng(seed)
        shapes = data_shapes(self.input_shapes)
        for i in self.wiring.order:
            layer = self.layers[i]
            shape = input_shapes(layer, self.wiring.inputs[i], shapes)
            if check is not None:  # may refuse the layer before it allocates its arrays
                check(layer, shape)
            shapes[i] = nonempty(layer, layer.build(shape, self.backend, rng))
        self.output_shape = shapes[len(self.layers) - 1]
        self._steps = self._plan()
        self._commute_relu_and_max_pools()
        self._views: list[tuple[Layer, str, Any, Any]] = []
        self._training = False
        self._flatten()

    def _plan(self) -> list[Step]:
        wiring, params = self.wiring, [layer.learns() for layer in self.layers]
        behind, release = wiring.behind(params), wiring.releases()
        return [
            Step(self.layers[i], i, wiring.inputs[i], wiring.inputs[i][0],
                 self.layers[i].several_inputs, release[i], behind[i], behind[i] or params[i])
            for i in wiring.order
        ]  # fmt: skip

    @property
    def is_stack(self) -> bool:
        return self.wiring.is_stack

    @property
    def several_inputs(self) -> bool:
        """Built on a dict of input shapes: fed a dict, gives back a dict of dL/d(input)."""
        return isinstance(self.input_shape, dict)

    def _fed(self, x: Any, mask: Any) -> tuple[dict[int, Any], dict[int, Any]]:
        """x (an array or {input name: array}) and the masks -> both by data position."""
        if not isinstance(x, dict):
            x = {self.input_names[0]: x}
        if not isinstance(mask, dict):
            mask = {self.input_names[0]: mask}
        missing = [name for name in self.input_names if name not in x]
        if missing:
            given = ", ".join(map(repr, x))
            raise ShapeError(f"no data for the input {missing[0]!r}; got {given}")
        values, masks = {}, {}
        for k, name in enumerate(self.input_names):
            values[graph.data_position(k)] = x[name]
            masks[graph.data_position(k)] = mask.get(name)
        return values, masks

    # -- computation ---------------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False, mask: Any = None) -> Any:
        """(N, *input_shape) -> (N, *output_shape); ``mask`` (N, T) marks real sequence steps
        (several inputs: ``x`` and ``mask`` are dicts by input name, a mask for each padded one)
        (each layer gets the mask of its own input, see ``Layer.output_mask``; a merge the
        mask of its first input).

        Each layer checks its own input shape, so a mismatch names the layer."""
        y = x
        for _layer, y in self.outputs(x, training, mask):  # noqa: B007 - y: the last output
            pass
        return y

    def outputs(
        self, x: Any, training: bool = False, mask: Any = None
    ) -> Iterator[tuple[Layer, Any]]:
        """Each layer with its output, in the order ``forward`` runs them (``nncli plot``
        shows the conv layers' outputs). An output no later layer reads is let go at once."""
        self._training = training
        values, masks = self._fed(x, mask)
        for step in self._steps:
            layer, first = step.layer, step.first
            layer.mask = given = masks[first]
            y = layer.forward(
                [values[i] for i in step.inputs] if step.several else values[first], training
            )
            values[step.index] = y
            masks[step.index] = given if given is None else layer.output_mask(given)
            for source in step.release:
                del values[source], masks[source]
            yield layer, y

    def backward(self, dy: Any, input_grad: bool | None = None) -> Any:
        """dL/d(output) -> dL/d(input) ({input name: dL/d(input)} for several inputs); fills
        every layer's ``grads``. Where an output feeds several layers, their gradients add up.

        ``input_grad`` None: dL/d(input) only after an inference-mode forward. Training never
        needs the gradient with respect to its data, and the first layer's is often its largest
        matrix product, so after ``forward(training=True)`` it is skipped and None may come
        back; True or False says so explicitly. Skipping it, the backward pass leaves out every
        layer no parameter stands behind, and a layer with parameters that has none behind it
        computes its parameter gradients only."""
        if input_grad is None:
            input_grad = not self._training
        # without dL/dx nothing in front of the first layers with parameters needs a gradient:
        # behind a reshape or flatten the first conv would otherwise still run a whole col2im
        grads = {self._steps[-1].index: dy}
        for step in reversed(self._steps):
            if not (input_grad or step.visited):
                continue
            layer = step.layer
            layer.skip_input_grad = not (input_grad or step.behind_params)
            dx = layer.backward(grads.pop(step.index))
            if layer.skip_input_grad:
                continue
            for source, d in (
                zip(step.inputs, dx, strict=True) if step.several else [(step.first, dx)]
            ):
                grads[source] = grads[source] + d if source in grads else d
        if not input_grad:
            return None
        if self.several_inputs:
            return {
                name: grads.get(graph.data_position(k)) for k, name in enumerate(self.input_names)
            }
        return grads.get(INPUT)

    def _commute_relu_and_max_pools(self) -> None:
        """A ReLU right before a max-pool runs after it, inside the pool (``take_relu``):
        max(relu(x)) = relu(max(x)), and both send a window's gradient to its first maximum
        when it is positive and nowhere otherwise, so the outputs and gradients are the same
        while the ReLU and its mask touch a quarter of the values (2x2 pools). Only where the
        pool alone takes the output: another taker needs the ReLU done."""
        for layer, takers in zip(self.layers, self.wiring.consumers(), strict=True):
            after = self.layers[takers[0]] if len(takers) == 1 else None
            if after is None or after.several_inputs:
                continue
            if type(layer.activation) is ReLU and after.take_relu():
                layer.activation_deferred = True

    def set_rng(self, rng: np.random.Generator) -> None:
        """Hand the generator for dropout (and any other training-time randomness) to layers."""
        for layer in self.layers:
            layer.set_rng(rng)

    def share_batches(self, batch_sum: Any) -> None:
        """Run each global batch split between processes: ``batch_sum`` sums a 1-D array over
        all of them (None: this process holds whole batches, the default)."""
        for layer in self.layers:
            layer.batch_sum, layer.batch_share = batch_sum, None

    def set_share(self, first: int, rows: int) -> None:
        """This process holds rows ``first ..`` of a global batch of ``rows`` (for dropout)."""
        for layer in self.layers:
            layer.batch_share = (first, rows)

    # -- the output activation and fused losses -----------------------------------------------
    @property
    def output_activation(self) -> str | None:
        return self.layers[-1].output_activation

    def fuse_output(self, activation: str | None) -> bool:
        """Let the loss take the last layer's logits when its activation is ``activation``."""
        fused = activation is not None and self.output_activation == activation
        self.layers[-1].fused_output = fused
        return fused

    @property
    def logits(self) -> Any:
        return self.layers[-1].logits

    # -- parameters ----------------------------------------------------------------------------
    def _flatten(self) -> None:
        """Move every parameter into one 1-D buffer and every gradient into another (views)."""
        entries = [(layer, k, p) for layer in self.layers for k, p in layer.params.items()]
        entries.sort(key=lambda entry: entry[1] in entry[0].frozen_names())  # trainable first
        if not entries or len({p.dtype for _, _, p in entries}) != 1:
            return
        xp = self.backend.xp
        total = sum(int(p.size) for _, _, p in entries)
        self._param_buffer = xp.empty(total, dtype=entries[0][2].dtype)
        self._grad_buffer = xp.zeros_like(self._param_buffer)
        offset = 0
        for layer, k, p in entries:
            view = self._param_buffer[offset : offset + p.size].reshape(p.shape)
            view[...] = p
            grad = self._grad_buffer[offset : offset + p.size].reshape(p.shape)
            layer.params[k], layer.grads[k] = view, grad
            self._views.append((layer, k, view, grad))
            offset += p.size

    def _flat(self, which: int) -> FlatParameters | None:
        """The flat parameters (0) or gradients (1); an array a layer put in place of its view
        is copied into the view first, so the buffer always holds the current values."""
        if not self._views:
            return None
        names = {}
        for layer, k, *views in self._views:
            held, view = (layer.params if which == 0 else layer.grads), views[which]
            if held.get(k) is not view:
                view[...] = held[k]
                held[k] = view
            names[f"{layer.index}.{layer.type_name}.{k}"] = view
        return FlatParameters(names, self._grad_buffer if which else self._param_buffer)

    def trainable(self, named: dict[str, Any]) -> dict[str, Any]:
        """Of ``named_parameters()`` or ``named_gradients()``, those the optimizer updates: all
        but the frozen layers' (``trainable: false``), the flat buffer's leading slice."""
        return trainable_part(named, frozen_keys(self.layers))

    def named_parameters(self) -> dict[str, Any]:
        """``{"0.dense.weight": array, ...}`` in layer order."""
        flat = self._flat(0)
        if flat is not None:
            return flat
        return {
            f"{layer.index}.{layer.type_name}.{name}": p
            for layer in self.layers
            for name, p in layer.params.items()
        }

    def named_gradients(self) -> dict[str, Any]:
        flat = self._flat(1)
        if flat is not None:
            return flat
        return {
            f"{layer.index}.{layer.type_name}.{name}": layer.grads[name]
            for layer in self.layers
            for name in layer.params
        }

    def named_state(self) -> dict[str, Any]:
        """Non-trainable arrays, ``{"1.batchnorm.running_mean": array, ...}`` in layer order."""
        return {
            f"{layer.index}.{layer.type_name}.{name}": a
            for layer in self.layers
            for name, a in layer.state.items()
        }

    def get_weights(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter and every state array (what a snapshot restores)."""
        arrays = {**self.named_parameters(), **self.named_state()}
        return {name: to_host(p).copy() for name, p in arrays.items()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Copy host arrays into the parameters and state (in place, so optimizers keep their
        references)."""
        arrays = {**self.named_parameters(), **self.named_state()}
        missing = sorted(set(arrays) - set(weights))
        if missing:
            raise ShapeError(f"no weights given for {', '.join(missing)}")
        for name, p in arrays.items():
            value = np.asarray(weights[name])
            if value.shape != tuple(p.shape):
                raise ShapeError(f"{name}: expected shape {tuple(p.shape)}, got {value.shape}")
            p[...] = self.backend.asarray(value, dtype=p.dtype)

    def parameter_count(self) -> int:
        return sum(layer.parameter_count() for layer in self.layers)

    def config(self) -> list[dict[str, Any]]:
        """Each layer's config with its ``name``/``inputs`` as written (a stack's: none)."""
        return [
            {**written_config(layer), **keys}
            for layer, keys in zip(self.layers, self.wiring.written, strict=True)
        ]

    def summary(self) -> list[dict[str, Any]]:
        """One row per layer (index, name, inputs, type, output shape, parameter counts, notes,
        and a composed layer's parts as rows of their own) as data. ``inputs`` names the outputs
        a layer takes: ``input``, a layer's name, or an unnamed layer's index."""
        names = self.wiring.names
        rows = []
        for layer, taken in zip(self.layers, self.wiring.inputs, strict=True):
            row = {
                "index": layer.index,
                "name": names[layer.index],
                "inputs": [self.input_names[-1 - i] if i < 0 else names[i] or i for i in taken],
                **_counts(layer),
                "notes": list(layer.size_notes),
                "warnings": list(layer.warnings),
            }
            row["parts"] = [{"name": k, **_counts(part)} for k, part in layer.sublayers().items()]
            rows.append(row)
        return rows

    def __repr__(self) -> str:
        inner = "\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Network(\n{inner}\n)  # {self.parameter_count()} parameters"


def _counts(layer: Layer) -> dict[str, Any]:
    """A layer's type, activation, output shape and parameter counts (a summary row's)."""
    weights = sum(int(np.prod(p.shape)) for k, p in layer.params.items() if "bias" not in k)
    return {
        "type": layer.type_name,
        "activation": layer.output_activation,
        "output_shape": ["N", *layer.out_shape],
        "params": layer.parameter_count(),
        "non_trainable": layer.state_count(),
        "weights": weights,
        "biases": layer.parameter_count() - weights,
    }


# the name the network had while it could only be a stack; code written against it still runs
Sequential = Network
