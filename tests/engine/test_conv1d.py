"""conv1d on (N, T, F): PyTorch's Conv1d numbers and layout, padding, varying steps, masks."""

import numpy as np
import pytest
from helpers import torch_reference

from nncli.backend import get_backend
from nncli.engine.gradcheck import check_layer
from nncli.engine.layers.conv1d import Conv1D
from nncli.engine.network import Sequential
from nncli.errors import SpecError

F64 = get_backend("cpu", "float64")
CASES = [
    {"kernel_size": 3},
    {"kernel_size": 3, "strides": 2},
    {"kernel_size": 2, "dilation": 3, "padding": 2},
    {"kernel_size": 4, "strides": 1, "padding": "same"},
]


def built(in_shape=(9, 3), seed=0, **settings):
    layer = Conv1D(4, **settings)
    rng = np.random.default_rng(seed)
    layer.build(in_shape, F64, rng)
    layer.params["bias"][...] = rng.normal(size=4)
    return layer


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("settings", CASES)
def test_matches_torch_forward_and_backward(settings):
    torch = torch_reference()
    layer = built(**settings)
    pad = settings.get("padding", 0)
    ref = torch.nn.Conv1d(
        3, 4, settings["kernel_size"], stride=settings.get("strides", 1),
        padding=pad, dilation=settings.get("dilation", 1),
    ).double()  # fmt: skip
    with torch.no_grad():  # the same layout: weight (filters, F, k)
        ref.weight.copy_(torch.tensor(layer.params["weight"]))
        ref.bias.copy_(torch.tensor(layer.params["bias"]))
    x = np.random.default_rng(1).normal(size=(2, 9, 3))
    tx = torch.tensor(x, requires_grad=True)
    out = ref(tx.transpose(1, 2)).transpose(1, 2)  # PyTorch's (N, F, T) is our (N, T, F)
    r = np.random.default_rng(2).normal(size=out.shape)
    (out * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(layer.forward(x, training=True), out.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.backward(r), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(layer.grads["bias"], ref.bias.grad.numpy(), rtol=1e-9)


def test_same_padding_with_stride_gives_ceil_of_steps_over_stride():
    layer = built((9, 3), kernel_size=3, strides=2, padding="same")
    assert layer.out_shape == (5, 4)
    assert layer.forward(np.zeros((1, 9, 3))).shape == (1, 5, 4)


def test_steps_may_differ_between_batches():
    layer = built((9, 3), kernel_size=3)
    assert layer.forward(np.zeros((2, 6, 3))).shape == (2, 4, 4)


def test_too_short_input_and_bad_settings_are_named():
    with pytest.raises(SpecError, match="needs at least 5 steps, got 4"):
        built((4, 3), kernel_size=5)
    with pytest.raises(SpecError, match="valid, same or an integer"):
        Conv1D(2, padding="full")
    with pytest.raises(SpecError, match="positive integer"):
        Conv1D(2, dilation=0)


def test_the_mask_follows_the_windows():
    net = Sequential(
        [
            {"type": "conv1d", "filters": 2, "kernel_size": 2, "strides": 2},
            {"type": "gru", "units": 3},
        ],
        (8, 1),
        backend=F64,
    )
    mask = np.arange(8)[None, :] < np.array([8, 3])[:, None]
    net.forward(np.ones((2, 8, 1)), mask=mask)
    # output step p reads steps 2p, 2p + 1: real when either is
    np.testing.assert_array_equal(net.layers[1].mask, [[True] * 4, [True, True, False, False]])


def test_gradients_on_padded_steps_stay_exact():
    layer = built((7, 3), kernel_size=3, padding=1)
    assert max(check_layer(layer, (7, 3), training=True).values()) < 1e-6
