"""maxpool1d and avgpool1d on (N, T, F) against PyTorch's MaxPool1d and AvgPool1d."""

import numpy as np
import pytest
from helpers import torch_reference

from nncli.backend import get_backend
from nncli.engine.layers.pool1d import AvgPool1D, MaxPool1D
from nncli.errors import SpecError

F64 = get_backend("cpu", "float64")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(
    "settings", [{"pool_size": 2}, {"pool_size": 3, "strides": 2, "padding": 1}]
)
def test_matches_torch(kind, settings):
    torch = torch_reference()
    layer = (MaxPool1D if kind == "max" else AvgPool1D)(**settings)
    layer.build((9, 3), F64, np.random.default_rng(0))
    size, stride = settings["pool_size"], settings.get("strides", settings["pool_size"])
    pad = settings.get("padding", 0)
    ref = (torch.nn.MaxPool1d if kind == "max" else torch.nn.AvgPool1d)(size, stride, pad)
    x = np.random.default_rng(1).normal(size=(2, 9, 3))
    tx = torch.tensor(x, requires_grad=True)
    out = ref(tx.transpose(1, 2)).transpose(1, 2)
    r = np.random.default_rng(2).normal(size=out.shape)
    (out * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(layer.forward(x, training=True), out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(r), tx.grad.numpy(), rtol=1e-12)
    assert layer.out_shape == tuple(out.shape[1:])


def test_ties_send_the_gradient_to_the_first_maximum():
    layer = MaxPool1D(pool_size=3)
    layer.build((3, 1), F64, np.random.default_rng(0))
    layer.forward(np.array([[[2.0], [2.0], [1.0]]]))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1)))[0, :, 0], [1.0, 0.0, 0.0])


def test_padding_is_at_most_half_the_pool():
    with pytest.raises(SpecError, match="at most half the pool size 2, got 2"):
        MaxPool1D(pool_size=2, padding=2)


@pytest.mark.parametrize("kind", [MaxPool1D, AvgPool1D])
def test_masked_steps_count_as_padding(kind):
    layer = kind(pool_size=2)
    layer.build((6, 1), F64, np.random.default_rng(0))
    x = np.array([[[-3.0], [-1.0], [-2.0], [7.0], [7.0], [7.0]]])
    layer.mask = np.array([[True, True, True, False, False, False]])
    y = layer.forward(x)[0, :, 0]
    want = [-1.0, -2.0, 0.0] if kind is MaxPool1D else [-2.0, -1.0, 0.0]
    np.testing.assert_array_equal(y, want)
    assert not layer.backward(np.ones((1, 3, 1)))[0, 3:].any()
