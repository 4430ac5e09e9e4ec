"""bidirectional: true on rnn, lstm and gru: both directions side by side, PyTorch's reverse
names, masks read backwards from each sequence's last real step, gradients and PyTorch."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import DATASETS, assert_network_close, invoke, torch_reference

from nncli.backend import get_backend
from nncli.checkpoint import model as model_io
from nncli.engine.gradcheck import check_layer, numeric_gradient, relative_error
from nncli.engine.layers.recurrent.bidirectional import flip, flip_order
from nncli.engine.network import Sequential
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError, SpecError
from nncli.training.loop import predict

TOL = 1e-6
F64 = get_backend("cpu", "float64")
KINDS = {"rnn": {}, "rnn-relu": {"activation": "relu"}, "lstm": {}, "gru": {}}
# lengths 4 (full), 2, 1 and 3 of T = 4; padding at the end of each sequence
MASK = np.arange(4)[None, :] < np.array([4, 2, 1, 3])[:, None]


def make(kind, units=3, in_shape=(4, 3), seed=0, bidirectional=True, **settings):
    """A float64 layer with every parameter drawn at random (biases too)."""
    layer = LAYERS.create(
        kind.split("-")[0], {"units": units, "bidirectional": bidirectional, **KINDS[kind],
                             **settings}
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    layer.build(in_shape, F64, rng)
    for p in layer.params.values():
        p[...] = rng.normal(scale=0.5, size=p.shape)
    return layer


def one_way(layer, suffix, return_sequences):
    """A one-directional layer of the same kind holding one direction's weights."""
    cfg = {k: v for k, v in layer.config().items() if k not in ("type", "bidirectional")}
    single = LAYERS.create(layer.type_name, {**cfg, "return_sequences": return_sequences})
    single.build(layer.in_shape, F64, np.random.default_rng(0))
    for name in single.params:
        single.params[name][...] = layer.params[name + suffix]
    return single


# -- the flip ----------------------------------------------------------------------------------
def test_flip_reverses_the_real_steps_and_leaves_padding_in_place():
    order = flip_order(np, MASK, 4)
    assert order.tolist() == [[3, 2, 1, 0], [1, 0, 2, 3], [0, 1, 2, 3], [2, 1, 0, 3]]
    holes = np.array([[True, False, True, True], [False, True, True, False]])  # any mask
    assert flip_order(np, holes, 4).tolist() == [[3, 1, 2, 0], [0, 2, 1, 3]]
    x = np.arange(2 * 4 * 2).reshape(2, 4, 2)
    for mask in (holes, None):
        twice = flip(np, flip(np, x, flip_order(np, mask, 4)), flip_order(np, mask, 4))
        np.testing.assert_array_equal(twice, x)  # its own inverse
    np.testing.assert_array_equal(flip(np, x, None), x[:, ::-1])


