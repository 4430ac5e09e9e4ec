"""batchnorm and layernorm: PyTorch's numbers, running statistics, masks, the state contract."""

import numpy as np
import pytest
from helpers import torch_reference

from nncli.backend import get_backend
from nncli.engine.gradcheck import check_layer
from nncli.engine.layers.layernorm import LayerNorm
from nncli.engine.layers.normalization import BatchNorm
from nncli.engine.network import Sequential
from nncli.errors import ShapeError

F64 = get_backend("cpu", "float64")
# lengths 4 (full), 2 and 3 of T = 4; padding at the end of each sequence
MASK = np.arange(4)[None, :] < np.array([4, 2, 3])[:, None]


def built(layer, in_shape, seed=0):
    rng = np.random.default_rng(seed)
    layer.build(in_shape, F64, rng)
    for p in layer.params.values():
        p[...] = rng.normal(size=p.shape)
    return layer


@pytest.mark.parametrize("in_shape", [(4,), (3, 5, 5), (6, 4)])
def test_batchnorm_matches_torch_in_training_and_inference(in_shape):
    torch = torch_reference()
    layer = built(BatchNorm(momentum=0.3), in_shape)
    channels = in_shape[0] if len(in_shape) == 3 else in_shape[-1]
    ref = (torch.nn.BatchNorm2d if len(in_shape) == 3 else torch.nn.BatchNorm1d)(
        channels, momentum=0.3
    ).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.params["weight"]))
        ref.bias.copy_(torch.tensor(layer.params["bias"]))
    rng = np.random.default_rng(1)
    for _ in range(3):  # three training batches move the running statistics
        x = rng.normal(2.0, 3.0, size=(5, *in_shape))
        ours = layer.forward(x, training=True)
        # PyTorch's BatchNorm1d takes (N, C, L): the sequence's features are its channels
        tx = torch.tensor(x).transpose(1, 2) if len(in_shape) == 2 else torch.tensor(x)
        theirs = ref.train()(tx)
        theirs = theirs.transpose(1, 2) if len(in_shape) == 2 else theirs
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.state["running_mean"], ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.state["running_var"], ref.running_var.numpy(), rtol=1e-12)
    x = rng.normal(size=(2, *in_shape))
    tx = torch.tensor(x).transpose(1, 2) if len(in_shape) == 2 else torch.tensor(x)
    theirs = ref.eval()(tx)
    theirs = theirs.transpose(1, 2) if len(in_shape) == 2 else theirs
    np.testing.assert_allclose(layer.forward(x), theirs.detach().numpy(), rtol=1e-10)


def test_running_variance_uses_the_unbiased_batch_variance():
    layer = built(BatchNorm(momentum=0.5), (1,))
    x = np.array([[1.0], [2.0], [6.0]])  # mean 3, biased var 14/3, unbiased 7
    layer.forward(x, training=True)
    assert layer.state["running_mean"][0] == pytest.approx(0.5 * 3.0)
    assert layer.state["running_var"][0] == pytest.approx(0.5 * 1.0 + 0.5 * 7.0)


def test_inference_leaves_running_statistics_alone():
    layer = built(BatchNorm(), (3,))
    layer.forward(np.random.default_rng(0).normal(size=(4, 3)), training=True)
    before = {k: v.copy() for k, v in layer.state.items()}
    layer.forward(np.random.default_rng(1).normal(size=(4, 3)))
    for k, v in layer.state.items():
        np.testing.assert_array_equal(v, before[k])


def test_masked_steps_are_left_out_of_the_statistics():
    layer = built(BatchNorm(), (4, 2))
    x = np.random.default_rng(2).normal(size=(3, 4, 2))
    layer.mask = MASK
    y = layer.forward(x, training=True)
    real = x[MASK]  # (real steps, F)
    want = (real - real.mean(axis=0)) / np.sqrt(real.var(axis=0) + 1e-5)
    want = want * layer.params["weight"] + layer.params["bias"]
    np.testing.assert_allclose(y[MASK], want, rtol=1e-10)
    changed = x.copy()
    changed[~MASK] = 1e6  # padded values never reach a real step's output
    np.testing.assert_allclose(layer.forward(changed, training=True)[MASK], y[MASK])


def test_masked_batchnorm_gradients():
    errors = check_layer(built(BatchNorm(), (4, 2)), (4, 2), mask=MASK, training=True)
    assert max(errors.values()) < 1e-6, errors


def test_batchnorm_refuses_a_mask_of_the_wrong_shape():
    layer = built(BatchNorm(), (4, 2))
    layer.mask = np.ones((3, 5), dtype=bool)
    with pytest.raises(ShapeError, match=r"padding mask of shape \(3, 4\)"):
        layer.forward(np.zeros((3, 4, 2)), training=True)


def test_state_is_declared_and_counted_apart_from_parameters():
    net = Sequential(
        [{"type": "dense", "units": 3}, {"type": "batchnorm"}], (2,), backend=F64, seed=0
    )
    assert set(net.named_state()) == {"1.batchnorm.running_mean", "1.batchnorm.running_var"}
    assert "1.batchnorm.running_var" not in net.named_parameters()
    rows = net.summary()
    assert (rows[1]["params"], rows[1]["non_trainable"]) == (6, 6)
    assert rows[0]["non_trainable"] == 0
    # a snapshot (best weights, resume) carries the state and puts it back
    net.forward(np.random.default_rng(0).normal(size=(5, 2)), training=True)
    snapshot = net.get_weights()
    net.forward(np.random.default_rng(1).normal(size=(5, 2)), training=True)
    net.set_weights(snapshot)
    np.testing.assert_array_equal(
        net.layers[1].state["running_var"], snapshot["1.batchnorm.running_var"]
    )


def test_layernorm_matches_torch():
    torch = torch_reference()
    layer = built(LayerNorm(), (3, 5))
    ref = torch.nn.LayerNorm(5).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.params["weight"]))
        ref.bias.copy_(torch.tensor(layer.params["bias"]))
    x = np.random.default_rng(3).normal(1.0, 2.0, size=(2, 3, 5))
    tx = torch.tensor(x, requires_grad=True)
    out = ref(tx)
    r = np.random.default_rng(4).normal(size=out.shape)
    (out * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(layer.forward(x), out.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.backward(r), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), rtol=1e-9)


def test_keras_momentum_099_written_as_001_follows_keras_update_formula():
    """Keras's BatchNormalization(momentum=0.99) moves its statistics as
    moving = momentum * moving + (1 - momentum) * batch; nncli's momentum m is the batch's
    share, so Keras's 0.99 is m = 0.01 here. The running variance takes the batch's unbiased
    variance here (PyTorch's); Keras 3 takes the biased one, a factor n / (n - 1) on its term."""
    layer = built(BatchNorm(momentum=0.01), (3,))
    keras_momentum = 0.99
    mean, var = np.zeros(3), np.ones(3)  # Keras's initial moving mean and variance too
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = rng.normal(1.5, 2.0, size=(8, 3))
        layer.forward(x, training=True)
        mean = keras_momentum * mean + (1 - keras_momentum) * x.mean(axis=0)
        var = keras_momentum * var + (1 - keras_momentum) * x.var(axis=0, ddof=1)
    np.testing.assert_allclose(layer.state["running_mean"], mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.state["running_var"], var, rtol=1e-12)
    # the same momentum read the Keras way would have kept 1% of the old statistics
    assert not np.allclose(layer.state["running_mean"], 0.99 * x.mean(axis=0), rtol=0.1)
