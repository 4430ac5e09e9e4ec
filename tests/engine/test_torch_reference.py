"""Every registered layer, activation, loss and optimizer against PyTorch in float64.

The comparisons that live beside their layer's other tests are named in ``ELSEWHERE``; the rest
are here, one table a kind. ``test_every_registered_name_is_compared`` fails for a name in a
registry with no comparison, so a new layer is compared the day it is registered. In CI the
``reference`` extra installs PyTorch and ``torch_reference`` refuses to skip.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import torch_reference

import nncli.engine  # noqa: F401  (fills the registries)
from nncli.backend import get_backend
from nncli.engine import LOSSES
from nncli.engine.activations import softmax
from nncli.engine.registry import ACTIVATIONS, LAYERS, OPTIMIZERS

F64 = get_backend("cpu", "float64")

# name -> the test file that compares it with PyTorch
ELSEWHERE = {
    "batchnorm": "test_normalization.py",
    "layernorm": "test_normalization.py",
    "conv1d": "test_conv1d.py",
    "maxpool1d": "test_pool1d.py",
    "avgpool1d": "test_pool1d.py",
    "global_avgpool": "test_global_pool.py",
    "global_maxpool": "test_global_pool.py",
    "embedding": "test_embedding.py",
    "rnn": "test_recurrent.py",
    "lstm": "test_recurrent.py",
    "gru": "test_recurrent.py",
    "add": "test_merge.py",
    "multiply": "test_merge.py",
    "concat": "test_merge.py",
    "residual": "test_residual.py",
    "huber": "test_losses.py",
    "adamw": "test_optimizers.py",
}


def built(name: str, settings: dict, in_shape: tuple[int, ...], seed: int = 0):
    layer = LAYERS.create(name, settings)
    layer.build(in_shape, F64, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    for value in layer.params.values():  # biases start at zero: make them count
        value[...] = rng.normal(size=value.shape)
    return layer


def through_torch(torch, module, x: np.ndarray, dy: np.ndarray):
    """(y, dL/dx) of ``module`` on x, with L = sum(y * dy)."""
    tx = torch.tensor(x, requires_grad=True)
    y = module(tx)
    (y * torch.tensor(dy)).sum().backward()
    return y.detach().numpy(), tx.grad.numpy()


# layers with parameters: name -> [(settings, input shape)]
LAYER_CASES = {
    "dense": [({"units": 3}, (4,)), ({"units": 2, "use_bias": False}, (3, 5))],
    "conv2d": [
        ({"filters": 3, "kernel_size": 3}, (2, 6, 7)),
        ({"filters": 2, "kernel_size": [2, 3], "strides": 2, "padding": 1}, (3, 7, 6)),
    ],
}


@pytest.mark.parametrize(
    "name, settings, in_shape",
    [(n, s, shape) for n, cases in LAYER_CASES.items() for s, shape in cases],
)
def test_layers_with_parameters(name, settings, in_shape):
    torch = torch_reference()
    layer = built(name, settings, in_shape)
    if name == "dense":
        module = torch.nn.Linear(in_shape[-1], settings["units"], settings.get("use_bias", True))
    else:  # images are (N, C, H, W) and conv2d's weight (filters, C, kh, kw), as in PyTorch
        module = torch.nn.Conv2d(
            in_shape[0], settings["filters"], settings["kernel_size"],
            stride=settings.get("strides", 1), padding=settings.get("padding", 0),
        )  # fmt: skip
    module = module.double()
    with torch.no_grad():
        for key, value in layer.params.items():
            getattr(module, key).copy_(torch.tensor(value))
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, *in_shape))
    y = layer.forward(x, training=True)
    dy = rng.normal(size=y.shape)
    want_y, want_dx = through_torch(torch, module, x, dy)
    np.testing.assert_allclose(y, want_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy), want_dx, rtol=1e-9, atol=1e-12)
    for key, value in module.named_parameters():
        np.testing.assert_allclose(layer.grads[key], value.grad.numpy(), rtol=1e-9, atol=1e-12)


# parameter-free layers: name -> (settings, input shape, the PyTorch function, layouts)
def pool_cases(torch):
    f = torch.nn.functional
    return {
        "maxpool2d": [
            ({"pool_size": 2}, (2, 6, 6), lambda t: f.max_pool2d(t, 2)),
            ({"pool_size": 3, "strides": 2}, (1, 7, 7), lambda t: f.max_pool2d(t, 3, 2)),
        ],
        "avgpool2d": [
            ({"pool_size": 2}, (2, 6, 6), lambda t: f.avg_pool2d(t, 2)),
            ({"pool_size": [2, 3], "strides": 1}, (2, 5, 6), lambda t: f.avg_pool2d(t, (2, 3), 1)),
        ],
    }


@pytest.mark.parametrize("name", ["maxpool2d", "avgpool2d"])
def test_pooling(name):
    torch = torch_reference()
    for settings, in_shape, ref in pool_cases(torch)[name]:
        layer = built(name, settings, in_shape)
        rng = np.random.default_rng(6)
        x = rng.normal(size=(2, *in_shape))
        y = layer.forward(x, training=True)
        dy = rng.normal(size=y.shape)
        want_y, want_dx = through_torch(torch, ref, x, dy)
        np.testing.assert_allclose(y, want_y, rtol=1e-12)
        np.testing.assert_allclose(layer.backward(dy), want_dx, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "name, settings, in_shape, torch_shape",
    [("flatten", {}, (3, 4, 2), (24,)), ("reshape", {"shape": [4, 6]}, (24,), (4, 6))],
)
def test_shape_layers(name, settings, in_shape, torch_shape):
    torch = torch_reference()
    layer = built(name, settings, in_shape)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, *in_shape))
    y = layer.forward(x, training=True)
    dy = rng.normal(size=y.shape)
    want_y, want_dx = through_torch(torch, lambda t: t.reshape(2, *torch_shape), x, dy)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(layer.backward(dy), want_dx)


def test_dropout_is_inverted_dropout_with_its_mask():
    """PyTorch's dropout draws from its own generator, so the mask is ours and the arithmetic is
    compared: in training y = x * keep / (1 - rate) with dL/dx through the same mask; at
    inference both are the identity."""
    torch = torch_reference()
    layer = built("dropout", {"rate": 0.25}, (50,))
    x = np.random.default_rng(8).normal(size=(40, 50))
    y = layer.forward(x, training=True)
    keep = y != 0
    assert 0.6 < keep.mean() < 0.9
    np.testing.assert_allclose(y[keep], x[keep] / 0.75, rtol=1e-15)
    ours_dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(ours_dx, keep / 0.75, rtol=1e-15)
    reference = torch.nn.Dropout(0.25).double().eval()
    np.testing.assert_array_equal(layer.forward(x), reference(torch.tensor(x)).numpy())


# -- attention, positions and transformer blocks ----------------------------------------------
def sequence_batch(in_shape: tuple[int, int], lengths: list[int] | None, seed: int):
    """x (N, T, F), dy (zero at padded steps, as a masked loss gives) and the mask (None when
    every sequence fills the T steps)."""
    rng = np.random.default_rng(seed)
    n = 3 if lengths is None else len(lengths)
    x, dy = rng.normal(size=(n, *in_shape)), rng.normal(size=(n, *in_shape))
    if lengths is None:
        return x, dy, None
    mask = np.arange(in_shape[0])[None, :] < np.array(lengths)[:, None]
    return x, dy * mask[..., None], mask


def torch_masks(torch, steps: int, causal: bool, mask):
    """PyTorch's boolean masks (True: may not attend): the causal (T, T) one and the key
    padding (N, T) one, each None when not asked for."""
    future = torch.triu(torch.ones(steps, steps, dtype=torch.bool), 1) if causal else None
    padding = None if mask is None else torch.tensor(~mask)
    return future, padding


def compare_with_module(torch, layer, module, names: dict, x, dy, mask, run) -> None:
    """Our layer against a PyTorch module holding the same parameters (``names``: ours ->
    PyTorch's): y on the real steps, dL/dx and every parameter gradient within 1e-9."""
    assert sorted(names.values()) == sorted(name for name, _ in module.named_parameters())
    with torch.no_grad():
        for ours, theirs in names.items():
            module.get_parameter(theirs).copy_(torch.tensor(layer.params[ours]))
    layer.mask = mask
    y = layer.forward(x, training=True)
    tx = torch.tensor(x, requires_grad=True)
    want = run(module, tx)
    (want * torch.tensor(dy)).sum().backward()
    real = np.ones(x.shape[:2], bool) if mask is None else mask
    np.testing.assert_allclose(y[real], want.detach().numpy()[real], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for ours, theirs in names.items():
        want_grad = module.get_parameter(theirs).grad.numpy()
        np.testing.assert_allclose(layer.grads[ours], want_grad, rtol=1e-9, atol=1e-12)


ATTENTION_CASES = [  # (heads, causal, F, lengths of a padded batch or None)
    (2, False, 6, None),
    (3, True, 6, None),
    (2, False, 4, [5, 2, 4]),
    (2, True, 4, [3, 5, 1]),
]


@pytest.mark.parametrize("heads, causal, features, lengths", ATTENTION_CASES)
def test_attention_is_torch_multihead_attention(heads, causal, features, lengths):
    """nn.MultiheadAttention(F, H, batch_first=True), the causal mask as its attn_mask and the
    padding as its key_padding_mask."""
    torch = torch_reference()
    in_shape = (5, features)
    layer = built("attention", {"heads": heads, "causal": causal}, in_shape)
    module = torch.nn.MultiheadAttention(features, heads, batch_first=True, dtype=torch.float64)
    x, dy, mask = sequence_batch(in_shape, lengths, seed=12)
    future, padding = torch_masks(torch, in_shape[0], causal, mask)

    def run(module, tx):
        return module(tx, tx, tx, key_padding_mask=padding, attn_mask=future, need_weights=False)[0]

    compare_with_module(torch, layer, module, layer.torch_names, x, dy, mask, run)


TRANSFORMER_CASES = [  # (settings, lengths of a padded batch or None)
    ({"norm_first": True, "activation": "relu"}, None),
    ({"norm_first": False, "activation": "gelu"}, None),
    ({"norm_first": True, "activation": "gelu", "causal": True}, [5, 2, 4]),
    ({"norm_first": False, "activation": "relu"}, [1, 5, 3]),
]


@pytest.mark.parametrize("settings, lengths", TRANSFORMER_CASES)
def test_transformer_is_torch_transformer_encoder_layer(settings, lengths):
    """nn.TransformerEncoderLayer(F, H, D, 0.0, activation, batch_first=True, norm_first=...),
    whose parameter names are ours; causal as its src_mask, padding as src_key_padding_mask."""
    torch = torch_reference()
    in_shape, heads, feedforward = (5, 6), 2, 7
    layer = built(
        "transformer", {"heads": heads, "feedforward": feedforward, "dropout": 0.0, **settings},
        in_shape,
    )  # fmt: skip
    module = torch.nn.TransformerEncoderLayer(
        in_shape[1], heads, feedforward, 0.0, settings["activation"], batch_first=True,
        norm_first=settings["norm_first"], dtype=torch.float64,
    )  # fmt: skip
    x, dy, mask = sequence_batch(in_shape, lengths, seed=13)
    future, padding = torch_masks(torch, in_shape[0], settings.get("causal", False), mask)

    def run(module, tx):
        return module(tx, src_mask=future, src_key_padding_mask=padding)

    names = {name: name for name in layer.params}
    compare_with_module(torch, layer, module, names, x, dy, mask, run)


def test_positions_are_a_parameter_table_or_the_sinusoidal_one():
    """Learned: y = x + P[:T] with P (max_length, F) a parameter, its rows past T getting no
    gradient. Sinusoidal: the table PyTorch's transformer tutorial builds."""
    import math

    torch = torch_reference()

    class Learned(torch.nn.Module):
        def __init__(self, rows: int, features: int):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(rows, features, dtype=torch.float64))

        def forward(self, tx):
            return tx + self.weight[: tx.shape[1]]

    layer = built("positional", {"max_length": 7}, (5, 4))
    x, dy, _ = sequence_batch((5, 4), None, seed=14)
    names = {"weight": "weight"}
    compare_with_module(torch, layer, Learned(7, 4), names, x, dy, None, lambda m, tx: m(tx))

    position = torch.arange(9, dtype=torch.float64).unsqueeze(1)
    div = torch.exp(torch.arange(0, 6, 2, dtype=torch.float64) * (-math.log(10000.0) / 6))
    pe = torch.zeros(9, 6, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
    sinusoidal = built("positional", {"max_length": 9, "encoding": "sinusoidal"}, (5, 6))
    x = np.random.default_rng(15).normal(size=(2, 5, 6))
    want = x + pe[:5].numpy()
    np.testing.assert_allclose(sinusoidal.forward(x), want, rtol=1e-12, atol=1e-15)


def activation_twins(torch):
    f = torch.nn.functional
    return {
        "linear": ({}, lambda t: t),
        "relu": ({}, f.relu),
        "leaky_relu": ({"slope": 0.2}, lambda t: f.leaky_relu(t, 0.2)),
        "elu": ({"alpha": 0.7}, lambda t: f.elu(t, 0.7)),
        "tanh": ({}, torch.tanh),
        "sigmoid": ({}, torch.sigmoid),
        "softmax": ({}, lambda t: torch.softmax(t, dim=-1)),
        "softplus": ({}, f.softplus),
        "sin": ({}, torch.sin),
        "gelu": ({}, f.gelu),
        "silu": ({}, f.silu),
        "swish": ({}, f.silu),
    }


@pytest.mark.parametrize("name", sorted(ACTIVATIONS.names()))
def test_activations(name):
    torch = torch_reference()
    settings, ref = activation_twins(torch)[name]
    layer = built(name, settings, (3, 5))  # every activation is also a layer
    rng = np.random.default_rng(9)
    x = rng.normal(size=(4, 3, 5)) * 3
    x[0, 0, :2] = [30.0, -30.0]  # the tails, where a careless formula overflows
    y = layer.forward(x, training=True)
    dy = rng.normal(size=y.shape)
    want_y, want_dx = through_torch(torch, ref, x, dy)
    np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(layer.backward(dy), want_dx, rtol=1e-10, atol=1e-14)


def loss_cases(torch):
    """name -> (our predictions and targets from logits z and labels) and PyTorch's loss of z."""
    f = torch.nn.functional
    return {
        "mse": lambda z, t: (z, t, f.mse_loss),
        "mae": lambda z, t: (z, t, f.l1_loss),
        "binary_cross_entropy": lambda z, t: (
            1 / (1 + np.exp(-z)),
            (t > 0).astype(float),
            f.binary_cross_entropy_with_logits,
        ),
        "cross_entropy": lambda z, t: (
            softmax(z),
            np.eye(z.shape[1])[t.argmax(1)],
            lambda a, b: f.cross_entropy(a, b.argmax(1)),
        ),
    }


LOSS_CASES = [  # (name, fused): mse and mae take the output itself, never logits
    ("mse", False),
    ("mae", False),
    ("binary_cross_entropy", False),
    ("binary_cross_entropy", True),
    ("cross_entropy", False),
    ("cross_entropy", True),
]


@pytest.mark.parametrize("name, fused", LOSS_CASES)
def test_losses(name, fused):
    """The value and dL/d(predictions), and where the loss is fused with its output activation
    (softmax, sigmoid) dL/d(logits), against PyTorch's functional losses."""
    torch = torch_reference()
    rng = np.random.default_rng(10)
    z, t = rng.normal(size=(7, 3)) * 2, rng.normal(size=(7, 3))
    p, y, ref = loss_cases(torch)[name](z, t)
    loss = LOSSES.create(name)
    fusable = name in {"binary_cross_entropy", "cross_entropy"}
    tp = torch.tensor(z if fusable else p, requires_grad=True)
    want = ref(tp, torch.tensor(y))
    want.backward()
    value = loss.forward(p, y, logits=z if fused else None)
    assert float(value) == pytest.approx(want.item(), rel=1e-12)
    if fused or not fusable:
        np.testing.assert_allclose(loss.backward(), tp.grad.numpy(), rtol=1e-10, atol=1e-15)
    else:  # dL/dp then back through the activation is dL/dz
        dp = loss.backward()
        dz = (
            dp * p * (1 - p)
            if name == "binary_cross_entropy"
            else p * (dp - (dp * p).sum(1, keepdims=True))
        )
        np.testing.assert_allclose(dz, tp.grad.numpy(), rtol=1e-8, atol=1e-12)


def optimizer_cases(torch):
    """name -> [(our settings, PyTorch's optimizer for a list of tensors)]"""
    optim = torch.optim
    return {
        "sgd": [
            ({"learning_rate": 0.1}, lambda ps: optim.SGD(ps, lr=0.1)),
            ({"learning_rate": 0.1, "momentum": 0.9}, lambda ps: optim.SGD(ps, 0.1, 0.9)),
            (
                {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1},
                lambda ps: optim.SGD(ps, 0.05, 0.8, nesterov=True, weight_decay=0.1),
            ),
        ],
        "adam": [
            ({"learning_rate": 0.01}, lambda ps: optim.Adam(ps, lr=0.01)),
            (
                {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.99, "weight_decay": 0.05},
                lambda ps: optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), weight_decay=0.05),
            ),
        ],
        "rmsprop": [
            ({"learning_rate": 0.01, "rho": 0.8}, lambda ps: optim.RMSprop(ps, 0.01, alpha=0.8)),
        ],
        "adagrad": [({"learning_rate": 0.1}, lambda ps: optim.Adagrad(ps, lr=0.1))],
    }


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad"])
@pytest.mark.parametrize("flat", [False, True])
def test_optimizers(name, flat):
    """Five steps from the same parameters and gradients, through the per-array path and the
    flat buffer ``Sequential`` hands over (one update over every parameter at once)."""
    from nncli.engine.optimizers import FlatParameters

    torch = torch_reference()
    for settings, make in optimizer_cases(torch)[name]:
        rng = np.random.default_rng(11)
        buffer = rng.normal(size=12)
        params = {"w": buffer[:8].reshape(2, 4), "b": buffer[8:]}
        if flat:
            params = FlatParameters(params, buffer)
        refs = [torch.tensor(p.copy(), requires_grad=True) for p in params.values()]
        ours, ref = OPTIMIZERS.create(name, dict(settings)), make(refs)
        for _ in range(5):
            grads = {k: rng.normal(size=p.shape) for k, p in params.items()}
            if flat:
                gbuf = np.concatenate([g.ravel() for g in grads.values()])
                grads = FlatParameters(
                    {"w": gbuf[:8].reshape(2, 4), "b": gbuf[8:]}, gbuf
                )  # fmt: skip
            ours.step(params, grads)
            for tp, g in zip(refs, grads.values(), strict=True):
                tp.grad = torch.tensor(np.array(g))
            ref.step()
        for p, tp in zip(params.values(), refs, strict=True):
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-11, atol=1e-14)


def compared_here() -> set[str]:
    return (
        set(LAYER_CASES) | {"maxpool2d", "avgpool2d", "flatten", "reshape", "dropout"}
        | {"attention", "transformer", "positional"}
        | set(ACTIVATIONS.names()) | {name for name, _ in LOSS_CASES}
        | {"sgd", "adam", "rmsprop", "adagrad"}
    )  # fmt: skip


def test_every_registered_name_is_compared():
    from pathlib import Path

    registered = set(LAYERS.names()) | set(LOSSES.names()) | set(OPTIMIZERS.names())
    missing = registered - compared_here() - set(ELSEWHERE)
    assert not missing, f"no PyTorch comparison for {sorted(missing)}"
    here = Path(__file__).parent
    for name, where in ELSEWHERE.items():
        assert "torch_reference()" in (here / where).read_text(), (name, where)


def test_in_ci_a_missing_torch_fails_rather_than_skips(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ImportError):
        torch_reference()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        torch_reference()