# -- forward -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_both_directions_side_by_side(kind, return_sequences):
    """[forward(x), flip(reverse(flip(x)))]: the reverse half is a one-way layer with the
    ``_reverse`` weights run on the reversed sequence."""
    layer = make(kind, units=4, in_shape=(5, 3), return_sequences=return_sequences)
    x = np.random.default_rng(1).normal(size=(3, 5, 3))
    forward = one_way(layer, "", return_sequences).forward(x)
    backward = one_way(layer, "_reverse", return_sequences).forward(x[:, ::-1].copy())
    if return_sequences:
        backward = backward[:, ::-1]
    y = layer.forward(x)
    assert y.shape == ((3, 5, 8) if return_sequences else (3, 8))
    np.testing.assert_allclose(y, np.concatenate([forward, backward], -1), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_padded_sequences_equal_each_sequence_alone(kind, return_sequences):
    """The reverse direction starts at a sequence's last real step: a padded sequence gives
    what it gives alone, and zeros at its padded steps."""
    lengths = [5, 3, 1]
    x = np.random.default_rng(2).normal(size=(3, 5, 3)) * 3  # the padding must not matter
    layer = make(kind, units=4, in_shape=(5, 3), return_sequences=return_sequences)
    layer.mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    together = layer.forward(x)
    layer.mask = None
    for i, length in enumerate(lengths):
        alone = layer.forward(x[i : i + 1, :length])[0]
        got = together[i, :length] if return_sequences else together[i]
        np.testing.assert_allclose(got, alone, rtol=1e-12, atol=1e-12)
        if return_sequences:
            assert np.all(together[i, length:] == 0)


# -- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_gradients(kind, return_sequences, masked):
    layer = make(kind, return_sequences=return_sequences)
    errors = check_layer(layer, (4, 3), batch=4, seed=3, mask=MASK if masked else None)
    assert {"x", "weight_ih_reverse", "weight_hh_reverse"} <= set(errors) == {"x", *layer.params}
    assert max(errors.values()) < TOL, errors


def test_gradients_through_a_stack_with_flat_parameters():
    """Two bidirectional layers in a network (parameters and gradients moved into flat buffers,
    the first layer skipping dL/dx): every parameter's gradient is the numerical one."""
    net = Sequential(
        [{"type": "gru", "units": 2, "bidirectional": True, "return_sequences": True},
         {"type": "lstm", "units": 2, "bidirectional": True}, {"type": "dense", "units": 1}],
        (4, 3), backend=F64, seed=1,
    )  # fmt: skip
    rng = np.random.default_rng(5)
    x, r = rng.normal(size=(4, 4, 3)), rng.normal(size=(4, 1))

    def loss():
        return float((net.forward(x, training=True, mask=MASK) * r).sum())

    loss()
    net.backward(r)
    analytic = {k: g.copy() for k, g in net.named_gradients().items()}
    assert "0.gru.bias_hh_reverse" in analytic and "1.lstm.bias_reverse" in analytic
    for name, p in net.named_parameters().items():
        assert relative_error(analytic[name], numeric_gradient(loss, p)) < TOL, name


def test_padding_gets_no_gradient():
    """A padded batch's gradients are those of its sequences run one by one, summed."""
    lengths = [4, 2, 3]
    rng = np.random.default_rng(3)
    x, dy = rng.normal(size=(3, 4, 3)), rng.normal(size=(3, 4, 6))
    layer = make("lstm", return_sequences=True)
    layer.mask = np.arange(4)[None, :] < np.array(lengths)[:, None]
    layer.forward(x)
    dx = layer.backward(dy)
    batch = {k: g.copy() for k, g in layer.grads.items()}
    summed = {k: np.zeros_like(g) for k, g in batch.items()}
    layer.mask = None
    for i, length in enumerate(lengths):
        layer.forward(x[i : i + 1, :length])
        np.testing.assert_allclose(dx[i, :length], layer.backward(dy[i : i + 1, :length])[0])
        assert np.all(dx[i, length:] == 0)
        for k, g in layer.grads.items():
            summed[k] += g
    for k in batch:
        np.testing.assert_allclose(batch[k], summed[k], rtol=1e-10, atol=1e-12)


# -- parameters, settings and config -----------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "names"),
    [("rnn", ["weight_ih", "weight_hh", "bias"]), ("lstm", ["weight_ih", "weight_hh", "bias"]),
     ("gru", ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])],
)  # fmt: skip
def test_reverse_weights_are_named_as_pytorch_and_count_twice(kind, names):
    one = LAYERS.create(kind, {"units": 5})
    both = LAYERS.create(kind, {"units": 5, "bidirectional": True})
    for layer in (one, both):
        layer.build((7, 3), F64, np.random.default_rng(4))
    assert list(both.params) == [*names, *(n + "_reverse" for n in names)]
    assert both.parameter_count() == 2 * one.parameter_count()
    assert both.out_shape == (10,)
    for name in names:  # the forward direction draws what a one-way layer draws
        np.testing.assert_array_equal(both.params[name], one.params[name])
        assert both.params[name + "_reverse"].shape == one.params[name].shape
    assert not np.array_equal(both.params["weight_ih"], both.params["weight_ih_reverse"])


def test_config_rebuilds_the_layer_and_leaves_out_false():
    layer = LAYERS.create("rnn", {"units": 3, "bidirectional": True, "return_sequences": True})
    cfg = layer.config()
    assert cfg["bidirectional"] is True
    assert "bidirectional" not in LAYERS.create("rnn", {"units": 3}).config()
    again = LAYERS.create(cfg.pop("type"), cfg)
    assert again.config() == layer.config()


def test_bad_setting_names_the_field():
    with pytest.raises(SpecError) as info:
        LAYERS.create("gru", {"units": 3, "bidirectional": "yes"})
    assert info.value.field == "bidirectional"


def test_mask_of_wrong_shape():
    layer = make("gru")
    layer.index = 2
    layer.mask = np.ones((2, 4), dtype=bool)
    with pytest.raises(ShapeError, match=r"^layers\[2\] \(gru\) expects a padding mask of shape"):
        layer.forward(np.zeros((3, 4, 3)))


def test_float32_stays_float32():
    f32 = get_backend("cpu", "float32")
    layer = LAYERS.create("gru", {"units": 4, "return_sequences": True, "bidirectional": True})
    layer.build((3, 2), f32, np.random.default_rng(0))
    layer.mask = MASK[:2, :3]
    y = layer.forward(f32.asarray(np.ones((2, 3, 2))))
    dx = layer.backward(f32.asarray(np.ones((2, 3, 8))))
    assert y.dtype == dx.dtype == np.float32 and y.shape == (2, 3, 8)
    assert all(g.dtype == np.float32 for g in layer.grads.values())


