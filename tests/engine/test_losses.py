"""huber and cross_entropy's label_smoothing against PyTorch, and their settings."""

import numpy as np
import pytest
from helpers import torch_reference

from nncli.engine import LOSSES
from nncli.engine.activations import softmax
from nncli.engine.gradcheck import check_loss
from nncli.errors import SpecError


@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_huber_matches_torch(delta):
    torch = torch_reference()
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 3))
    tp = torch.tensor(p, requires_grad=True)
    want = torch.nn.HuberLoss(delta=delta)(tp, torch.tensor(y))
    want.backward()
    loss = LOSSES.create("huber", {"delta": delta})
    assert float(loss.forward(p, y)) == pytest.approx(want.item(), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), tp.grad.numpy(), rtol=1e-12)


def test_huber_gradient_with_small_delta():
    rng = np.random.default_rng(1)
    loss = LOSSES.create("huber", {"delta": 0.2})
    assert check_loss(loss, rng.normal(size=(5, 2)), rng.normal(size=(5, 2))) < 1e-6


@pytest.mark.parametrize("fused", [True, False])
def test_label_smoothing_matches_torch(fused):
    torch = torch_reference()
    rng = np.random.default_rng(2)
    z, labels = rng.normal(size=(5, 4)) * 3, rng.integers(0, 4, size=5)
    tz = torch.tensor(z, requires_grad=True)
    want = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(tz, torch.tensor(labels))
    want.backward()
    loss = LOSSES.create("cross_entropy", {"label_smoothing": 0.2})
    y = np.eye(4)[labels]
    value = loss.forward(softmax(z), y, logits=z if fused else None)
    assert float(value) == pytest.approx(want.item(), rel=1e-12)
    if fused:  # the fused gradient is dL/dlogits, exact
        np.testing.assert_allclose(loss.backward(), tz.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_label_smoothing_gradients_fused_and_not():
    rng = np.random.default_rng(3)
    loss = LOSSES.create("cross_entropy", {"label_smoothing": 0.1})
    z, y = rng.normal(size=(4, 3)), np.eye(3)[rng.integers(0, 3, size=4)]
    assert check_loss(loss, z, y, logits=True) < 1e-6
    assert check_loss(loss, softmax(z), y) < 1e-6


def test_settings_are_checked_and_kept():
    with pytest.raises(SpecError, match=r"expected a number in \[0.0, 1.0\], got 1.5"):
        LOSSES.create("cross_entropy", {"label_smoothing": 1.5})
    with pytest.raises(SpecError, match="got 0"):
        LOSSES.create("huber", {"delta": 0})
    assert LOSSES.create("huber").config() == "huber"
    assert LOSSES.create("huber", {"delta": 2.0}).config() == {"type": "huber", "delta": 2.0}
