"""maxpool2d and avgpool2d: values, tie breaking, padding, gradients, sizes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from nncli.backend import get_backend, gpu_available, to_host
from nncli.engine.gradcheck import check_layer
from nncli.engine.layers.pool2d import AvgPool2D, MaxPool2D
from nncli.engine.registry import LAYERS
from nncli.errors import SpecError

F64 = get_backend("cpu", "float64")


def built(layer, in_shape, backend=F64):
    layer.build(in_shape, backend, np.random.default_rng(0))
    return layer


def naive_pool(x, reduce, size, strides, pads, fill):
    """Direct loops over samples, channels and output pixels."""
    (top, bottom), (left, right) = pads
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    n, c, h, w = xpad.shape
    (kh, kw), (sh, sw) = size, strides
    out = np.zeros((n, c, (h - kh) // sh + 1, (w - kw) // sw + 1))
    for a in range(n):
        for ch in range(c):
            for p in range(out.shape[2]):
                for q in range(out.shape[3]):
                    out[a, ch, p, q] = reduce(
                        xpad[a, ch, p * sh : p * sh + kh, q * sw : q * sw + kw]
                    )
    return out


def test_course_example_max_pool_2x2_stride_1():
    relu_output = np.array([[8, 0, 6], [4, 0, 5], [0, 5, 0]], float)[None, None]
    layer = built(MaxPool2D(pool_size=2, strides=1), (1, 3, 3))
    np.testing.assert_array_equal(layer.forward(relu_output)[0, 0], [[8, 6], [5, 5]])
    assert layer.parameter_count() == 0 and layer.params == {}


@pytest.mark.parametrize(
    "cls, reduce, fill", [(MaxPool2D, np.max, -np.inf), (AvgPool2D, np.mean, 0.0)]
)
@pytest.mark.parametrize(
    "settings, in_shape",
    [
        ({}, (3, 6, 6)),
        ({"pool_size": 3, "strides": 1}, (2, 5, 6)),
        ({"pool_size": 3, "strides": 2, "padding": 1}, (2, 7, 6)),
        ({"pool_size": [2, 3], "strides": [1, 2], "padding": "same"}, (1, 5, 7)),
        ({"pool_size": 2, "padding": "same"}, (2, 5, 5)),
    ],
)
def test_forward_matches_naive_loops(cls, reduce, fill, settings, in_shape):
    layer = built(cls(**settings), in_shape)
    x = np.random.default_rng(3).normal(size=(2, *in_shape)) - 3.0  # negative: padding must lose
    expected = naive_pool(x, reduce, layer.pool_size, layer.strides, layer.windows.pads, fill)
    y = layer.forward(x)
    assert y.shape == expected.shape == (2, *layer.out_shape)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_max_pool_padding_never_wins():
    x = -1.0 - np.arange(9.0).reshape(1, 1, 3, 3)  # all negative: a zero pad would win
    layer = built(MaxPool2D(pool_size=2, strides=2, padding=1), (1, 3, 3))
    np.testing.assert_array_equal(layer.forward(x)[0, 0], [[-1, -2], [-4, -5]])


def test_avg_pool_counts_padding_as_zeros():
    layer = built(AvgPool2D(pool_size=3, strides=1, padding=1), (1, 2, 2))
    # every 3x3 window holds the 4 real ones and 5 padded zeros (count_include_pad=True)
    np.testing.assert_allclose(layer.forward(np.ones((1, 1, 2, 2)))[0, 0], np.full((2, 2), 4 / 9))


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_only():
    layer = built(MaxPool2D(pool_size=2), (1, 2, 4))
    x = np.array([[[[7.0, 7.0, 0.0, 5.0], [7.0, 7.0, 5.0, 1.0]]]])
    y = layer.forward(x)
    np.testing.assert_array_equal(y[0, 0], [[7, 5]])
    dx = layer.backward(np.array([[[[2.0, 3.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[2, 0, 0, 3], [0, 0, 0, 0]])


def test_max_pool_ties_with_overlapping_windows():
    layer = built(MaxPool2D(pool_size=2, strides=1), (1, 2, 3))
    x = np.ones((1, 1, 2, 3))
    layer.forward(x)
    dx = layer.backward(np.array([[[[1.0, 10.0]]]]))
    # each window's first cell (row-major) takes its gradient; nothing else does
    np.testing.assert_array_equal(dx[0, 0], [[1, 10, 0], [0, 0, 0]])


def test_avg_pool_spreads_the_gradient_evenly():
    layer = built(AvgPool2D(pool_size=2, strides=1), (1, 2, 3))
    layer.forward(np.zeros((1, 1, 2, 3)))
    dx = layer.backward(np.array([[[[4.0, 8.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[1, 3, 2], [1, 3, 2]])


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(
    "settings, in_shape",
    [
        ({"pool_size": 2, "strides": 2}, (2, 4, 6)),
        ({"pool_size": 2, "strides": 2}, (1, 5, 5)),  # last row and column unused
        ({"pool_size": 3, "strides": 1}, (2, 5, 5)),
        ({"pool_size": 3, "strides": 1, "padding": 1}, (1, 4, 5)),
        ({"pool_size": [2, 3], "strides": [2, 1], "padding": [1, 1]}, (2, 5, 4)),
        ({"pool_size": 2, "padding": "same"}, (1, 5, 7)),
    ],
)
def test_gradients_match_finite_differences(cls, settings, in_shape):
    errors = check_layer(cls(**settings), in_shape, batch=2)
    assert list(errors) == ["x"]
    assert errors["x"] < 1e-6, errors


def test_size_notes_and_warnings():
    layer = built(MaxPool2D(2), (16, 28, 28))
    assert layer.out_shape == (16, 14, 14)
    assert layer.size_notes == [
        "H: O = 1 + (28 + 2*0 - 2)/2 = 14",
        "W: O = 1 + (28 + 2*0 - 2)/2 = 14",
    ]
    assert layer.warnings == []
    odd = MaxPool2D(2)
    odd.index = 2
    built(odd, (1, 7, 8))
    assert odd.size_notes[0] == "H: O = 1 + (7 + 2*0 - 2)/2 = 3.5, floored to 3"
    assert len(odd.warnings) == 1
    assert odd.warnings[0].startswith("layers[2] (maxpool2d): H:")
    assert "last 1 row " in odd.warnings[0]
    assert built(MaxPool2D(2, padding="same"), (1, 7, 8)).warnings == []


def test_empty_output_raises_spec_error():
    layer = AvgPool2D(3)
    layer.index = 5
    with pytest.raises(SpecError) as err:
        built(layer, (4, 2, 9))
    assert err.value.field == "pool_size"
    assert "layers[5] (avgpool2d)" in str(err.value) and "(4, 2, 9)" in str(err.value)


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": "x"}, "pool_size"),
        ({"strides": [2, -1]}, "strides"),
        ({"padding": "full"}, "padding"),
        ({"padding": 2}, "padding"),  # more than half the pool size: a window of only padding
        ({"pool_size": [2, 4], "padding": [1, 3]}, "padding"),
    ],
)
def test_bad_hyperparameters_raise_spec_error_with_field(settings, field):
    for cls in (MaxPool2D, AvgPool2D):
        with pytest.raises(SpecError) as err:
            cls(**settings)
        assert err.value.field == field


def test_bad_padding_name_gets_did_you_mean():
    with pytest.raises(SpecError, match=r"did you mean 'same'\?"):
        MaxPool2D(padding="sane")


def test_registered_and_config_rebuilds_the_layer():
    assert LAYERS.get("maxpool2d") is MaxPool2D and LAYERS.get("avgpool2d") is AvgPool2D
    assert MaxPool2D(3).config() == {
        "type": "maxpool2d",
        "pool_size": 3,
        "strides": 3,
        "padding": "valid",
    }
    layer = LAYERS.create("avgpool2d", {"pool_size": [2, 3], "strides": 1, "padding": [1, 0]})
    cfg = layer.config()
    assert cfg == {"type": "avgpool2d", "pool_size": [2, 3], "strides": 1, "padding": [1, 0]}
    settings = dict(cfg)
    assert LAYERS.create(settings.pop("type"), settings).config() == cfg


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_float32_stays_float32(cls):
    layer = built(cls(2, padding="same"), (3, 5, 5), backend=get_backend("cpu", "float32"))
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_gpu_matches_cpu(cls):
    gpu = get_backend("gpu", "float64")
    cpu_layer = built(cls(3, strides=2, padding=1), (2, 7, 6))
    gpu_layer = built(cls(3, strides=2, padding=1), (2, 7, 6), backend=gpu)
    x = np.random.default_rng(0).normal(size=(4, 2, 7, 6))
    x[..., :2] = 1.0  # ties
    y = cpu_layer.forward(x)
    np.testing.assert_allclose(to_host(gpu_layer.forward(gpu.asarray(x))), y, atol=1e-12)
    dy = np.random.default_rng(1).normal(size=y.shape)
    np.testing.assert_allclose(
        to_host(gpu_layer.backward(gpu.asarray(dy))), cpu_layer.backward(dy), atol=1e-12
    )
