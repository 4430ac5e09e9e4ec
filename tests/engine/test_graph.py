"""The network as a graph (nncli/engine/graph.py, network.py): how ``name``/``inputs`` wire the
layers, every wiring error with the key it names, the order layers run and draw their weights
in, gradients adding up where an output feeds several layers, the backward pass leaving out
what no parameter stands behind, masks along the edges, and the summary's inputs."""

from __future__ import annotations

import numpy as np
import pytest

from nncli.backend import get_backend
from nncli.engine import LAYERS, LOSSES
from nncli.engine.gradcheck import numeric_gradient, relative_error
from nncli.engine.graph import INPUT, problems
from nncli.engine.network import Network
from nncli.errors import SpecError

F64 = get_backend("cpu", "float64")

GRAPH = [
    {"type": "dense", "units": 5, "activation": "tanh", "name": "stem"},
    {"type": "residual", "layers": [{"type": "dense", "units": 5, "activation": "elu"}]},
    {"type": "dense", "units": 3, "name": "left"},
    {"type": "dense", "units": 3, "activation": "sigmoid", "inputs": "stem", "name": "right"},
    {"type": "multiply", "inputs": ["left", "right"], "name": "gated"},
    {"type": "dense", "units": 2, "inputs": "input", "name": "wide"},
    {"type": "concat", "inputs": ["gated", "wide", "stem"]},
    {"type": "dense", "units": 3, "activation": "softmax"},
]


def kinds(*types: str) -> list[tuple[str, bool]]:
    return [(t, LAYERS.get(t).several_inputs) for t in types]


@pytest.mark.parametrize(
    ("written", "types", "field", "message"),
    [
        ([{"name": "a"}, {"name": "a"}], ("dense", "dense"), "layers[1].name",
         "the name 'a' is used twice: by layers[0] (dense) and layers[1]"),
        ([{"name": "a-b"}, {}], ("dense", "dense"), "layers[0].name",
         "expected a name of letters, digits and _, got 'a-b'"),
        ([{"name": "input"}, {}], ("dense", "dense"), "layers[0].name", "'input' names the data"),
        ([{"name": "hidden"}, {"inputs": "hiden"}], ("dense", "dense"), "layers[1].inputs",
         "(input, hidden), got 'hiden' (did you mean 'hidden'?)"),
        ([{"name": "a"}, {"inputs": ["a", "b"]}], ("dense", "add"), "layers[1].inputs[1]",
         "got 'b'"),
        ([{}, {}], ("dense", "add"), "layers[1]",
         "add joins two or more outputs, got one (layers[0] (dense)); expected inputs: [a, b"),
        ([{"name": "a"}, {"inputs": ["a", "input"]}], ("dense", "dense"), "layers[1].inputs",
         "dense takes one input, got 2"),
        ([{"name": "a", "inputs": "c"}, {"name": "b"}, {"name": "c"}, {}], ("dense",) * 4,
         "layers[0].inputs",
         "the inputs make a cycle: 'a' (layers[0], dense) -> 'b' (layers[1], dense) -> "
         "'c' (layers[2], dense) -> 'a' (layers[0], dense)"),
        ([{"name": "a", "inputs": "a"}, {}], ("dense", "dense"), "layers[0].inputs",
         "a cycle: 'a' (layers[0], dense) -> 'a' (layers[0], dense)"),
        ([{"name": "a"}, {"inputs": "input"}], ("dense", "dense"), "layers[0].name",
         "nothing takes the output of 'a' (layers[0], dense); expected 'a' among a later"),
        ([{}, {"inputs": "input"}], ("dense", "dense"), "layers[0]",
         "nothing takes the output of layers[0] (dense)"),
        ([{"inputs": 3}], ("dense",), "layers[0].inputs", "expected a layer's name or a list"),
    ],
)  # fmt: skip
def test_each_wiring_problem_names_its_key(written, types, field, message):
    wiring, found = problems(written, kinds(*types))
    assert wiring is None and len(found) == 1
    assert found[0].field == field
    assert message in found[0].message


def test_every_problem_is_found_at_once():
    written = [{"name": "a"}, {"name": "a", "inputs": "x"}, {"inputs": ["a", "y"]}]
    _, found = problems(written, kinds("dense", "dense", "add"))
    assert [e.field for e in found] == ["layers[1].name", "layers[1].inputs", "layers[2].inputs[1]"]


def test_a_stack_is_the_wiring_without_keys_or_with_keys_that_say_the_same():
    wiring, _ = problems([{}, {}, {}], kinds("dense", "relu", "dense"))
    assert wiring.is_stack and wiring.inputs == ((INPUT,), (0,), (1,)) and wiring.order == (0, 1, 2)
    said = [{"name": "a", "inputs": "input"}, {"name": "b", "inputs": ["a"]}, {"inputs": "b"}]
    assert problems(said, kinds("dense", "relu", "dense"))[0].is_stack
    assert not Network(GRAPH, (4,)).is_stack


