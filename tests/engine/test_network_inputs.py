"""A network of several named data inputs (issue 27): wiring, forward and backward by name, the
input gradients as a dict, and three SGD steps against PyTorch in float64."""

import numpy as np
import pytest

from nncli.backend import get_backend
from nncli.engine import feeds
from nncli.engine.network import Network
from nncli.errors import ShapeError, SpecError
from tests.helpers import torch_reference

LAYERS = [
    {"type": "dense", "units": 3, "activation": "tanh", "inputs": "body", "name": "b"},
    {"type": "dense", "units": 2, "activation": "tanh", "inputs": "fields", "name": "f"},
    {"type": "concat", "inputs": ["b", "f"]},
    {"type": "dense", "units": 2},
]
SHAPES = {"fields": (4,), "body": (5,)}


def _net(dtype: str = "float64") -> Network:
    return Network(LAYERS, SHAPES, backend=get_backend("cpu", dtype), seed=3)


def _x(rows: int = 6) -> dict:
    rng = np.random.default_rng(0)
    return {name: rng.normal(size=(rows, *shape)) for name, shape in SHAPES.items()}


def test_each_layer_reads_the_input_it_names_and_backward_gives_each_inputs_gradient():
    net, x = _net(), _x()
    y = net.forward(x)
    assert y.shape == (6, 2) and net.input_shape == SHAPES
    b, f = net.layers[0], net.layers[1]
    assert b.in_shape == (5,) and f.in_shape == (4,)
    grads = net.backward(np.ones_like(y))
    assert set(grads) == {"fields", "body"}
    assert grads["fields"].shape == (6, 4) and grads["body"].shape == (6, 5)
    eps = 1e-6  # a central difference on one entry of each input
    for name in SHAPES:
        up, down = {k: v.copy() for k, v in x.items()}, {k: v.copy() for k, v in x.items()}
        up[name][2, 1] += eps
        down[name][2, 1] -= eps
        numeric = (net.forward(up).sum() - net.forward(down).sum()) / (2 * eps)
        assert abs(numeric - grads[name][2, 1]) < 1e-7
    assert [row["inputs"] for row in net.summary()][:2] == [["body"], ["fields"]]


def test_an_input_no_layer_reads_is_an_error_naming_it():
    with pytest.raises(SpecError, match="no layer reads the data input 'photo'"):
        Network(LAYERS, {**SHAPES, "photo": (3,)})


def test_the_first_layer_without_inputs_takes_the_first_input():
    layers = [
        {"type": "dense", "units": 2, "name": "a"},
        {"type": "dense", "units": 2, "inputs": "extra", "name": "e"},
        {"type": "add", "inputs": ["a", "e"]},
    ]
    net = Network(layers, {"first": (3,), "extra": (7,)})
    assert net.layers[0].in_shape == (3,) and net.layers[1].in_shape == (7,)


def test_a_misspelt_input_gets_a_did_you_mean_and_missing_data_is_named():
    layers = [{**LAYERS[0], "inputs": "bodyy"}, *LAYERS[1:]]
    with pytest.raises(SpecError, match="did you mean 'body'"):
        Network(layers, SHAPES)
    with pytest.raises(ShapeError, match="no data for the input 'body'"):
        _net().forward({"fields": np.zeros((2, 4))})


def test_one_input_keeps_its_array_and_its_name():
    net = Network([{"type": "dense", "units": 2}], (3,))
    assert net.input_shape == (3,) and net.input_names == ("input",)
    x = np.ones((2, 3), dtype=np.float32)
    assert np.array_equal(net.forward(x), net.forward({"input": x}))
    assert net.backward(np.ones((2, 2), dtype=np.float32)).shape == (2, 3)


def test_feeds_take_rows_and_move_either_form():
    x = _x(5)
    part = feeds.take(x, np.array([4, 0]))
    assert feeds.rows(part) == 2 and np.array_equal(part["body"][0], x["body"][4])
    mask = {"body": np.ones((5, 3), dtype=bool)}
    xb, yb, mb = feeds.to_device(get_backend("cpu"), x, np.zeros((5, 1)), mask)
    assert xb["fields"].dtype == np.float32 and mb["body"].dtype == bool and yb.shape == (5, 1)


def test_three_sgd_steps_match_pytorch_in_float64():
    torch = torch_reference()
    net, x = _net(), _x()
    target = np.random.default_rng(1).normal(size=(6, 2))
    weights = {k: torch.tensor(v, requires_grad=True) for k, v in net.get_weights().items()}

    def torch_forward(xs):
        b = torch.tanh(xs["body"] @ weights["0.dense.weight"].T + weights["0.dense.bias"])
        f = torch.tanh(xs["fields"] @ weights["1.dense.weight"].T + weights["1.dense.bias"])
        return torch.cat([b, f], dim=1) @ weights["3.dense.weight"].T + weights["3.dense.bias"]

    rate = 0.1
    tx = {k: torch.tensor(v) for k, v in x.items()}
    for _ in range(3):
        y = net.forward(x, training=True)
        dy = 2 * (y - target) / y.size
        net.backward(dy)
        for name, p in net.named_parameters().items():
            p -= rate * net.named_gradients()[name]
        loss = ((torch_forward(tx) - torch.tensor(target)) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for w in weights.values():
                w -= rate * w.grad
                w.grad = None
    for name, value in net.get_weights().items():
        assert np.allclose(value, weights[name].detach().numpy(), rtol=0, atol=1e-9), name
