"""embedding: rows of the weight by id, the gradient added per id, ids checked on the host."""

import numpy as np
import pytest
from helpers import torch_reference

from nncli.backend import get_backend
from nncli.engine.layers.embedding import Embedding
from nncli.errors import DataError, ShapeError, SpecError

F64 = get_backend("cpu", "float64")


def built(input_dim=6, output_dim=3, steps=4):
    layer = Embedding(input_dim, output_dim)
    layer.build((steps,), F64, np.random.default_rng(0))
    return layer


def test_matches_torch_forward_and_weight_gradient():
    torch = torch_reference()
    layer = built()
    ref = torch.nn.Embedding(6, 3).double()
    with torch.no_grad():  # the same layout: weight (input_dim, output_dim)
        ref.weight.copy_(torch.tensor(layer.params["weight"]))
    ids = np.array([[0, 5, 5, 2], [1, 1, 1, 3]])
    out = ref(torch.tensor(ids))
    r = np.random.default_rng(1).normal(size=out.shape)
    (out * torch.tensor(r)).sum().backward()
    np.testing.assert_array_equal(layer.forward(ids.astype(np.float64)), out.detach().numpy())
    assert layer.backward(r) is None  # ids have no gradient
    np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), rtol=1e-12)


def test_repeated_ids_add_their_gradients():
    layer = built()
    layer.forward(np.array([[2, 2, 2, 0]]))
    layer.backward(np.ones((1, 4, 3)))
    np.testing.assert_array_equal(layer.grads["weight"][:, 0], [1, 0, 3, 0, 0, 0])


@pytest.mark.parametrize(("bad", "shown"), [(6, "got 6"), (-2, "got -2"), (1.5, "got 1.5")])
def test_out_of_range_or_fractional_ids_are_data_errors(bad, shown):
    layer = built()
    with pytest.raises(DataError, match=rf"expects integer ids in \[0, 6\) .*, {shown}"):
        layer.forward(np.array([[0, 1, bad, 2]]))


def test_an_unknown_symbol_is_the_zero_vector_and_learns_nothing():
    layer = built()
    y = layer.forward(np.array([[2, -1, 2, 0]]))  # -1: predict --unknown ignore's unknown symbol
    np.testing.assert_array_equal(y[0, 1], 0.0)
    np.testing.assert_array_equal(y[0, [0, 2, 3]], layer.params["weight"][[2, 2, 0]])
    layer.backward(np.ones((1, 4, 3)))
    np.testing.assert_array_equal(layer.grads["weight"][:, 0], [1, 0, 2, 0, 0, 0])  # not row 0


def test_settings_are_checked():
    with pytest.raises(SpecError, match="positive integer"):
        Embedding(0, 3)
    assert Embedding(4, 2).config() == {"type": "embedding", "input_dim": 4, "output_dim": 2}


def test_input_dim_auto_takes_the_vocabulary_size_before_build():
    from nncli.spec.build import input_form, resolve_layers

    layers = [{"type": "embedding", "input_dim": "auto", "output_dim": 4}, "flatten"]
    assert input_form(layers) == "ids" and input_form(["flatten"]) == "onehot"
    assert resolve_layers(layers, None, vocabulary_size=11)[0]["input_dim"] == 11
    with pytest.raises(SpecError, match="input_dim: auto needs"):
        resolve_layers(layers, None)
    with pytest.raises(ValueError, match="resolved from the data"):
        Embedding("auto", 3).build((4,), F64, np.random.default_rng(0))


def test_ids_of_any_length_pass_but_not_one_hot_rows():
    layer = built()
    assert layer.forward(np.array([[1, 2]])).shape == (1, 2, 3)  # a prompt shorter than T
    with pytest.raises(ShapeError, match=r"expects ids \(N, 4\)"):
        layer.forward(np.zeros((1, 4, 6)))
