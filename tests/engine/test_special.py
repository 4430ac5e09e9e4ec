"""erf to float64 rounding, and the gelu and silu activations built on it against PyTorch."""

import math

import numpy as np
import pytest
from helpers import torch_reference

from nncli.engine.activations import make_activation
from nncli.engine.special import erf


def test_erf_agrees_with_math_erf_to_rounding():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 0.46875, -0.46875, 4.0, 1e-300, 30.0]])
    want = np.array([math.erf(v) for v in x])  # the test's reference, not the engine's path
    np.testing.assert_allclose(erf(x), want, rtol=4e-16, atol=4e-16)
    assert erf(np.float32([0.5])).dtype == np.float32


@pytest.mark.parametrize("name", ["gelu", "silu", "swish"])
def test_activations_match_torch(name):
    torch = torch_reference()
    z = np.random.default_rng(0).normal(scale=3.0, size=(4, 6))
    tz = torch.tensor(z, requires_grad=True)
    fn = torch.nn.functional.gelu if name == "gelu" else torch.nn.functional.silu
    out = fn(tz)
    r = np.random.default_rng(1).normal(size=z.shape)
    (out * torch.tensor(r)).sum().backward()
    act = make_activation(name)
    np.testing.assert_allclose(act.forward(z), out.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(act.backward(r), tz.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_gelu_by_hand():
    a = make_activation("gelu").forward(np.array([0.0, 1.0, -1.0]))
    np.testing.assert_allclose(a, [0.0, 0.8413447460685429, -0.15865525393145707], rtol=1e-15)
