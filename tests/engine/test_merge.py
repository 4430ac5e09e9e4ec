"""add, multiply and concat: each against PyTorch in float64, two branches from the input joined
by concat trained by 3 full-batch SGD steps as PyTorch trains them, and the shape errors that
name both layers joined and their shapes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_sgd_like_torch, torch_reference

from nncli.backend import get_backend
from nncli.engine.network import Network, make_layer
from nncli.errors import ShapeError, SpecError

F64 = get_backend("cpu", "float64")


def merge_cases(torch):
    return {
        "add": [({}, [(4,), (4,)], lambda *t: t[0] + t[1]),
                ({}, [(2, 3), (2, 3), (2, 3)], lambda *t: t[0] + t[1] + t[2])],
        "multiply": [({}, [(4,), (4,)], lambda *t: t[0] * t[1]),
                     ({}, [(3, 2), (3, 2), (3, 2)], lambda *t: t[0] * t[1] * t[2])],
        "concat": [({}, [(3,), (2,)], lambda *t: torch.cat(t, dim=-1)),
                   ({"axis": 1}, [(2, 3, 3), (1, 3, 3)], lambda *t: torch.cat(t, dim=1)),
                   ({"axis": -2}, [(2, 4), (3, 4)], lambda *t: torch.cat(t, dim=-2))],
    }  # fmt: skip


@pytest.mark.parametrize("name", ["add", "multiply", "concat"])
def test_each_merge_is_torchs(name):
    torch = torch_reference()
    for settings, shapes, ref in merge_cases(torch)[name]:
        layer = make_layer({"type": name, **settings}, 0)
        layer.build(shapes, F64, np.random.default_rng(0))
        rng = np.random.default_rng(1)
        xs = [rng.normal(size=(3, *shape)) for shape in shapes]
        y = layer.forward(xs, training=True)
        tx = [torch.tensor(x, requires_grad=True) for x in xs]
        want = ref(*tx)
        np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-13)
        dy = rng.normal(size=y.shape)
        (want * torch.tensor(dy)).sum().backward()
        for got, t in zip(layer.backward(dy), tx, strict=True):
            np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_two_branches_from_the_input_joined_by_concat_train_as_torch_does():
    torch = torch_reference()
    nn, f = torch.nn, torch.nn.functional

    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.wide, self.deep1, self.deep2 = nn.Linear(5, 3), nn.Linear(5, 8), nn.Linear(8, 4)
            self.out = nn.Linear(7, 3)

        def forward(self, x):
            deep = torch.tanh(self.deep2(f.relu(self.deep1(x))))
            return self.out(torch.cat([self.wide(x), deep], dim=-1))

    layers = [
        {"type": "dense", "units": 3, "name": "wide", "inputs": "input"},
        {"type": "dense", "units": 8, "activation": "relu", "inputs": "input"},
        {"type": "dense", "units": 4, "activation": "tanh", "name": "deep"},
        {"type": "concat", "inputs": ["wide", "deep"]},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    net = Network(layers, (5,), backend=F64, seed=5)
    names = {}
    for i, key in enumerate(["wide", "deep1", "deep2", None, "out"]):
        names |= {f"{i}.dense.{p}": f"{key}.{p}" for p in ("weight", "bias")} if key else {}
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 5))
    y = np.eye(3)[rng.integers(0, 3, 20)]
    assert_sgd_like_torch(net, TwoBranches().double(), names, x, y, loss="cross_entropy")


def test_a_multiplied_gate_and_an_added_skip_train_as_torch_does():
    """A gated unit (h W + b) * sigmoid(h V + c) added to a projection of h: multiply and add in
    one graph, the stem's output h taken by three layers (their gradients add up there)."""
    torch = torch_reference()
    nn = torch.nn

    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.value = nn.Linear(4, 5), nn.Linear(5, 6)
            self.gate, self.skip, self.out = nn.Linear(5, 6), nn.Linear(5, 6), nn.Linear(6, 2)

        def forward(self, x):
            h = torch.tanh(self.stem(x))
            gated = self.value(h) * torch.sigmoid(self.gate(h))
            return self.out(gated + self.skip(h))

    layers = [
        {"type": "dense", "units": 5, "activation": "tanh", "name": "stem"},
        {"type": "dense", "units": 6, "name": "value"},
        {"type": "dense", "units": 6, "activation": "sigmoid", "name": "gate", "inputs": "stem"},
        {"type": "multiply", "inputs": ["value", "gate"], "name": "gated"},
        {"type": "dense", "units": 6, "name": "skip", "inputs": "stem"},
        {"type": "add", "inputs": ["gated", "skip"]},
        {"type": "dense", "units": 2},
    ]
    net = Network(layers, (4,), backend=F64, seed=6)
    names = {}
    for i, key in {0: "stem", 1: "value", 2: "gate", 4: "skip", 6: "out"}.items():
        names |= {f"{i}.dense.{p}": f"{key}.{p}" for p in ("weight", "bias")}
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 2))
    assert_sgd_like_torch(net, Gated().double(), names, x, y)


def test_outputs_of_different_shapes_name_both_layers_and_their_shapes():
    layers = [
        {"type": "dense", "units": 4, "name": "h"},
        {"type": "dense", "units": 3, "name": "g", "inputs": "input"},
        {"type": "add", "inputs": ["h", "g"]},
    ]
    with pytest.raises(SpecError) as caught:
        Network(layers, (2,))
    assert caught.value.field == "layers[2].inputs"
    assert str(caught.value).endswith(
        "layers[2] (add) joins outputs of one shape, got 'h' (layers[0], dense) (N, 4) and "
        "'g' (layers[1], dense) (N, 3)"
    )
    images = [
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "name": "a"},
        {"type": "conv2d", "filters": 2, "kernel_size": 1, "name": "b", "inputs": "input"},
        {"type": "concat", "axis": 1, "inputs": ["a", "input", "b"]},
    ]
    with pytest.raises(SpecError) as caught:
        Network(images, (1, 5, 5))
    assert str(caught.value).endswith(
        "of one shape but on axis 1, got 'a' (layers[0], conv2d) (N, 2, 3, 3), input "
        "(N, 1, 5, 5) and 'b' (layers[1], conv2d) (N, 2, 5, 5)"
    )
    with pytest.raises(SpecError, match="expected an axis 1 to 3 or -3 to -1, got 4"):
        Network([images[0], {"type": "concat", "axis": 4, "inputs": ["a", "a"]}], (1, 5, 5))
    with pytest.raises(SpecError, match="expected an integer other than 0"):
        make_layer({"type": "concat", "axis": 0}, 0)


def test_sequences_of_a_shorter_batch_still_join_and_mismatched_arrays_are_refused():
    layer = make_layer({"type": "add"}, 3)
    layer.build([(6, 2), (6, 2)], F64, np.random.default_rng(0))
    assert layer.forward([np.ones((2, 4, 2)), np.ones((2, 4, 2))]).shape == (2, 4, 2)
    with pytest.raises(ShapeError, match=r"layers\[3\] \(add\) expects inputs of one shape"):
        layer.forward([np.ones((2, 4, 2)), np.ones((2, 5, 2))])
    with pytest.raises(ShapeError, match="expects 2 inputs, got 3"):
        layer.forward([np.ones((2, 4, 2))] * 3)
