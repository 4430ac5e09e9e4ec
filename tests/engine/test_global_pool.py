"""global_avgpool and global_maxpool: images and sequences, PyTorch's numbers, masks."""

import numpy as np
import pytest
from helpers import torch_reference

from nncli.backend import get_backend
from nncli.engine import kernels
from nncli.engine.gradcheck import check_layer
from nncli.engine.network import make_layer

F64 = get_backend("cpu", "float64")
MASK = np.arange(4)[None, :] < np.array([4, 2, 1])[:, None]


def built(name, in_shape):
    layer = make_layer(name, 0)
    layer.build(in_shape, F64, np.random.default_rng(0))
    return layer


@pytest.mark.parametrize("name", ["global_avgpool", "global_maxpool"])
def test_images_match_torch(name):
    torch = torch_reference()
    layer = built(name, (3, 4, 5))
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 5))
    tx = torch.tensor(x, requires_grad=True)
    out = tx.mean(dim=(2, 3)) if name == "global_avgpool" else tx.amax(dim=(2, 3))
    r = np.random.default_rng(2).normal(size=out.shape)
    (out * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(layer.forward(x), out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(r), tx.grad.numpy(), rtol=1e-12)
    assert layer.out_shape == (3,)


@pytest.mark.parametrize("name", ["global_avgpool", "global_maxpool"])
def test_masked_sequences_pool_over_real_steps_only(name):
    layer = built(name, (4, 2))
    x = np.random.default_rng(3).normal(size=(3, 4, 2))
    layer.mask = MASK
    y = layer.forward(x)
    for n, length in enumerate([4, 2, 1]):
        real = x[n, :length]
        want = real.mean(axis=0) if name == "global_avgpool" else real.max(axis=0)
        np.testing.assert_allclose(y[n], want, rtol=1e-12)
    changed = x.copy()
    changed[~MASK] = 1e6
    np.testing.assert_allclose(layer.forward(changed), y)
    dx = layer.backward(np.ones_like(y))
    assert not dx[~MASK].any()  # padded steps get no gradient


@pytest.mark.parametrize("name", ["global_avgpool", "global_maxpool"])
def test_masked_gradients(name):
    errors = check_layer(make_layer(name, 0), (4, 2), mask=MASK)
    assert max(errors.values()) < 1e-6, errors


def test_steps_may_differ_between_batches():
    layer = built("global_avgpool", (4, 2))
    assert layer.forward(np.ones((5, 9, 2))).shape == (5, 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sequence_average_kernels_give_the_numpy_numbers(monkeypatch, dtype):
    """The numba mean over steps and its backward (global_pool.py's ``avgpool_loops``) sum in
    numpy's order: the same numbers as the numpy reference, on an odd number of steps."""
    pytest.importorskip("numba")
    backend, out = get_backend("cpu", dtype), []
    x = np.random.default_rng(1).normal(size=(33, 37, 13)).astype(dtype)  # above MIN_SIZE
    dy = np.random.default_rng(2).normal(size=(33, 13)).astype(dtype)
    for on in (True, False):
        monkeypatch.setattr(kernels, "_kernels", None if on else False)
        layer = make_layer("global_avgpool", 0)
        layer.build((37, 13), backend, np.random.default_rng(0))
        out.append((layer.forward(x, training=True), layer.backward(dy), layer.fused))
    assert out[0][2] and not out[1][2]
    for ours, reference in zip(out[0][:2], out[1][:2], strict=True):
        np.testing.assert_array_equal(ours, reference)