# -- PyTorch -----------------------------------------------------------------------------------
def torch_twin(torch, layer):
    """nn.RNN/LSTM/GRU(bidirectional=True, batch_first=True) holding the layer's weights."""
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[layer.type_name]
    extra = {"nonlinearity": layer.cell_activation.name} if layer.type_name == "rnn" else {}
    net = cls(layer.in_shape[1], layer.units, batch_first=True, bidirectional=True, **extra)
    net = net.double()
    p = {k: torch.tensor(v) for k, v in layer.params.items()}
    with torch.no_grad():
        for end in ("", "_reverse"):
            getattr(net, f"weight_ih_l0{end}").copy_(p["weight_ih" + end])
            getattr(net, f"weight_hh_l0{end}").copy_(p["weight_hh" + end])
            split = layer.type_name == "gru"
            getattr(net, f"bias_ih_l0{end}").copy_(p[("bias_ih" if split else "bias") + end])
            hidden = p["bias_hh" + end] if split else torch.zeros_like(p["bias" + end])
            getattr(net, f"bias_hh_l0{end}").copy_(hidden)
    return net


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("masked", [False, True], ids=["full", "packed"])
def test_matches_torch(kind, masked):
    """Outputs (N, T, 2H) and h_n (both directions' last states) as PyTorch gives them; with a
    mask, as PyTorch gives them for packed sequences."""
    torch = torch_reference()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    seq = make(kind, units=5, in_shape=(6, 3), return_sequences=True)
    last = make(kind, units=5, in_shape=(6, 3))
    net = torch_twin(torch, seq)
    x = np.random.default_rng(0).normal(size=(4, 6, 3))
    lengths = [6, 2, 4, 1] if masked else [6] * 4
    seq.mask = last.mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    packed = pack_padded_sequence(torch.tensor(x), lengths, batch_first=True, enforce_sorted=False)
    out, h_n = net(packed)
    out = pad_packed_sequence(out, batch_first=True, total_length=6)[0].detach().numpy()
    h_n = (h_n[0] if kind == "lstm" else h_n).detach().numpy()  # (2, N, H)
    np.testing.assert_allclose(seq.forward(x), out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(last.forward(x), np.concatenate(h_n, -1), rtol=1e-10, atol=1e-12)
    assert last.forward(x).shape == (4, 10)


# -- from a spec: inspect, checkpoints, resume -------------------------------------------------
WALKS = """\
version: 1
seed: 0
data: {kind: sequences, path: walks.csv, id: walk, order: t, features: [value],
       target: drift, target_per: sequence}
model:
  layers:
    - {type: gru, units: 4, bidirectional: true, return_sequences: true}
    - {type: lstm, units: 3, bidirectional: true}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 2, batch_size: 32}
output: out/model.h5
"""


def trained(folder: Path, *extra: object) -> Path:
    if not (folder / "walks.csv").exists():
        shutil.copy(DATASETS / "walks.csv", folder / "walks.csv")
        (folder / "spec.yaml").write_text(WALKS)
    result = invoke("train", folder / "spec.yaml", "--quiet", *extra)
    assert result.exit_code == 0, result.stderr
    return folder / "out" / "model.h5"


def test_a_spec_trains_inspects_saves_and_reloads(tmp_path):
    path = trained(tmp_path)
    result = invoke("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["layers"]
    # one direction: gru 3 (4 * 1 + 4 * 4 + 2 * 4) = 84, lstm 4 (3 * 8 + 3 * 3 + 3) = 144
    assert [r["params"] for r in rows[:2]] == [2 * 84, 2 * 144]
    assert rows[0]["output_shape"][-1] == 8 and rows[1]["output_shape"] == ["N", 6]
    with h5py.File(path, "r") as f:
        assert "bias_hh_reverse" in f["model/0.gru"] and "bias_reverse" in f["model/1.lstm"]
    model = model_io.load(path)
    assert model.net.layers[1].config()["bidirectional"] is True
    x = np.random.default_rng(0).normal(size=(3, 9, 1)).astype(np.float32)
    mask = np.arange(9)[None, :] < np.array([9, 5, 2])[:, None]
    first = predict(model.net, x, mask=mask)
    np.testing.assert_array_equal(first, predict(model_io.load(path).net, x, mask=mask))
    changed = x.copy()
    changed[~mask] = 99.0  # padded steps reach neither direction
    assert_network_close(predict(model.net, changed, mask=mask), first, model.net, x, 9, mask)


@pytest.mark.slow
def test_resume_continues_both_directions_exactly(tmp_path):
    a, b, c = (tmp_path / name / "m.h5" for name in "abc")
    trained(tmp_path, "--epochs", "3", "--output", a)
    trained(tmp_path, "--epochs", "1", "--output", b)
    trained(tmp_path, "--epochs", "3", "--resume", b, "--output", c)
    straight, resumed = model_io.load(a).net.get_weights(), model_io.load(c).net.get_weights()
    assert "1.lstm.weight_hh_reverse" in straight and straight.keys() == resumed.keys()
    for k in straight:
        np.testing.assert_array_equal(straight[k], resumed[k])
