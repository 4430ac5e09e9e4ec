"""``Sequential``: a stack of layers built from configs, with shape inference."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncli.backend import Backend, get_backend, to_host
from nncli.engine.activations import ReLU
from nncli.engine.layer import Layer, Shape
from nncli.engine.optimizers import FlatParameters
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError, SpecError


def make_layer(config: str | dict[str, Any] | Layer, index: int) -> Layer:
    """``"flatten"`` or ``{"type": "dense", "units": 3}`` -> a Layer; errors name ``layers[i]``."""
    if isinstance(config, Layer):
        layer = config
    else:
        settings = {"type": config} if isinstance(config, str) else dict(config)
        name = settings.pop("type", None)
        try:
            layer = LAYERS.create(name, settings)
        except SpecError as exc:
            exc.field = f"layers[{index}].{exc.field or 'type'}"
            raise
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


def planned_arrays(layers: list[Any], input_shape: Shape) -> list[LayerArrays]:
    """The parameter and state shapes each layer of ``layers`` (configs) will make on
    ``input_shape``, without allocating any array: what a network takes is known (and can be
    refused) before ``Sequential`` draws a single weight."""
    shape = tuple(int(d) for d in input_shape)
    planned = []
    for i, config in enumerate(layers):
        layer = make_layer(config, i)
        planned.append(
            LayerArrays(layer.label, layer.param_shapes(shape), layer.state_shapes(shape))
        )
        shape = _nonempty(layer, layer.output_shape(shape))
    return planned


def _nonempty(layer: Layer, shape: Shape) -> Shape:
    if any(d < 1 for d in shape):
        raise SpecError(f"{layer.label} gives an empty output {shape}", field="layers")
    return shape


class Sequential:
    """y = layer_n(... layer_1(x)); backward runs the layers in reverse.

    ``layers`` are configs (or Layer objects); ``input_shape`` leaves out the batch, e.g. (4,)
    or (1, 28, 28). Parameters are drawn on the host from ``seed``, then moved to ``backend``.
    ``check(layer, in_shape)``, when given, sees each layer before it is built (a checkpoint's
    loader compares ``layer.array_shapes(in_shape)`` with the arrays it holds).

    After the build every parameter is a view into one 1-D buffer and every gradient a view
    into another (``named_parameters`` / ``named_gradients`` hand them over as
    ``FlatParameters``), so an optimizer updates all of them in a few whole-array passes.
    """

    def __init__(
        self,
        layers: list[Any],
        input_shape: Shape,
        backend: Backend | None = None,
        seed: int = 0,
        check: Callable[[Layer, Shape], None] | None = None,
    ):
        if not layers:
            raise SpecError("expected at least one layer, got none", field="layers")
        self.backend = backend or get_backend()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.layers = [make_layer(cfg, i) for i, cfg in enumerate(layers)]
        rng = np.random.default_rng(seed)
        shape = self.input_shape
        for layer in self.layers:
            if check is not None:  # may refuse the layer before it allocates its arrays
                check(layer, shape)
            shape = _nonempty(layer, layer.build(shape, self.backend, rng))
        self.output_shape = shape
        # where a backward pass without dL/d(input) stops (len(layers): nothing to train)
        self._first_trainable = next(
            (i for i, layer in enumerate(self.layers) if layer.params), len(self.layers)
        )
        self._commute_relu_and_max_pools()
        self._views: list[tuple[Layer, str, Any, Any]] = []
        self._training = False
        self._flatten()

    # -- computation ---------------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False, mask: Any = None) -> Any:
        """(N, *input_shape) -> (N, *output_shape); ``mask`` (N, T) marks real sequence steps
        (each layer gets the mask of its own input, see ``Layer.output_mask``).

        Each layer checks its own input shape, so a mismatch names the layer."""
        y = x
        for _layer, y in self.outputs(x, training, mask):  # noqa: B007 - y: the last output
            pass
        return y

    def outputs(
        self, x: Any, training: bool = False, mask: Any = None
    ) -> Iterator[tuple[Layer, Any]]:
        """Each layer with its output, in order, as ``forward`` runs them (``nncli plot``
        shows the conv layers' outputs)."""
        self._training = training
        for layer in self.layers:
            layer.mask = mask
            x = layer.forward(x, training)
            if mask is not None:
                mask = layer.output_mask(mask)
            yield layer, x

    def backward(self, dy: Any, input_grad: bool | None = None) -> Any:
        """dL/d(output) -> dL/d(input); fills every layer's ``grads``.

        ``input_grad`` None: dL/d(input) only after an inference-mode forward. Training never
        needs the gradient with respect to its data, and the first layer's is often its largest
        matrix product, so after ``forward(training=True)`` it is skipped and None may come
        back; True or False says so explicitly. Skipping it, the backward pass stops at the first
        layer with parameters (that layer computes its parameter gradients only)."""
        if input_grad is None:
            input_grad = not self._training
        # without dL/dx nothing in front of the first layer with parameters needs a gradient:
        # behind a reshape or flatten the first conv would otherwise still run a whole col2im
        stop = 0 if input_grad else self._first_trainable
        for index in range(len(self.layers) - 1, stop - 1, -1):
            layer = self.layers[index]
            layer.skip_input_grad = not input_grad and index == stop
            dy = layer.backward(dy)
        return dy if input_grad else None

    def _commute_relu_and_max_pools(self) -> None:
        """A ReLU right before a max-pool runs after it, inside the pool (``take_relu``):
        max(relu(x)) = relu(max(x)), and both send a window's gradient to its first maximum
        when it is positive and nowhere otherwise, so the outputs and gradients are the same
        while the ReLU and its mask touch a quarter of the values (2x2 pools)."""
        for layer, after in zip(self.layers, self.layers[1:], strict=False):
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
        return [layer.config() for layer in self.layers]

    def summary(self) -> list[dict[str, Any]]:
        """One row per layer (index, type, output shape, parameter counts, notes) as data."""
        rows = []
        for layer in self.layers:
            weights = sum(int(np.prod(p.shape)) for k, p in layer.params.items() if "bias" not in k)
            rows.append(
                {
                    "index": layer.index,
                    "type": layer.type_name,
                    "activation": layer.output_activation,
                    "output_shape": ["N", *layer.out_shape],
                    "params": layer.parameter_count(),
                    "non_trainable": layer.state_count(),
                    "weights": weights,
                    "biases": layer.parameter_count() - weights,
                    "notes": list(layer.size_notes),
                    "warnings": list(layer.warnings),
                }
            )
        return rows

    def __repr__(self) -> str:
        inner = "\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential(\n{inner}\n)  # {self.parameter_count()} parameters"
