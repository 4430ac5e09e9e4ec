"""conv2d: the course text's example, shapes and sizes, gradients, errors, dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from nncli.backend import get_backend, gpu_available, to_host
from nncli.engine.gradcheck import check_layer
from nncli.engine.layers.conv2d import Conv2D
from nncli.engine.layers.pool2d import MaxPool2D
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError, SpecError

F64 = get_backend("cpu", "float64")
IMAGE = np.array(
    [[1, 1, 2, 1, 1], [3, 1, 4, 1, 1], [1, 3, 1, 2, 2], [1, 2, 1, 1, 1], [1, 1, 2, 1, 1]], float
)
FILTER = np.array([[1, -2, 0], [1, 0, 1], [-1, 1, 0]], float)


def built(layer, in_shape, backend=F64, seed=0):
    layer.build(in_shape, backend, np.random.default_rng(seed))
    return layer


def naive_conv(x, weight, bias, strides, pads):
    """Direct loops over samples, filters and output pixels: the definition, slowly."""
    (top, bottom), (left, right) = pads
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, _, h, w = xpad.shape
    filters, _, kh, kw = weight.shape
    sh, sw = strides
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, filters, oh, ow))
    for a in range(n):
        for f in range(filters):
            for p in range(oh):
                for q in range(ow):
                    window = xpad[a, :, p * sh : p * sh + kh, q * sw : q * sw + kw]
                    out[a, f, p, q] = np.sum(window * weight[f]) + bias[f]
    return out


# -- the course text's example ---------------------------------------------------------------
def test_course_example_filter_output():
    layer = built(Conv2D(1, kernel_size=3), (1, 5, 5))
    layer.params["weight"][...] = FILTER
    z = layer.forward(IMAGE[None, None])
    np.testing.assert_array_equal(z[0, 0], [[8, -3, 6], [4, -3, 5], [-3, 5, -2]])


def test_course_example_relu_then_max_pool():
    conv = built(Conv2D(1, kernel_size=3, activation="relu"), (1, 5, 5))
    conv.params["weight"][...] = FILTER
    y = conv.forward(IMAGE[None, None])
    np.testing.assert_array_equal(y[0, 0], [[8, 0, 6], [4, 0, 5], [0, 5, 0]])
    pool = built(MaxPool2D(pool_size=2, strides=1), conv.out_shape)
    np.testing.assert_array_equal(pool.forward(y)[0, 0], [[8, 6], [5, 5]])


# -- parameters and shapes ---------------------------------------------------------------------
@pytest.mark.parametrize("f, d_prev, d", [(3, 1, 16), (5, 3, 8), (1, 16, 32)])
def test_parameter_count_matches_course_formula(f, d_prev, d):
    layer = built(Conv2D(d, kernel_size=f), (d_prev, 9, 9))
    assert layer.parameter_count() == (f**2 * d_prev + 1) * d
    assert layer.params["weight"].shape == (d, d_prev, f, f)
    assert layer.params["bias"].shape == (d,)


def test_initialiser_fans_and_zero_bias():
    layer = built(Conv2D(64, kernel_size=3, activation="relu"), (32, 8, 8))
    # He normal for relu: std = sqrt(2 / fan_in), fan_in = C*kh*kw = 288
    assert layer.params["weight"].std() == pytest.approx(np.sqrt(2 / 288), rel=0.05)
    assert not layer.params["bias"].any()


@pytest.mark.parametrize(
    "settings, in_shape, out_shape",
    [
        ({"kernel_size": 3}, (1, 28, 28), (4, 26, 26)),
        ({"kernel_size": 3, "padding": "same"}, (1, 28, 28), (4, 28, 28)),
        ({"kernel_size": 3, "strides": 2, "padding": "same"}, (1, 7, 8), (4, 4, 4)),
        ({"kernel_size": [3, 5], "padding": [1, 0]}, (2, 6, 9), (4, 6, 5)),
        ({"kernel_size": 3, "strides": [2, 3]}, (2, 9, 9), (4, 4, 3)),
    ],
)
def test_output_shape(settings, in_shape, out_shape):
    layer = built(Conv2D(4, **settings), in_shape)
    assert layer.out_shape == out_shape
    x = np.random.default_rng(1).normal(size=(2, *in_shape))
    assert layer.forward(x).shape == (2, *out_shape)


@pytest.mark.parametrize(
    "settings, in_shape",
    [
        ({"filters": 3, "kernel_size": 3}, (2, 6, 7)),
        ({"filters": 2, "kernel_size": [2, 3], "strides": [2, 1], "padding": "same"}, (3, 7, 6)),
        ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": [2, 1]}, (1, 8, 9)),
    ],
)
def test_forward_matches_naive_loops(settings, in_shape):
    rng = np.random.default_rng(7)
    layer = built(Conv2D(**settings), in_shape)
    layer.params["bias"][...] = rng.normal(size=layer.params["bias"].shape)
    x = rng.normal(size=(3, *in_shape))
    expected = naive_conv(
        x, layer.params["weight"], layer.params["bias"], layer.strides, layer.windows.pads
    )
    y = layer.forward(x)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, in_shape",
    [
        ({"filters": 2, "kernel_size": 3}, (1, 5, 5)),
        ({"filters": 2, "kernel_size": 3, "strides": 2}, (3, 7, 7)),
        ({"filters": 2, "kernel_size": 3, "strides": 2}, (1, 6, 6)),  # a row/column left unused
        ({"filters": 2, "kernel_size": 3, "padding": "same", "activation": "tanh"}, (3, 5, 6)),
        ({"filters": 2, "kernel_size": 2, "padding": "same"}, (1, 5, 5)),  # uneven: 0+1
        ({"filters": 2, "kernel_size": [2, 3], "strides": 2, "padding": "same"}, (2, 7, 6)),
        ({"filters": 2, "kernel_size": [2, 3], "padding": 1}, (3, 4, 5)),
        ({"filters": 2, "kernel_size": 3, "strides": [2, 1], "padding": [1, 2]}, (1, 6, 5)),
        ({"filters": 3, "kernel_size": 1}, (3, 4, 4)),
        ({"filters": 2, "kernel_size": 3, "use_bias": False, "activation": "relu"}, (3, 6, 6)),
        (
            {"filters": 2, "kernel_size": 3, "activation": "sigmoid", "bias_initializer": "normal"},
            (1, 4, 4),
        ),
    ],
)
def test_gradients_match_finite_differences(settings, in_shape):
    layer = Conv2D(**settings)
    errors = check_layer(layer, in_shape, batch=2)
    assert set(errors) == {"x", "weight"} | ({"bias"} if layer.use_bias else set())
    assert max(errors.values()) < 1e-6, errors


def test_unused_column_gets_zero_gradient():
    layer = built(Conv2D(1, kernel_size=3, strides=2), (1, 6, 6))
    x = np.random.default_rng(0).normal(size=(1, 1, 6, 6))
    layer.forward(x)
    dx = layer.backward(np.ones((1, *layer.out_shape)))
    assert not dx[..., 5].any() and not dx[..., 5, :].any()
    assert dx[..., :5, :5].all()


def test_backward_shapes_with_padding_are_the_input_shapes():
    layer = built(Conv2D(3, kernel_size=3, strides=2, padding="same"), (2, 7, 6))
    x = np.random.default_rng(0).normal(size=(4, 2, 7, 6))
    y = layer.forward(x)
    assert layer.backward(np.ones_like(y)).shape == x.shape
    assert layer.grads["weight"].shape == layer.params["weight"].shape


# -- size notes, warnings, errors --------------------------------------------------------------
def test_size_notes_show_the_formula_with_numbers():
    layer = built(Conv2D(4, kernel_size=3, padding=1), (1, 28, 28))
    assert layer.size_notes == [
        "H: O = 1 + (28 + 2*1 - 3)/1 = 28",
        "W: O = 1 + (28 + 2*1 - 3)/1 = 28",
    ]
    assert layer.warnings == []


def test_uneven_same_padding_shows_the_split():
    layer = built(Conv2D(1, kernel_size=2, padding="same"), (1, 7, 7))
    assert layer.size_notes[0] == "H: O = 1 + (7 + 0+1 - 2)/1 = 7"
    assert layer.windows.pads == ((0, 1), (0, 1))  # the extra row / column at the bottom / right
    assert layer.warnings == []


def test_stride_leaving_a_column_unused_warns():
    layer = Conv2D(1, kernel_size=3, strides=2)
    layer.index = 3
    built(layer, (1, 7, 6))
    assert layer.size_notes == [
        "H: O = 1 + (7 + 2*0 - 3)/2 = 3",
        "W: O = 1 + (6 + 2*0 - 3)/2 = 2.5, floored to 2",
    ]
    assert len(layer.warnings) == 1
    warning = layer.warnings[0]
    assert warning.startswith("layers[3] (conv2d): W:")
    assert "last 1 column " in warning
    assert "padding 0+1 (as padding: same gives) would fit exactly" in warning


def test_unused_rows_warning_suggests_a_symmetric_padding_when_one_fits():
    layer = built(Conv2D(1, kernel_size=3, strides=3), (1, 8, 9))
    assert layer.warnings == [
        "layer (conv2d): H: 8 + 2*0 - 3 = 5 is not a multiple of stride 3, so the last 2 rows of "
        "the padded input are never used; padding 2 would fit exactly"
    ]
    assert built(Conv2D(1, kernel_size=3, strides=3, padding=[2, 0]), (1, 8, 9)).warnings == []


def test_empty_output_raises_spec_error_naming_layer_and_input():
    layer = Conv2D(1, kernel_size=5)
    layer.index = 0
    with pytest.raises(SpecError) as err:
        built(layer, (2, 3, 7))
    assert err.value.field == "kernel_size"
    assert "layers[0] (conv2d)" in str(err.value)
    assert "(2, 3, 7)" in str(err.value)


def test_non_image_input_and_wrong_batch_shape_raise_shape_error():
    with pytest.raises(ShapeError, match=r"expects images \(N, C, H, W\), got \(N, 64\)"):
        built(Conv2D(1), (64,))
    layer = built(Conv2D(1), (1, 5, 5))
    with pytest.raises(ShapeError, match=r"expects \(N, 1, 5, 5\), got \(2, 3, 5, 5\)"):
        layer.forward(np.zeros((2, 3, 5, 5)))


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"filters": -1}, "filters"),
        ({"filters": 2.5}, "filters"),
        ({"filters": 4, "kernel_size": "x"}, "kernel_size"),
        ({"filters": 4, "kernel_size": [3, 0]}, "kernel_size"),
        ({"filters": 4, "strides": 0}, "strides"),
        ({"filters": 4, "padding": -1}, "padding"),
        ({"filters": 4, "padding": [1, 2, 3]}, "padding"),
        ({"filters": 4, "use_bias": "yes"}, "use_bias"),
        ({"filters": 4, "activation": "rleu"}, "activation"),
    ],
)
def test_bad_hyperparameters_raise_spec_error_with_field(settings, field):
    with pytest.raises(SpecError) as err:
        Conv2D(**settings)
    assert err.value.field == field


def test_bad_padding_name_gets_did_you_mean():
    with pytest.raises(SpecError, match=r"did you mean 'same'\?") as err:
        Conv2D(4, padding="sane")
    assert err.value.field == "padding"


def test_registered_and_config_rebuilds_the_layer():
    assert LAYERS.get("conv2d") is Conv2D
    layer = LAYERS.create(
        "conv2d",
        {
            "filters": 8,
            "kernel_size": [3, 5],
            "strides": 2,
            "padding": [1, 2],
            "activation": "relu",
            "use_bias": False,
        },
    )
    cfg = layer.config()
    assert cfg == {
        "type": "conv2d",
        "activation": "relu",
        "filters": 8,
        "kernel_size": [3, 5],
        "strides": 2,
        "padding": [1, 2],
        "use_bias": False,
    }
    settings = dict(cfg)
    assert LAYERS.create(settings.pop("type"), settings).config() == cfg


# -- dtypes and devices ------------------------------------------------------------------------
def test_float32_stays_float32():
    layer = built(
        Conv2D(4, kernel_size=3, padding="same", activation="relu"),
        (2, 6, 6),
        backend=get_backend("cpu", "float32"),
    )
    x = np.random.default_rng(0).normal(size=(3, 2, 6, 6)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_gpu_matches_cpu():
    gpu = get_backend("gpu", "float64")
    settings = {
        "filters": 3,
        "kernel_size": [2, 3],
        "strides": 2,
        "padding": "same",
        "activation": "relu",
    }
    cpu_layer = built(Conv2D(**settings), (2, 7, 6))
    gpu_layer = built(Conv2D(**settings), (2, 7, 6), backend=gpu)
    x = np.random.default_rng(0).normal(size=(4, 2, 7, 6))
    y = cpu_layer.forward(x)
    np.testing.assert_allclose(to_host(gpu_layer.forward(gpu.asarray(x))), y, atol=1e-12)
    dx = cpu_layer.backward(np.ones_like(y))
    gdx = gpu_layer.backward(gpu.xp.ones(y.shape))
    np.testing.assert_allclose(to_host(gdx), dx, atol=1e-12)
    for name, grad in cpu_layer.grads.items():
        np.testing.assert_allclose(to_host(gpu_layer.grads[name]), grad, atol=1e-12)
