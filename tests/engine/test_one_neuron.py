"""The course text's one-neuron worked example (lesson 0401), to three significant digits."""

import numpy as np
import pytest

from nncli.backend import get_backend
from nncli.engine.losses import make_loss
from nncli.engine.network import Sequential


def neuron(w1: float) -> Sequential:
    net = Sequential(
        [{"type": "dense", "units": 1, "activation": "sin"}],
        (2,),
        backend=get_backend("cpu", "float64"),
    )
    net.set_weights({"0.dense.weight": [[w1, 1.0]], "0.dense.bias": [2.0]})
    return net


X = np.array([[2.0, 4.0]])
Y = np.array([[-0.6]])


def error(w1: float) -> float:
    return float(make_loss("mse").forward(neuron(w1).forward(X), Y))


def test_output_is_sin_of_ten():
    assert float(neuron(2.0).forward(X)[0, 0]) == pytest.approx(-0.544, abs=5e-4)


def test_squared_error_and_its_derivative():
    net, loss = neuron(2.0), make_loss("mse")
    assert float(loss.forward(net.forward(X), Y)) == pytest.approx(0.00313, rel=2e-3)
    net.backward(loss.backward())
    assert float(net.named_gradients()["0.dense.weight"][0, 0]) == pytest.approx(-0.188, rel=3e-3)


def test_a_small_step_lowers_the_error_and_a_big_one_raises_it():
    assert float(neuron(2.01).forward(X)[0, 0]) == pytest.approx(-0.561, abs=5e-4)
    assert error(2.01) == pytest.approx(0.00154, abs=1e-5)  # the text truncates 0.001545
    assert error(2.1) == pytest.approx(0.00997, rel=3e-3)
    assert error(2.01) < error(2.0) < error(2.1)


def test_one_sgd_step_follows_the_gradient():
    from nncli.engine.optimizers import SGD

    net, loss = neuron(2.0), make_loss("mse")
    loss.forward(net.forward(X), Y)
    net.backward(loss.backward())
    SGD(learning_rate=0.01 / 0.188).step(net.named_parameters(), net.named_gradients())
    # w1 moves by about +0.01 (against the negative gradient)
    assert float(net.named_parameters()["0.dense.weight"][0, 0]) == pytest.approx(2.01, abs=2e-4)
