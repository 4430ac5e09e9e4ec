"""Attention, transformer blocks and learned positions in a network trained as PyTorch trains
the same modules: full-batch SGD for 3 steps from the same weights in float64, every weight and
the predictions within 1e-9 (``helpers.assert_sgd_like_torch``)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_sgd_like_torch, torch_reference

from nncli.backend import get_backend
from nncli.engine.network import Network

F64 = get_backend("cpu", "float64")
STEPS, FEATURES, HEADS = 5, 4, 2


def head_names(index: int) -> dict[str, str]:
    """Our dense head (layer ``index``, after a global average) -> the module's ``head``."""
    return {f"{index}.dense.weight": "head.weight", f"{index}.dense.bias": "head.bias"}


def batch(lengths: list[int] | None = None, seed: int = 0):
    """x (N, T, F), y (N, 2) and the mask of real steps (None: every sequence is whole)."""
    rng = np.random.default_rng(seed)
    n = 4 if lengths is None else len(lengths)
    x, y = rng.normal(size=(n, STEPS, FEATURES)), rng.normal(size=(n, 2))
    if lengths is None:
        return x, y, None
    return x, y, np.arange(STEPS)[None, :] < np.array(lengths)[:, None]


def pooled_head(torch, body, mask):
    """A module: ``body`` over (N, T, F), the mean over the real steps, a linear head to 2."""
    real = None if mask is None else torch.tensor(mask, dtype=torch.float64)[..., None]

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = body, torch.nn.Linear(FEATURES, 2)

        def forward(self, x):
            h = self.body(x)
            pooled = h.mean(dim=1) if real is None else (h * real).sum(1) / real.sum(1)
            return self.head(pooled)

    return Pooled().double()


class SelfAttention:
    """nn.MultiheadAttention(F, H, batch_first=True) as a module of one input, its masks fixed."""

    @staticmethod
    def of(torch, causal: bool, mask):
        future = torch.triu(torch.ones(STEPS, STEPS, dtype=torch.bool), 1) if causal else None
        padding = None if mask is None else torch.tensor(~mask)

        class Attend(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.attn = torch.nn.MultiheadAttention(FEATURES, HEADS, batch_first=True)

            def forward(self, x):
                return self.attn(
                    x, x, x, key_padding_mask=padding, attn_mask=future, need_weights=False
                )[0]

        return Attend()


@pytest.mark.parametrize(
    "causal, lengths", [(False, None), (True, None), (False, [5, 2, 4, 3]), (True, [3, 5, 1, 4])]
)
def test_attention_trains_as_torch_multihead_attention(causal, lengths):
    torch = torch_reference()
    x, y, mask = batch(lengths, seed=1)
    layers = [{"type": "attention", "heads": HEADS, "causal": causal}, "global_avgpool",
              {"type": "dense", "units": 2}]  # fmt: skip
    net = Network(layers, (STEPS, FEATURES), backend=F64, seed=2)
    module = pooled_head(torch, SelfAttention.of(torch, causal, mask), mask)
    names = {
        **{f"0.attention.{k}": f"body.attn.{v}" for k, v in net.layers[0].torch_names.items()},
        **head_names(2),
    }
    assert_sgd_like_torch(net, module, names, x, y, mask=mask)


@pytest.mark.parametrize(
    "norm_first, activation", [(True, "relu"), (False, "relu"), (True, "gelu"), (False, "gelu")]
)
def test_a_transformer_block_trains_as_torch_transformer_encoder_layer(norm_first, activation):
    torch = torch_reference()
    x, y, _ = batch(seed=3)
    block = {"type": "transformer", "heads": HEADS, "feedforward": 6, "dropout": 0.0,
             "activation": activation, "norm_first": norm_first}  # fmt: skip
    net = Network([block, "global_avgpool", {"type": "dense", "units": 2}], (STEPS, FEATURES),
                  backend=F64, seed=4)  # fmt: skip
    body = torch.nn.TransformerEncoderLayer(
        FEATURES, HEADS, 6, 0.0, activation, batch_first=True, norm_first=norm_first
    )
    module = pooled_head(torch, body, None)
    names = {f"0.transformer.{k}": f"body.{k}" for k in net.layers[0].params} | head_names(2)
    assert_sgd_like_torch(net, module, names, x, y)


def test_learned_positions_train_as_a_torch_parameter_table():
    torch = torch_reference()
    x, y, _ = batch(seed=5)

    class Positions(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.zeros(7, FEATURES, dtype=torch.float64))
            self.mix = torch.nn.Linear(FEATURES, FEATURES)

        def forward(self, h):
            return torch.tanh(self.mix(h + self.table[: h.shape[1]]))

    layers = [{"type": "positional", "encoding": "learned", "max_length": 7},
              {"type": "dense", "units": FEATURES, "activation": "tanh"}, "global_avgpool",
              {"type": "dense", "units": 2}]  # fmt: skip
    net = Network(layers, (STEPS, FEATURES), backend=F64, seed=6)
    names = {"0.positional.weight": "body.table", "1.dense.weight": "body.mix.weight",
             "1.dense.bias": "body.mix.bias", **head_names(3)}  # fmt: skip
    assert_sgd_like_torch(net, pooled_head(torch, Positions(), None), names, x, y)
