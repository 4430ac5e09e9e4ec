"""Recurrent layers: gradients through time, masks, reference formulas, PyTorch layouts."""

import warnings

import numpy as np
import pytest
from helpers import torch_reference

from nncli.backend import get_backend
from nncli.engine.gradcheck import check_layer, numeric_gradient, relative_error
from nncli.engine.layers.recurrent.gru import GRU
from nncli.engine.layers.recurrent.lstm import LSTM
from nncli.engine.layers.recurrent.rnn import SimpleRNN
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError, SpecError

TOL = 1e-6
F64 = get_backend("cpu", "float64")
KINDS = {
    "rnn": (SimpleRNN, {}),
    "rnn-relu": (SimpleRNN, {"activation": "relu"}),
    "lstm": (LSTM, {}),
    "gru": (GRU, {}),
}
# lengths 4 (full), 2, 1 and 3 of T = 4; padding at the end of each sequence
MASK = np.arange(4)[None, :] < np.array([4, 2, 1, 3])[:, None]


def make(kind, units=3, in_shape=(4, 3), seed=0, **settings):
    """A float64 layer with every parameter (biases too) drawn at random, so that a bias used
    in the wrong place changes the output."""
    cls, extra = KINDS[kind]
    layer = cls(units, **{**extra, **settings})
    rng = np.random.default_rng(seed)
    layer.build(in_shape, F64, rng)
    for p in layer.params.values():
        p[...] = rng.normal(scale=0.5, size=p.shape)
    return layer


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# -- plain-numpy reference steps, written from the formulas in ARCHITECTURE.md ----------------
def reference(layer, x):
    """h for every step, (N, T, H), from the textbook formulas and PyTorch's gate orders."""
    p, hidden = layer.params, layer.units
    n, steps, _ = x.shape
    h, c, out = np.zeros((n, hidden)), np.zeros((n, hidden)), []
    for t in range(steps):
        if isinstance(layer, SimpleRNN):
            z = x[:, t] @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias"]
            h = np.tanh(z) if layer.cell_activation.name == "tanh" else np.maximum(z, 0)
        elif isinstance(layer, LSTM):
            z = x[:, t] @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias"]
            i, f, g, o = np.split(z, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        else:
            wi_r, wi_z, wi_n = np.split(p["weight_ih"], 3)
            wh_r, wh_z, wh_n = np.split(p["weight_hh"], 3)
            bi_r, bi_z, bi_n = np.split(p["bias_ih"], 3)
            bh_r, bh_z, bh_n = np.split(p["bias_hh"], 3)
            xt = x[:, t]
            r = sigmoid(xt @ wi_r.T + bi_r + h @ wh_r.T + bh_r)
            z = sigmoid(xt @ wi_z.T + bi_z + h @ wh_z.T + bh_z)
            new = np.tanh(xt @ wi_n.T + bi_n + r * (h @ wh_n.T + bh_n))
            h = (1 - z) * new + z * h
        out.append(h)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("steps", [1, 3])
def test_forward_matches_reference_formulas(kind, steps):
    layer = make(kind, units=4, in_shape=(steps, 3), return_sequences=True)
    x = np.random.default_rng(1).normal(size=(5, steps, 3))
    expected = reference(layer, x)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    last = make(kind, units=4, in_shape=(steps, 3))
    np.testing.assert_allclose(last.forward(x), expected[:, -1], rtol=1e-12, atol=1e-12)


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_gradients(kind, return_sequences, masked):
    layer = make(kind, return_sequences=return_sequences)
    errors = check_layer(layer, (4, 3), batch=4, seed=3, mask=MASK if masked else None)
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize(("first", "second"), [("lstm", "gru"), ("gru", "rnn"), ("rnn", "lstm")])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_stacked_gradients(first, second, masked):
    """Two layers chained (the first returns sequences): every parameter and the input."""
    bottom = make(first, units=3, in_shape=(4, 2), seed=1, return_sequences=True)
    top = make(second, units=2, in_shape=(4, 3), seed=2, return_sequences=masked)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 4, 2))
    mask = MASK if masked else None
    bottom.mask = top.mask = mask
    r = rng.normal(size=(4, *top.out_shape))

    def loss():
        return float((top.forward(bottom.forward(x)) * r).sum())

    loss()
    dx = bottom.backward(top.backward(r))
    analytic = {
        f"{i}.{name}": g.copy()
        for i, layer in enumerate((bottom, top))
        for name, g in layer.grads.items()
    }
    assert relative_error(dx, numeric_gradient(loss, x)) < TOL
    for i, layer in enumerate((bottom, top)):
        for name, p in layer.params.items():
            assert relative_error(analytic[f"{i}.{name}"], numeric_gradient(loss, p)) < TOL, name