def test_a_layer_may_take_a_later_layers_output_and_runs_after_it():
    """Positions name the layers (and their weights); the order they run in puts each after
    what it takes, and weights are drawn in that order."""
    later = [
        {"type": "dense", "units": 3, "inputs": "h", "name": "a"},
        {"type": "dense", "units": 4, "inputs": "input", "name": "h"},
        {"type": "dense", "units": 2, "inputs": "a"},
    ]
    net = Network(later, (5,), seed=1)
    assert net.wiring.order == (1, 0, 2)
    assert net.output_shape == (2,) and net.layers[0].in_shape == (4,)
    first_drawn = Network([{"type": "dense", "units": 4}], (5,), seed=1).get_weights()
    np.testing.assert_array_equal(
        net.get_weights()["1.dense.weight"], first_drawn["0.dense.weight"]
    )
    assert net.forward(np.ones((2, 5), np.float32)).shape == (2, 2)


def test_a_graph_network_checks_against_central_differences():
    """Through the loss: every parameter and dL/d(input), which the input feeds to two layers
    (``stem`` and ``wide``), and ``stem`` to three."""
    rng = np.random.default_rng(1)
    net = Network(GRAPH, (4,), backend=F64, seed=2)
    loss = LOSSES.create("cross_entropy")
    fused = net.fuse_output(loss.fused_activation)
    x = rng.normal(size=(5, 4))
    y = np.eye(3)[rng.integers(0, 3, 5)]

    def value() -> float:
        return float(loss.forward(net.forward(x), y, logits=net.logits if fused else None))

    value()
    dx = net.backward(loss.backward())
    assert relative_error(dx, numeric_gradient(value, x)) < 1e-7
    analytic = {k: g.copy() for k, g in net.named_gradients().items()}
    for name, param in net.named_parameters().items():
        assert relative_error(analytic[name], numeric_gradient(value, param)) < 1e-7, name


def test_backward_visits_only_what_a_parameter_stands_behind(monkeypatch):
    """Training wants no dL/d(input): a branch of no parameters on the input is never visited,
    and each layer with parameters and none behind it computes its parameter gradients only."""
    calls = []
    relu = LAYERS.get("relu")
    original = relu.backward
    monkeypatch.setattr(relu, "backward", lambda self, dy: calls.append(dy) or original(self, dy))
    layers = [
        {"type": "relu", "name": "a"},
        {"type": "dense", "units": 4, "inputs": "input", "name": "b"},
        {"type": "add", "inputs": ["a", "b"]},
        {"type": "relu"},
        {"type": "dense", "units": 2},
    ]
    net = Network(layers, (4,), backend=F64)
    x = np.random.default_rng(0).normal(size=(3, 4))
    net.backward(np.ones_like(net.forward(x, training=True)))
    assert len(calls) == 1  # the relu behind the add, not the one on the input
    assert net.layers[1].skip_input_grad and not net.layers[4].skip_input_grad
    net.forward(x)
    assert net.backward(np.ones((3, 2))).shape == (3, 4) and len(calls) == 3


def test_masks_follow_the_edges_so_a_padded_sequence_gives_what_it_gives_alone():
    layers = [
        {"type": "dense", "units": 4, "activation": "tanh", "name": "a"},
        {"type": "conv1d", "filters": 4, "kernel_size": 3, "padding": "same", "inputs": "input"}
        | {"name": "c"},
        {"type": "add", "inputs": ["a", "c"]},
        "global_avgpool",
    ]
    net = Network(layers, (6, 2), backend=F64)
    lengths = [6, 3, 5]
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    x = np.random.default_rng(0).normal(size=(3, 6, 2))
    x[~mask] = 1e3
    together = net.forward(x, mask=mask)
    for i, length in enumerate(lengths):
        alone = net.forward(x[i : i + 1, :length])
        np.testing.assert_allclose(together[i], alone[0], rtol=1e-12)


@pytest.mark.parametrize(("taken_twice", "deferred"), [(False, True), (True, False)])
def test_a_relu_runs_inside_the_max_pool_only_when_the_pool_alone_takes_it(taken_twice, deferred):
    layers = [
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "activation": "relu", "name": "c"},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "flatten", "name": "g"},
    ]
    if taken_twice:  # the conv's output also goes, flattened, straight to the end
        layers += [{"type": "flatten", "inputs": "c", "name": "f"}]
        layers += [{"type": "concat", "inputs": ["g", "f"]}]
    net = Network(layers, (1, 6, 6))
    assert net.layers[0].activation_deferred is deferred
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6)).astype(np.float32)
    assert (net.forward(x) >= 0).all()


def test_the_summary_names_each_layers_inputs_and_a_composed_layers_parts():
    rows = Network(GRAPH, (4,)).summary()
    assert [r["inputs"] for r in rows] == [
        ["input"], ["stem"], [1], ["stem"], ["left", "right"], ["input"],
        ["gated", "wide", "stem"], [6],
    ]  # fmt: skip
    assert [r["name"] for r in rows][:3] == ["stem", None, "left"]
    assert [(p["name"], p["params"]) for p in rows[1]["parts"]] == [("0.dense", 30)]
    assert rows[1]["params"] == 30


def test_a_wiring_error_is_a_spec_error_naming_the_key():
    with pytest.raises(SpecError) as caught:
        Network([{"type": "dense", "units": 2, "inputs": "nope"}], (3,))
    assert caught.value.field == "layers[0].inputs" and "got 'nope'" in caught.value.message
