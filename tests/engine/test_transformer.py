"""transformer: PyTorch's parameter names and initialisation, its dropout (seeded, resumable,
off at inference), and checkpoints of its dotted parameter names; PyTorch's numbers are in
test_torch_reference.py."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_close_float32, chain_terms, invoke, text_spec
from test_attention import walks_spec

from nncli.backend import get_backend
from nncli.checkpoint import model as model_io
from nncli.commands.apply import stored_encoder
from nncli.commands.generate import generate
from nncli.engine.network import Sequential, make_layer
from nncli.errors import SpecError
from nncli.training.loop import predict

F64 = get_backend("cpu", "float64")
TORCH_NAMES = [  # nn.TransformerEncoderLayer's named_parameters(), in its order
    "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
    "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
    "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
]  # fmt: skip


def built(seed: int = 0, **settings):
    layer = make_layer({"type": "transformer", "heads": 2, "feedforward": 32, **settings}, 0)
    layer.build((7, 16), F64, np.random.default_rng(seed))
    return layer


def test_parameters_have_torchs_names_shapes_and_initialisation():
    layer = built()
    assert list(layer.params) == TORCH_NAMES
    p = {k: np.asarray(v) for k, v in layer.params.items()}
    assert p["self_attn.in_proj_weight"].shape == (48, 16)
    assert p["linear1.weight"].shape == (32, 16) and p["linear2.weight"].shape == (16, 32)
    # xavier_uniform over (3F, F); nn.Linear's U(+-1/sqrt(fan_in)) for weights and biases
    assert np.abs(p["self_attn.in_proj_weight"]).max() <= np.sqrt(6 / (16 + 48))
    assert np.abs(p["self_attn.in_proj_weight"]).max() > 0.9 * np.sqrt(6 / (16 + 48))
    for name, fan_in in [
        ("self_attn.out_proj.weight", 16),
        ("linear1.weight", 16),
        ("linear1.bias", 16),
        ("linear2.weight", 32),
        ("linear2.bias", 32),
    ]:
        assert 0.8 / np.sqrt(fan_in) < np.abs(p[name]).max() <= 1 / np.sqrt(fan_in), name
    for name in ["self_attn.in_proj_bias", "self_attn.out_proj.bias", "norm1.bias", "norm2.bias"]:
        assert not p[name].any(), name
    assert (p["norm1.weight"] == 1).all() and (p["norm2.weight"] == 1).all()
    np.testing.assert_array_equal(p["linear2.weight"], built().params["linear2.weight"])


def test_dropout_is_off_at_inference_and_drawn_from_the_networks_generator():
    x = np.random.default_rng(1).normal(size=(3, 7, 16))
    layer, twin = built(dropout=0.3), built(dropout=0.0)  # the same seed: the same weights
    np.testing.assert_array_equal(layer.forward(x), twin.forward(x, training=True))
    runs = []
    for _ in range(2):
        layer.set_rng(np.random.default_rng(4))
        runs.append(layer.forward(x, training=True))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], layer.forward(x))


def test_settings_are_checked_when_made():
    with pytest.raises(SpecError, match="expected one of relu, gelu, got 'tanh'"):
        make_layer({"type": "transformer", "heads": 1, "feedforward": 4, "activation": "tanh"}, 0)
    with pytest.raises(SpecError, match="feedforward"):
        make_layer({"type": "transformer", "heads": 1, "feedforward": 0}, 0)


def test_a_network_of_blocks_learns_through_the_flat_parameter_buffer():
    """The network moves every parameter into one buffer: the parts must read the views, so
    a step of the optimizer changes what the block computes."""
    net = Sequential(
        [{"type": "transformer", "heads": 2, "feedforward": 8, "dropout": 0.0}], (5, 4), F64
    )
    x = np.random.default_rng(2).normal(size=(2, 5, 4))
    before = net.forward(x)
    net.backward(np.ones_like(before), input_grad=True)
    grads = net.named_gradients()
    assert grads["0.transformer.linear2.bias"].any()
    for name, value in net.named_parameters().items():
        value -= 0.1 * grads[name]
    assert not np.allclose(net.forward(x), before)


def weights(path: Path, group: str) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {}
        f[group].visititems(lambda name, obj: out.update(
            {name: obj[()]} if isinstance(obj, h5py.Dataset) else {}))  # fmt: skip
        return out


def test_resume_gives_bitwise_identical_weights_and_dotted_names_round_trip(tmp_path):
    spec = walks_spec(
        tmp_path, "[{type: dense, units: 8}, {type: positional, max_length: 40},"
        " {type: transformer, heads: 2, feedforward: 16, dropout: 0.2},"
        " global_avgpool, {type: dense, units: auto, activation: softmax}]",
    )  # fmt: skip
    straight, half, resumed = (tmp_path / d / "m.h5" for d in "abc")
    for out, epochs in ((straight, 3), (half, 2)):
        result = invoke("train", spec, "--epochs", epochs, "--output", out, "--quiet")
        assert result.exit_code == 0, result.stderr
    result = invoke("train", spec, "--epochs", 3, "--resume", half, "--output", resumed, "--quiet")
    assert result.exit_code == 0, result.stderr
    for group in ("model", "optimizer"):
        a, c = weights(straight, group), weights(resumed, group)
        assert a.keys() == c.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], c[key], err_msg=key)
    stored = weights(straight, "model")
    assert {f"2.transformer/{name}" for name in TORCH_NAMES} <= set(stored)
    assert "2.transformer/self_attn.out_proj.weight/m" in weights(straight, "optimizer")
    loaded = model_io.load(straight).net.get_weights()
    for name in TORCH_NAMES:
        np.testing.assert_array_equal(loaded[f"2.transformer.{name}"],
                                      stored[f"2.transformer/{name}"])  # fmt: skip


def test_a_causal_text_model_generates_and_never_reads_ahead(tmp_path):
    """Text: next-symbol targets at every step, so a block must be causal; a step's output is
    then the same whatever follows it, and ``generate`` feeds it any prompt length."""
    spec = text_spec(
        tmp_path,
        "level: char, sequence_length: 16",
        "[{type: embedding, input_dim: auto, output_dim: 8}, {type: positional, max_length: 16},"
        " {type: transformer, heads: 2, feedforward: 16, causal: true},"
        " {type: dense, units: auto, activation: softmax}]",
    )
    result = invoke("train", spec, "--quiet")
    assert result.exit_code == 0, result.stderr
    ckpt = tmp_path / "out" / "model.h5"
    texts = {generate(ckpt, "ROMEO:", length=30, seed=1) for _ in range(2)}
    assert len(texts) == 1 and len(texts.pop()) == 36
    model = model_io.load(ckpt)
    encoder = stored_encoder(model)
    ids = encoder.ids("First Citizen: Bef", what="--prompt")[None, :16]
    whole = predict(model.net, encoder.window_inputs(ids))
    prefix = predict(model.net, encoder.window_inputs(ids[:, :6]))
    # float32, two window lengths: as close as float32 allows over the network's sums
    assert_close_float32(prefix, whole[:, :6], chain_terms(model.net, steps=16))


def test_the_parts_see_weights_set_before_any_forward():
    """A loaded checkpoint's weights go into the network's buffer; the parts (what the ONNX
    export converts) must hold them with no forward run in between."""
    net = Sequential(
        [{"type": "transformer", "heads": 2, "feedforward": 8, "dropout": 0.0}], (5, 4), F64
    )
    stored = {name: value + 1.0 for name, value in net.get_weights().items()}
    net.set_weights(stored)
    block = net.layers[0]
    np.testing.assert_array_equal(block.parts["linear1"].params["weight"],
                                  stored["0.transformer.linear1.weight"])  # fmt: skip
    np.testing.assert_array_equal(block.parts["self_attn"].params["out_proj_weight"],
                                  stored["0.transformer.self_attn.out_proj.weight"])  # fmt: skip
    assert block.parts["norm2"].grads["bias"] is block.grads["norm2.bias"]
