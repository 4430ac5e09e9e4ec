"""Networks <-> checkpoints (nncli/checkpoint/model.py): a stored array must fit the network its
layer configs build, for every registered layer, with no table of layer types kept by hand."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nncli import checkpoint
from nncli.checkpoint import model
from nncli.engine import LAYERS, LOSSES
from nncli.engine.history import History
from nncli.engine.network import Sequential
from nncli.errors import CheckpointError

EXAMPLES = [
    (name, settings, shape)
    for name in LAYERS.names()
    for settings, shape in LAYERS.get(name).examples[:1]
    if not LAYERS.get(name).several_inputs  # a merge has no weights
    and Sequential([{"type": name, **settings}], shape).layers[0].params
]


def saved(path: Path, net: Sequential, in_shape: tuple[int, ...]) -> Path:
    data = {"kind": "csv", "input_shape": list(in_shape), "dtype": "float32"}
    model.save(path, net=net, loss=LOSSES.create("mse"), data=data, spec_yaml="",
               optimizer=None, history=History(), seed=0)  # fmt: skip
    return path


def test_every_layer_with_weights_is_covered():
    assert {"dense", "conv2d", "lstm", "gru", "rnn", "embedding"} <= {e[0] for e in EXAMPLES}


@pytest.mark.parametrize(("name", "settings", "in_shape"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_an_array_of_another_shape_than_its_layer_builds_is_refused(
    tmp_path: Path, name: str, settings: dict, in_shape: tuple[int, ...]
):
    net = Sequential([{"type": name, **settings}], in_shape)
    path = saved(tmp_path / "model.h5", net, in_shape)
    model.load(path)  # the untouched file loads
    stored = checkpoint.load(path)
    param, array = next(iter(stored.layers[0].params.items()))
    stored.layers[0].params[param] = np.zeros((array.shape[0] + 1, *array.shape[1:]), np.float32)
    checkpoint.save(path, stored)  # valid checksums: only the shape check stands in the way
    grown = (array.shape[0] + 1, *array.shape[1:])
    needle = f"/model/0.{name} has a {param} of shape {grown}, but its config ("
    with pytest.raises(CheckpointError, match=re.escape(needle)) as caught:
        model.load(path)
    assert f"builds {array.shape}" in str(caught.value)
