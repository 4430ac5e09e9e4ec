"""One transformer encoder block (PyTorch's ``nn.TransformerEncoderLayer``), composed of the
attention, dense, layernorm and dropout layers."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.initializers import LinearDefault
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers.attention import Attention, heads_over_steps
from nncli.engine.layers.dense import Dense
from nncli.engine.layers.dropout import Dropout
from nncli.engine.layers.layernorm import LayerNorm
from nncli.engine.layers.parts import Qualified
from nncli.engine.registry import LAYERS

FEEDFORWARD_ACTIVATIONS = ["relu", "gelu"]


@LAYERS.register("transformer")
class Transformer(Layer):
    """norm_first: h = x + sa(norm1(x)), y = h + ff(norm2(h));
    otherwise:  h = norm1(x + sa(x)), y = norm2(h + ff(h));
    sa(x) = dropout1(self_attn(x)), ff(x) = dropout2(linear2(dropout(activation(linear1(x))))).

    x (N, T, F) -> y (N, T, F), F divisible by heads; parameters under PyTorch's names
    (``self_attn.in_proj_weight (3F, F)``, ``linear1.weight (feedforward, F)``, ``norm1.weight
    (F,)``, ...), so ``nn.TransformerEncoderLayer(F, heads, feedforward, dropout, activation,
    batch_first=True, norm_first=...)`` loads them one to one. Padded steps are masked as keys
    and output zeros; ``causal`` lets step t see steps <= t only.
    """

    examples: ClassVar = [
        ({"heads": 2, "feedforward": 8, "dropout": 0.0, "activation": "gelu"}, (4, 6)),
        (
            {"heads": 2, "feedforward": 5, "dropout": 0.2, "norm_first": False, "causal": True},
            (3, 4),
        ),
    ]
    any_steps = True

    def __init__(
        self,
        heads: int,
        feedforward: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = True,
        causal: bool = False,
    ):
        super().__init__(None)  # ``activation`` is the feedforward's, not the output's
        self.heads = checks.positive_int("heads", heads)
        self.feedforward = checks.positive_int("feedforward", feedforward)
        self.rate = checks.number("dropout", dropout, 0.0, 1.0, high_open=True)
        self.feedforward_activation = checks.choice(
            "activation", activation, FEEDFORWARD_ACTIVATIONS
        )
        self.norm_first = checks.boolean("norm_first", norm_first)
        self.causal = checks.boolean("causal", causal)

    def _parts(self, features: int) -> dict[str, Layer]:
        """PyTorch's submodules, unbuilt, in the order of its parameters (and of our draws)."""
        linear = LinearDefault()
        return {
            "self_attn": Attention(self.heads, self.causal, self.rate),
            "linear1": Dense(
                self.feedforward,
                self.feedforward_activation,
                kernel_initializer=linear,
                bias_initializer=linear,
            ),
            "linear2": Dense(features, kernel_initializer=linear, bias_initializer=linear),
            "norm1": LayerNorm(),
            "norm2": LayerNorm(),
            "dropout": Dropout(self.rate),
            "dropout1": Dropout(self.rate),
            "dropout2": Dropout(self.rate),
        }

    def _part_shape(self, name: str, in_shape: Shape) -> Shape:
        """The input of a part: the feedforward's (T, D) inside, the block's (T, F) elsewhere."""
        return (in_shape[0], self.feedforward) if name in ("dropout", "linear2") else in_shape

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        shapes = {}
        for name, part in self._parts(in_shape[-1]).items():
            renamed = part.torch_names if isinstance(part, Attention) else {}
            for key, shape in part.param_shapes(self._part_shape(name, in_shape)).items():
                shapes[f"{name}.{renamed.get(key, key)}"] = shape
        return shapes

    def output_shape(self, in_shape: Shape) -> Shape:
        return heads_over_steps(self, in_shape, self.heads)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        self.output_shape(in_shape)
        features = in_shape[-1]
        self.parts = self._parts(features)
        for name, part in self.parts.items():
            part.build(self._part_shape(name, in_shape), self.backend, rng)
            renamed = part.torch_names if isinstance(part, Attention) else {}
            names = {key: f"{name}.{renamed.get(key, key)}" for key in part.params}
            self.params.update({names[key]: value for key, value in part.params.items()})
            part.params = Qualified(lambda: self.params, names)
            part.grads = Qualified(lambda: self.grads, names)
        p = self.parts
        self.attention_block = [p["self_attn"], p["dropout1"]]
        self.feedforward_block = [p["linear1"], p["dropout"], p["linear2"], p["dropout2"]]
        return in_shape

    def _pass_context(self) -> None:
        """What the network set on this layer (the padding mask, the batch share) to each part."""
        for part in self.parts.values():
            part.mask, part.batch_share = self.mask, self.batch_share

    def sublayers(self) -> dict[str, Layer]:
        return dict(self.parts)

    def set_rng(self, rng: np.random.Generator) -> None:
        for part in self.parts.values():
            part.set_rng(rng)

    def reset_rng(self) -> None:
        for part in self.parts.values():
            part.reset_rng()

    @staticmethod
    def _run(block: list[Layer], x: Any, training: bool) -> Any:
        for part in block:
            x = part.forward(x, training)
        return x

    @staticmethod
    def _back(block: list[Layer], dy: Any) -> Any:
        for part in reversed(block):
            dy = part.backward(dy)
        return dy

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        self._pass_context()
        norm1, norm2 = self.parts["norm1"], self.parts["norm2"]
        sa, ff = self.attention_block, self.feedforward_block
        if self.norm_first:
            h = x + self._run(sa, norm1.forward(x, training), training)
            y = h + self._run(ff, norm2.forward(h, training), training)
        else:
            h = norm1.forward(x + self._run(sa, x, training), training)
            y = norm2.forward(h + self._run(ff, h, training), training)
        self.real = self.real_steps(x, x.dtype)
        return y if self.real is None else y * self.real

    def backward(self, dy: Any) -> Any:
        """Each residual adds its branch's gradient to the one passed straight through."""
        norm1, norm2 = self.parts["norm1"], self.parts["norm2"]
        sa, ff = self.attention_block, self.feedforward_block
        if self.real is not None:
            dy = dy * self.real
        if self.norm_first:
            dh = dy + norm2.backward(self._back(ff, dy))
            return dh + norm1.backward(self._back(sa, dh))
        dz = norm2.backward(dy)
        dh = dz + self._back(ff, dz)
        dz = norm1.backward(dh)
        return dz + self._back(sa, dz)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "heads": self.heads,
            "feedforward": self.feedforward,
            "dropout": self.rate,
            "activation": self.feedforward_activation,
            "norm_first": self.norm_first,
            "causal": self.causal,
        }
