"""positional: any length up to max_length, a longer one refused naming max_length; PyTorch's
numbers are in test_torch_reference.py."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import invoke, one_error_line
from test_attention import walks_spec

from nncli.backend import get_backend
from nncli.engine.layers.positional import sinusoidal_table
from nncli.engine.network import make_layer
from nncli.errors import ShapeError, SpecError

F64 = get_backend("cpu", "float64")


def built(settings: dict, in_shape: tuple[int, int]):
    layer = make_layer({"type": "positional", **settings}, 3)
    layer.build(in_shape, F64, np.random.default_rng(0))
    return layer


@pytest.mark.parametrize("encoding", ["learned", "sinusoidal"])
def test_shorter_inputs_take_the_first_rows_and_longer_ones_are_refused(encoding):
    layer = built({"encoding": encoding, "max_length": 6}, (4, 3))
    x = np.zeros((2, 6, 3))
    full = layer.forward(x)
    np.testing.assert_array_equal(layer.forward(x[:, :2]), full[:, :2])  # a short prompt
    with pytest.raises(ShapeError, match=r"layers\[3\] \(positional\).*max_length 6.*got 7"):
        layer.forward(np.zeros((2, 7, 3)))
    assert layer.parameter_count() == (18 if encoding == "learned" else 0)


def test_the_sinusoidal_table_alternates_sines_and_cosines_for_odd_widths_too():
    table = sinusoidal_table(50, 5)
    position = np.arange(50)
    np.testing.assert_allclose(table[:, 0], np.sin(position))
    np.testing.assert_allclose(table[:, 1], np.cos(position))
    np.testing.assert_allclose(table[:, 4], np.sin(position / 10000 ** (4 / 5)))
    assert np.abs(table).max() <= 1.0


def test_learned_positions_start_small_and_from_the_seed():
    a, b = built({"max_length": 40}, (8, 16)), built({"max_length": 40}, (8, 16))
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    assert 0.015 < a.params["weight"].std() < 0.025  # N(0, 0.02^2), as torchvision's ViT


def test_a_max_length_below_the_datas_steps_is_one_spec_line(tmp_path):
    spec = walks_spec(
        tmp_path, "[{type: dense, units: 4}, {type: positional, max_length: 10}, global_avgpool,"
        " {type: dense, units: auto, activation: softmax}]",
    )  # fmt: skip
    one_error_line(invoke("validate", spec), 2, "model.layers[1].max_length", "10", "steps")


def test_settings_are_checked_when_made():
    with pytest.raises(SpecError, match="did you mean 'sinusoidal'"):
        make_layer({"type": "positional", "max_length": 4, "encoding": "sinusoid"}, 0)
    with pytest.raises(SpecError, match="max_length"):
        make_layer({"type": "positional", "max_length": 0}, 0)


def test_predict_on_a_sequence_longer_than_max_length_exits_3_naming_it(tmp_path):
    spec = walks_spec(
        tmp_path, "[{type: dense, units: 4}, {type: positional, max_length: 40}, global_avgpool,"
        " {type: dense, units: auto, activation: softmax}]",
    )  # fmt: skip
    assert invoke("train", spec, "--quiet").exit_code == 0
    longer = tmp_path / "long.csv"
    longer.write_text("walk,t,value,drift\n" + "".join(f"x,{t},{t / 10},up\n" for t in range(45)))
    result = invoke("predict", tmp_path / "out" / "model.h5", longer)
    one_error_line(result, 3, "layers[1] (positional)", "max_length 40", "got 45")
