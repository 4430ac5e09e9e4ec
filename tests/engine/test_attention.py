"""attention: masks (padding as keys, causal), NaN-free rows, dropout of the weights, the heads
check; PyTorch's numbers are in test_torch_reference.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import DATASETS, invoke, one_error_line

from nncli.backend import get_backend
from nncli.engine.gradcheck import check_layer
from nncli.engine.layers.attention import masked_softmax
from nncli.engine.network import Sequential, make_layer
from nncli.errors import SpecError

F64 = get_backend("cpu", "float64")
LENGTHS = [5, 2, 4]
MASK = np.arange(5)[None, :] < np.array(LENGTHS)[:, None]


def walks_spec(folder: Path, layers: str, epochs: int = 1) -> Path:
    """A small spec on the first 20 walks of datasets/walks.csv (sequences of 8 to 40 steps,
    padded and masked) with the given flow-style layer list."""
    walks = (DATASETS / "walks.csv").read_text().splitlines()
    (folder / "walks.csv").write_text("\n".join(walks[:601]) + "\n")
    path = folder / "walks.yaml"
    path.write_text(
        "version: 1\nseed: 0\n"
        "data: {kind: sequences, path: walks.csv, id: walk, order: t, features: [value],"
        " target: drift, target_per: sequence, validation_split: 0.25}\n"
        f"model:\n  layers: {layers}\n"
        "loss: cross_entropy\noptimizer: {type: adam, learning_rate: 0.01}\n"
        f"training: {{epochs: {epochs}, batch_size: 8}}\noutput: out/model.h5\n"
    )
    return path


NETWORKS = {
    "attention": [{"type": "attention", "heads": 2}],
    "causal": [{"type": "attention", "heads": 2, "causal": True}],
    "transformer": [{"type": "transformer", "heads": 2, "feedforward": 6, "causal": True},
                    {"type": "transformer", "heads": 1, "feedforward": 3, "norm_first": False}],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_a_sequence_alone_gives_what_it_gives_in_a_padded_batch(name):
    """Padded steps are keys nobody sees: each sequence's real steps come out as when it runs
    alone at its own length, and its padded steps are zeros (nothing downstream is poisoned)."""
    net = Sequential(NETWORKS[name], (5, 4), backend=F64, seed=2)
    x = np.random.default_rng(3).normal(size=(3, 5, 4))
    x[~MASK] = 1e6  # whatever padding holds must not matter
    together = net.forward(x, mask=MASK)
    assert np.isfinite(together).all()
    assert not together[~MASK].any()
    for i, length in enumerate(LENGTHS):
        alone = net.forward(x[i : i + 1, :length])
        np.testing.assert_allclose(together[i, :length], alone[0], rtol=1e-12, atol=1e-12)


def test_causal_attention_ignores_the_future():
    layer = make_layer({"type": "attention", "heads": 2, "causal": True}, 0)
    layer.build((6, 4), F64, np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(2, 6, 4))
    changed = x.copy()
    changed[:, 3:] += 5.0
    np.testing.assert_allclose(layer.forward(changed)[:, :3], layer.forward(x)[:, :3], rtol=1e-13)
    assert not np.allclose(layer.forward(changed)[:, 3:], layer.forward(x)[:, 3:])


def test_a_query_with_no_key_to_see_gets_zero_weights_not_nan():
    scores = np.random.default_rng(4).normal(size=(2, 1, 3, 3))
    allowed = np.array([[True, True, False], [False, False, False]])[:, None, None, :]
    weights = masked_softmax(scores, allowed)
    assert not weights[1].any()
    np.testing.assert_allclose(weights[0].sum(axis=-1), 1.0)
    assert not weights[0, ..., 2].any()


@pytest.mark.parametrize(
    "settings",
    [
        {"type": "attention", "heads": 2, "causal": True, "dropout": 0.3},
        {"type": "transformer", "heads": 2, "feedforward": 5, "dropout": 0.2},
        {"type": "transformer", "heads": 1, "feedforward": 3, "norm_first": False},
    ],
)
def test_gradients_with_a_padding_mask(settings):
    layer = make_layer(settings, 0)
    errors = check_layer(layer, (5, 4), mask=MASK, training=True, backend=F64)
    assert max(errors.values()) < 1e-6, errors


def test_dropout_drops_attention_weights_in_training_only_from_the_given_generator():
    layer = make_layer({"type": "attention", "heads": 2, "dropout": 0.5}, 0)
    layer.build((5, 4), F64, np.random.default_rng(0))
    x = np.random.default_rng(5).normal(size=(3, 5, 4))
    inference = layer.forward(x)
    np.testing.assert_array_equal(layer.forward(x), inference)
    runs = []
    for _ in range(2):
        layer.set_rng(np.random.default_rng(9))
        runs.append(layer.forward(x, training=True))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], inference)
    kept = layer.kept[layer.weights > 0]
    assert 0.3 < (kept == 0).mean() < 0.7  # about half the weights dropped, the rest doubled


@pytest.mark.parametrize("kind", ["attention", "transformer"])
def test_heads_that_do_not_divide_the_features_are_one_spec_line(tmp_path, kind):
    extra = ", feedforward: 8" if kind == "transformer" else ""
    spec = walks_spec(
        tmp_path, f"[{{type: dense, units: 6}}, {{type: {kind}, heads: 4{extra}}}, global_avgpool,"
        " {type: dense, units: auto, activation: softmax}]",
    )  # fmt: skip
    line = one_error_line(invoke("validate", spec), 2, f"layers[1] ({kind})", "6 features",
                          "heads 4", "model.layers[1].heads")  # fmt: skip
    assert "walks.yaml:" in line


def test_heads_and_dropout_are_checked_when_made():
    with pytest.raises(SpecError, match="heads"):
        make_layer({"type": "attention", "heads": 0}, 0)
    with pytest.raises(SpecError, match="dropout"):
        make_layer({"type": "attention", "heads": 1, "dropout": 1.0}, 0)


def test_trains_on_padded_sequences_from_a_spec(tmp_path):
    spec = walks_spec(
        tmp_path, "[{type: dense, units: 4}, {type: attention, heads: 2, causal: true},"
        " global_avgpool, {type: dense, units: auto, activation: softmax}]", epochs=2,
    )  # fmt: skip
    result = invoke("train", spec, "--smoke", "--quiet")
    assert result.exit_code == 0, result.stderr
