"""A residual block: a stack of layers whose input is added to its output, as in ResNet."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.graph import INSIDE, KEYS
from nncli.engine.layer import Layer, Shape, written_config
from nncli.engine.layers.conv1d import Conv1D
from nncli.engine.layers.conv2d import Conv2D
from nncli.engine.layers.dense import Dense
from nncli.engine.layers.merge import shown
from nncli.engine.layers.parts import Qualified
from nncli.engine.network import make_layer
from nncli.engine.registry import LAYERS
from nncli.errors import SpecError

CONV_BLOCK = [  # a gradient-check example: ResNet's downsampling block, without its bias in
    # front of batchnorm (which would have no gradient to check)
    {"type": "conv2d", "filters": 3, "kernel_size": 3, "strides": 2, "padding": 1,
     "use_bias": False},
    "batchnorm",
    "relu",
    {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same"},
]  # fmt: skip


def stride(size: int, out: int) -> int | None:
    """The smallest stride s of a window of 1 taking ``size`` steps to ``out``:
    (size - 1) // s + 1 = out; None when none does."""
    return next((s for s in range(1, size + 1) if (size - 1) // s + 1 == out), None)


@LAYERS.register("residual")
class Residual(Layer):
    """y = f(x) + x, f the stack ``layers``; with ``projection``, y = f(x) + p(x), p a learned
    shortcut: a dense layer on vectors, a 1x1 conv2d on images, a kernel-1 conv1d on sequences,
    strided to f's output size (ResNet's projection shortcut). ``activation`` follows the sum.

    x (N, *in) -> y (N, *out), out f's output shape (in unless ``projection``); parameters
    ``<j>.<type>.<name>`` of the stack's layer j (``0.conv2d.weight``), ``projection.weight``
    and ``projection.bias``; state likewise (``1.batchnorm.running_mean``).
    """

    examples: ClassVar = [
        ({"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                     {"type": "dense", "units": 4}]}, (4,)),
        ({"layers": [{"type": "dense", "units": 3}, "dropout"], "projection": True}, (5,)),
        ({"layers": CONV_BLOCK, "projection": True, "activation": "tanh"}, (2, 5, 5)),
        ({"layers": [{"type": "conv1d", "filters": 3, "kernel_size": 3, "strides": 2}],
          "projection": True}, (7, 2)),
        ({"layers": [{"type": "residual", "layers": ["layernorm", "tanh"]}]}, (3, 4)),
    ]  # fmt: skip

    def __init__(
        self,
        layers: list[Any],
        projection: bool = False,
        activation: str | dict | None = None,
    ):
        super().__init__(activation)
        if not isinstance(layers, list) or not layers:
            raise SpecError(f"expected a non-empty list of layers, got {layers!r}", field="layers")
        for j, config in enumerate(layers):
            for key in (k for k in KEYS if isinstance(config, dict) and k in config):
                message = INSIDE.format(type=self.type_name, key=key)
                raise SpecError(message, field=f"layers[{j}].{key}")
        self.parts = [make_layer(config, j) for j, config in enumerate(layers)]
        self.projection = checks.boolean("projection", projection)
        self.shortcut: Layer | None = None

    # -- shapes --------------------------------------------------------------------------------
    def _pieces(self, in_shape: Shape) -> tuple[list[tuple[str, Layer, Shape]], Shape]:
        """(prefix, part, its input shape) for each part and the shortcut (unbuilt), in the
        order they are built, and the output shape."""
        pieces, shape = [], tuple(in_shape)
        for j, part in enumerate(self.parts):
            part.within = f"{self.place}."
            pieces.append((f"{j}.{part.type_name}", part, shape))
            shape = part.output_shape(shape)
        shortcut = self._shortcut(tuple(in_shape), shape)
        return pieces + ([("projection", shortcut, tuple(in_shape))] if shortcut else []), shape

    def _shortcut(self, in_shape: Shape, out: Shape) -> Layer | None:
        if not self.projection:
            if out != in_shape:
                raise SpecError(
                    f"{self.label} adds its input {shown(in_shape)} to its layers' output "
                    f"{shown(out)}: expected one shape, or projection: true for a learned "
                    "shortcut between them",
                    field=f"{self.place}.projection",
                )
            return None
        rank = len(in_shape) if len(out) == len(in_shape) else 0
        if rank == 1:
            return Dense(out[0])
        if rank == 2 and (steps := stride(in_shape[0], out[0])):  # (T, F): a kernel-1 conv1d
            return Conv1D(out[1], kernel_size=1, strides=steps)
        strides = [stride(a, b) for a, b in zip(in_shape[1:], out[1:], strict=False)]
        if rank == 3 and None not in strides:  # (C, H, W): a 1x1 conv2d
            return Conv2D(out[0], kernel_size=1, strides=strides)
        raise SpecError(
            f"{self.label} has no learned shortcut from its input {shown(in_shape)} to its "
            f"layers' output {shown(out)}: expected vectors, or images or sequences of as many "
            "or fewer pixels or steps",
            field=f"{self.place}.projection",
        )

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        pieces, _ = self._pieces(in_shape)
        return {f"{k}.{n}": v for k, part, s in pieces for n, v in part.param_shapes(s).items()}

    def state_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        pieces, _ = self._pieces(in_shape)
        return {f"{k}.{n}": v for k, part, s in pieces for n, v in part.state_shapes(s).items()}

    def output_shape(self, in_shape: Shape) -> Shape:
        return self._pieces(in_shape)[1]

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        self.pieces, out = self._pieces(in_shape)
        self.shortcut = self.pieces[-1][1] if self.projection else None
        for prefix, part, shape in self.pieces:
            part.trainable = part.trainable and self.trainable  # a frozen block freezes its parts
            part.build(shape, self.backend, rng)
            self.params.update({f"{prefix}.{k}": v for k, v in part.params.items()})
            self.state.update({f"{prefix}.{k}": v for k, v in part.state.items()})
            names = {k: f"{prefix}.{k}" for k in part.params}
            part.params = Qualified(lambda: self.params, names)
            part.grads = Qualified(lambda: self.grads, names)
            part.state = Qualified(lambda: self.state, {k: f"{prefix}.{k}" for k in part.state})
        return out

    def sublayers(self) -> dict[str, Layer]:
        return {prefix: part for prefix, part, _ in self.pieces}

    def frozen_names(self) -> set[str]:
        return {f"{prefix}.{k}" for prefix, part, _ in self.pieces for k in part.frozen_names()}

    # -- what the network sets, passed on ------------------------------------------------------
    def _pass_context(self, part: Layer, mask: Any) -> None:
        part.mask, part.batch_sum, part.batch_share = mask, self.batch_sum, self.batch_share

    def set_rng(self, rng: np.random.Generator) -> None:
        for part in self.sublayers().values():
            part.set_rng(rng)

    def reset_rng(self) -> None:
        for part in self.sublayers().values():
            part.reset_rng()

    def output_mask(self, mask: Any) -> Any:
        for part in self.parts:
            mask = part.output_mask(mask)
        return mask

    # -- computation ---------------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        h, mask = x, self.mask
        for part in self.parts:  # each part checks its own input
            self._pass_context(part, mask)
            h = part.forward(h, training)
            mask = None if mask is None else part.output_mask(mask)
        if self.shortcut is None:
            return self._activate(h + x)
        self._pass_context(self.shortcut, self.mask)
        return self._activate(h + self.shortcut.forward(x, training))

    def backward(self, dy: Any) -> Any:
        """dL/dx = f'(x)^T dz + dz (or the shortcut's backward of dz). Without dL/dx wanted the
        stack stops at its first part with parameters, as the network does."""
        dz = self._activate_backward(dy)
        wanted, count = not self.skip_input_grad, len(self.parts)
        stop = 0 if wanted else next((j for j, p in enumerate(self.parts) if p.params), count)
        dh = dz
        for j in range(count - 1, stop - 1, -1):
            part = self.parts[j]
            part.skip_input_grad = not wanted and j == stop
            dh = part.backward(dh)
        through = dz
        if self.shortcut is not None:
            self.shortcut.skip_input_grad = not wanted
            through = self.shortcut.backward(dz)
        return dh + through if wanted else None

    def config(self) -> dict[str, Any]:
        cfg = {
            "type": self.type_name,
            "layers": [written_config(part) for part in self.parts],
            "projection": self.projection,
        }
        return cfg | ({"activation": self.activation.config()} if self.activation else {})