# -- masks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_padding_changes_nothing_at_real_steps(kind):
    lengths = [5, 3, 1]
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 3)) * 3  # whatever sits in the padding must not matter
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    seq = make(kind, units=4, in_shape=(5, 3), return_sequences=True)
    last = make(kind, units=4, in_shape=(5, 3), return_sequences=False)
    seq.mask = last.mask = mask
    y_seq, y_last = seq.forward(x), last.forward(x)
    for i, length in enumerate(lengths):
        seq.mask = last.mask = None
        alone = seq.forward(x[i : i + 1, :length])
        np.testing.assert_allclose(y_seq[i, :length], alone[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(y_last[i], last.forward(x[i : i + 1, :length])[0], rtol=1e-12)
        assert np.all(y_seq[i, length:] == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_gets_no_gradient(kind):
    """The gradients of a padded batch are those of its sequences run one by one, summed."""
    lengths = [4, 2, 3]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 3))
    mask = np.arange(4)[None, :] < np.array(lengths)[:, None]
    layer = make(kind, units=3, in_shape=(4, 3))
    dy = rng.normal(size=(3, 3))
    layer.mask = mask
    layer.forward(x)
    dx = layer.backward(dy)
    batch_grads = {k: g.copy() for k, g in layer.grads.items()}
    summed = {k: np.zeros_like(g) for k, g in batch_grads.items()}
    layer.mask = None
    for i, length in enumerate(lengths):
        layer.forward(x[i : i + 1, :length])
        dx_i = layer.backward(dy[i : i + 1])
        np.testing.assert_allclose(dx[i, :length], dx_i[0], rtol=1e-10, atol=1e-12)
        assert np.all(dx[i, length:] == 0)
        for k, g in layer.grads.items():
            summed[k] += g
    for k in batch_grads:
        np.testing.assert_allclose(batch_grads[k], summed[k], rtol=1e-10, atol=1e-12)


def test_all_true_mask_equals_no_mask():
    layer = make("lstm", return_sequences=True)
    x = np.random.default_rng(0).normal(size=(3, 4, 3))
    y = layer.forward(x)
    layer.mask = np.ones((3, 4), dtype=bool)
    np.testing.assert_array_equal(layer.forward(x), y)


def test_mask_of_wrong_shape():
    layer = make("gru")
    layer.mask = np.ones((2, 4), dtype=bool)
    with pytest.raises(ShapeError, match=r"padding mask of shape \(3, 4\).*got \(2, 4\)"):
        layer.forward(np.zeros((3, 4, 3)))


# -- state, shapes and time length -----------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_state_starts_at_zero_for_every_batch(kind):
    layer = make(kind)
    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(size=(2, 3, 4, 3))
    first = layer.forward(x2)
    layer.forward(x1)
    layer.backward(np.ones((3, 3)))
    np.testing.assert_array_equal(layer.forward(x2), first)
    assert np.any(first != layer.forward(x1))


def test_time_length_may_change_between_batches():
    layer = make("lstm", return_sequences=True)  # built for T = 4
    assert layer.out_shape == (4, 3)
    x = np.random.default_rng(0).normal(size=(2, 7, 3))
    y = layer.forward(x)
    assert y.shape == (2, 7, 3)
    assert layer.backward(np.ones_like(y)).shape == x.shape


def test_input_shape_errors():
    layer = make("lstm", units=8, in_shape=(50, 16))
    layer.index = 0
    with pytest.raises(
        ShapeError, match=r"^layers\[0\] \(lstm\) expects \(N, T, 16\), got \(32, 50, 12\)$"
    ):
        layer.forward(np.zeros((32, 50, 12)))
    with pytest.raises(ShapeError, match=r"expects \(N, T, 16\), got \(32, 16\)"):
        layer.forward(np.zeros((32, 16)))
    with pytest.raises(ShapeError, match=r"expects sequences \(N, T, F\), got \(N, 784\)"):
        LSTM(4).build((784,), F64, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kind", "shapes", "count"),
    [
        ("rnn", {"weight_ih": (5, 3), "weight_hh": (5, 5), "bias": (5,)}, 5 * 3 + 5 * 5 + 5),
        (
            "lstm",
            {"weight_ih": (20, 3), "weight_hh": (20, 5), "bias": (20,)},
            4 * (5 * 3 + 5 * 5 + 5),
        ),
        (
            "gru",
            {"weight_ih": (15, 3), "weight_hh": (15, 5), "bias_ih": (15,), "bias_hh": (15,)},
            3 * (5 * 3 + 5 * 5 + 2 * 5),
        ),
    ],
)
def test_parameter_shapes_and_counts(kind, shapes, count):
    layer = make(kind, units=5, in_shape=(7, 3))
    assert {k: v.shape for k, v in layer.params.items()} == shapes
    assert {k: v.shape for k, v in layer.grads.items()} == shapes
    assert layer.parameter_count() == count
    assert layer.out_shape == (5,)
    assert make(kind, units=5, in_shape=(7, 3), return_sequences=True).out_shape == (7, 5)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_default_initialisation(kind):
    layer = LAYERS.create(kind, {"units": 6})
    layer.build((5, 4), F64, np.random.default_rng(0))
    w_hh = layer.params["weight_hh"]
    for block in np.split(w_hh, w_hh.shape[0] // 6):  # each gate's block is orthogonal
        np.testing.assert_allclose(block @ block.T, np.eye(6), atol=1e-12)
    limit = np.sqrt(6 / (4 + w_hh.shape[0]))  # Glorot uniform for the input weights
    assert np.abs(layer.params["weight_ih"]).max() <= limit
    assert np.abs(layer.params["weight_ih"]).max() > limit / 2
    for name, p in layer.params.items():
        if name.startswith("bias"):
            assert np.all(p == 0)  # the forget gate's bias too, as in PyTorch


def test_same_seed_same_weights():
    a, b = LSTM(4), LSTM(4)
    a.build((3, 2), F64, np.random.default_rng(9))
    b.build((3, 2), F64, np.random.default_rng(9))
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])


