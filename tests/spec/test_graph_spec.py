"""A spec's graph (issue 26): every wiring error is one line naming the file, the line and
column of the key at fault and, for a misspelt name, the name meant; the errors that need the
data's shapes (a merge of outputs of different shapes, a residual whose layers change the shape)
come from validate and train alike, at the layer's line."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import IRIS, invoke, one_error_line

from nncli import spec as spec_module
from nncli.errors import SpecError, SpecErrors

HEAD = """\
version: 1
data: {kind: csv, path: iris.csv, target: species}
loss: cross_entropy
training: {epochs: 1, batch_size: 16}
output: out/model.h5
model:
  layers:
"""
LAST = "    - {type: dense, units: auto, activation: softmax}\n"


def spec_file(folder: Path, layers: str) -> Path:
    (folder / "iris.csv").write_bytes(IRIS.read_bytes())
    path = folder / "graph.yaml"
    path.write_text(HEAD + layers + LAST)
    return path


CASES = {
    "unknown name": (
        "    - {type: dense, units: 4, name: hidden}\n"
        "    - {type: dense, units: 4, inputs: input, name: other}\n"
        "    - {type: add, inputs: [hiden, other]}\n",
        "graph.yaml:10:28: model.layers[2].inputs[0]: expected a layer's name or 'input' "
        "(input, hidden, other), got 'hiden' (did you mean 'hidden'?)",
    ),
    "a name twice": (
        "    - {type: dense, units: 4, name: h}\n    - {type: dense, units: 4, name: h}\n",
        "graph.yaml:9:37: model.layers[1].name: the name 'h' is used twice: by layers[0] "
        "(dense) and layers[1]",
    ),
    "a cycle": (
        "    - {type: dense, units: 4, name: a, inputs: b}\n"
        "    - {type: dense, units: 4, name: b, inputs: a}\n",
        "graph.yaml:8:48: model.layers[0].inputs: the inputs make a cycle: 'a' (layers[0], "
        "dense) -> 'b' (layers[1], dense) -> 'a' (layers[0], dense)",
    ),
    "a named layer nobody takes": (
        "    - {type: dense, units: 4, name: lost}\n    - {type: dense, units: 4, inputs: input}\n",
        "graph.yaml:8:37: model.layers[0].name: nothing takes the output of 'lost' (layers[0], "
        "dense); expected 'lost' among a later layer's inputs",
    ),
    "inputs inside a residual": (
        "    - {type: residual, layers: [{type: dense, units: 4, inputs: input}]}\n",
        "graph.yaml:8:57: model.layers[0].layers[0]: a layer inside residual takes the one "
        "before it (the first takes the block's input) and is not seen outside it; expected no "
        "'inputs'",
    ),
    "a merge of one": (
        "    - {type: dense, units: 4}\n    - {type: concat}\n",
        "graph.yaml:9:7: model.layers[1]: concat joins two or more outputs, got one "
        "(layers[0] (dense)); expected inputs: [a, b, ...]",
    ),
    "two inputs to a dense layer": (
        "    - {type: dense, units: 4, name: a}\n"
        "    - {type: dense, units: 4, inputs: [a, input]}\n",
        "graph.yaml:9:39: model.layers[1].inputs: dense takes one input, got 2",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_wiring_error_is_one_line_at_its_key(tmp_path, case):
    layers, line = CASES[case]
    path = spec_file(tmp_path, layers)
    for command in ("validate", "train"):
        found = one_error_line(invoke(command, path), 2, line)
        assert found.endswith(line) or line in found


def test_every_wiring_error_of_a_file_at_once(tmp_path):
    path = spec_file(
        tmp_path,
        "    - {type: dense, units: 4, name: h}\n"
        "    - {type: dense, units: 4, name: h}\n"
        "    - {type: add, inputs: [h, g]}\n"
        "    - {type: residual, layers: [{type: relu, name: r}, {type: dens, units: 4}]}\n",
    )
    with pytest.raises(SpecErrors) as caught:
        spec_module.load(path)
    assert [(e.where.split(":", 1)[1], e.field) for e in caught.value.errors] == [
        ("9:37", "model.layers[1].name"),
        ("10:31", "model.layers[2].inputs[1]"),
        ("11:46", "model.layers[3].layers[0]"),
        ("11:63", "model.layers[3].layers[1].type"),
    ]


def test_outputs_of_different_shapes_are_the_merges_line_naming_both(tmp_path):
    path = spec_file(
        tmp_path,
        "    - {type: dense, units: 4, name: a}\n"
        "    - {type: dense, units: 3, inputs: input, name: b}\n"
        "    - {type: add, inputs: [a, b]}\n",
    )
    line = (
        "graph.yaml:10:27: model.layers[2].inputs: layers[2] (add) joins outputs of one shape, "
        "got 'a' (layers[0], dense) (N, 4) and 'b' (layers[1], dense) (N, 3)"
    )
    for command in ("validate", "train"):
        one_error_line(invoke(command, path), 2, line)


def test_a_residual_changing_the_shape_names_both_shapes_at_its_line(tmp_path):
    path = spec_file(
        tmp_path,
        "    - {type: dense, units: 8}\n"
        "    - {type: residual, layers: [{type: dense, units: 4}]}\n",
    )
    line = (
        "graph.yaml:9:7: model.layers[1].projection: layers[1] (residual) adds its input (N, 8) "
        "to its layers' output (N, 4): expected one shape, or projection: true for a learned "
        "shortcut between them"
    )
    one_error_line(invoke("validate", path), 2, line)
    path.write_text(path.read_text().replace("units: 4}]}", "units: 4}], projection: true}"))
    assert invoke("validate", path).exit_code == 0


def test_the_resolved_spec_keeps_the_wiring_and_the_parts_spelt_as_registered(tmp_path):
    path = spec_file(
        tmp_path,
        "    - {type: Dense, units: 4, name: a, activation: ReLU}\n"
        "    - {type: residual, layers: [{type: Dense, units: 4}, ReLU], inputs: a}\n",
    )
    layers = spec_module.load(path).model.layers
    assert layers[0] == {"type": "dense", "units": 4, "name": "a", "activation": "relu"}
    inner = [{"type": "dense", "units": 4}, {"type": "relu"}]
    assert layers[1] == {"type": "residual", "layers": inner, "inputs": "a"}
    resolved = spec_module.loads(spec_module.resolved_yaml(spec_module.load(path)), "r.yaml")
    assert resolved.model.layers == layers


def test_a_graph_spec_from_python_names_the_key():
    with pytest.raises(SpecError, match=r"model\.layers\[1\]\.inputs: .*got 'x'"):
        spec_module.loads(
            HEAD.replace("iris.csv", "/no/iris.csv")
            + "    - {type: dense, units: 4}\n    - {type: dense, units: 4, inputs: x}\n"
            + LAST
        )