def test_float32_stays_float32():
    f32 = get_backend("cpu", "float32")
    for kind in ("rnn", "lstm", "gru"):
        layer = LAYERS.create(kind, {"units": 4, "return_sequences": True})
        layer.build((3, 2), f32, np.random.default_rng(0))
        y = layer.forward(f32.asarray(np.ones((2, 3, 2))))
        dx = layer.backward(f32.asarray(np.zeros((2, 3, 4))))
        assert y.dtype == dx.dtype == np.float32
        assert all(g.dtype == np.float32 for g in layer.grads.values())


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_saturated_gates_do_not_overflow(kind):
    layer = make(kind)
    x = np.random.default_rng(0).normal(size=(3, 4, 3)) * 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer.forward(x)
        layer.backward(np.ones_like(y))
    assert np.all(np.isfinite(y))


# -- settings --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "settings", "field"),
    [
        ("lstm", {"units": 0}, "units"),
        ("gru", {"units": 2.5}, "units"),
        ("rnn", {"units": 4, "return_sequences": "yes"}, "return_sequences"),
        ("rnn", {"units": 4, "activation": "sigmoid"}, "activation"),
        ("lstm", {"units": 4, "activation": "relu"}, "activation"),  # not a setting of lstm
        ("gru", {"units": 4, "kernel_initializer": "glorot"}, "kernel_initializer"),
        ("gru", {"units": 4, "recurrent_initializer": "nope"}, "recurrent_initializer"),
    ],
)
def test_bad_settings(kind, settings, field):
    with pytest.raises(SpecError) as info:
        LAYERS.create(kind, settings)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kind", "settings"),
    [
        ("rnn", {"units": 3, "activation": "relu", "return_sequences": True}),
        ("lstm", {"units": 3, "kernel_initializer": "he_uniform"}),
        ("gru", {"units": 2, "recurrent_initializer": {"type": "normal", "std": 0.1}}),
    ],
)
def test_config_rebuilds_the_layer(kind, settings):
    layer = LAYERS.create(kind, settings)
    cfg = layer.config()
    assert cfg == {"type": kind, "return_sequences": False, **settings}
    again = LAYERS.create(cfg.pop("type"), cfg)
    assert again.config() == layer.config()
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    for one in (layer, again):
        one.build((3, 4), F64, np.random.default_rng(1))
    np.testing.assert_array_equal(layer.forward(x), again.forward(x))


def test_rnn_config_names_its_cell_activation():
    assert LAYERS.create("rnn", {"units": 2}).config()["activation"] == "tanh"
    assert LAYERS.create("rnn", {"units": 2}).output_activation is None


# -- PyTorch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rnn", "rnn-relu", "lstm", "gru"])
def test_matches_torch(kind):
    torch = torch_reference()
    layer = make(kind, units=5, in_shape=(6, 3), return_sequences=True)
    p = {k: torch.tensor(v) for k, v in layer.params.items()}
    cls = {
        "rnn": torch.nn.RNN,
        "rnn-relu": torch.nn.RNN,
        "lstm": torch.nn.LSTM,
        "gru": torch.nn.GRU,
    }[kind]
    extra = {"nonlinearity": "relu"} if kind == "rnn-relu" else {}
    net = cls(3, 5, batch_first=True, **extra).double()
    with torch.no_grad():
        net.weight_ih_l0.copy_(p["weight_ih"])
        net.weight_hh_l0.copy_(p["weight_hh"])
        net.bias_ih_l0.copy_(p["bias_ih"] if kind == "gru" else p["bias"])
        net.bias_hh_l0.copy_(p["bias_hh"] if kind == "gru" else torch.zeros_like(p["bias"]))
    x = np.random.default_rng(0).normal(size=(4, 6, 3))
    expected = net(torch.tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-10, atol=1e-12)
