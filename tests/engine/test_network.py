"""Sequential: building from configs, names, counts, summaries, shape errors."""

import numpy as np
import pytest
from helpers import assert_close_float32

from nncli.engine.network import Sequential
from nncli.errors import ShapeError, SpecError


def test_named_parameters_counts_and_summary():
    net = Sequential(
        [
            "flatten",
            {"type": "dense", "units": 4, "activation": "relu"},
            {"type": "dropout", "rate": 0.1},
            {"type": "dense", "units": 3},
        ],
        (2, 3),
    )
    assert list(net.named_parameters()) == [
        "1.dense.weight",
        "1.dense.bias",
        "3.dense.weight",
        "3.dense.bias",
    ]
    assert net.named_parameters()["1.dense.weight"].shape == (4, 6)
    assert net.parameter_count() == (6 * 4 + 4) + (4 * 3 + 3)
    rows = net.summary()
    assert [r["output_shape"] for r in rows] == [["N", 6], ["N", 4], ["N", 4], ["N", 3]]
    assert rows[1]["weights"] == 24 and rows[1]["biases"] == 4
    assert net.named_parameters()["1.dense.weight"].dtype == np.float32


def test_he_for_relu_glorot_otherwise_and_zero_biases():
    net = Sequential(
        [{"type": "dense", "units": 400, "activation": "relu"}, {"type": "dense", "units": 400}],
        (400,),
        seed=0,
    )
    w0, w1 = net.named_parameters()["0.dense.weight"], net.named_parameters()["1.dense.weight"]
    assert np.std(w0) == pytest.approx(np.sqrt(2 / 400), rel=0.05)
    assert np.std(w1) == pytest.approx(np.sqrt(6 / 800) / np.sqrt(3), rel=0.05)
    assert not net.named_parameters()["0.dense.bias"].any()


def test_same_seed_same_initial_weights():
    layers = [{"type": "dense", "units": 5}]
    a = Sequential(layers, (3,), seed=4).get_weights()
    b = Sequential(layers, (3,), seed=4).get_weights()
    c = Sequential(layers, (3,), seed=5).get_weights()
    np.testing.assert_array_equal(a["0.dense.weight"], b["0.dense.weight"])
    assert not np.array_equal(a["0.dense.weight"], c["0.dense.weight"])


def test_float64_on_request():
    from nncli.backend import get_backend

    net = Sequential([{"type": "dense", "units": 2}], (3,), backend=get_backend("cpu", "float64"))
    assert net.forward(np.ones((1, 3))).dtype == np.float64


def test_wrong_input_shape_names_the_layer():
    net = Sequential([{"type": "dense", "units": 2}], (3,))
    with pytest.raises(ShapeError, match=r"layers\[0\] \(dense\) expects \(N, 3\), got \(5, 4\)"):
        net.forward(np.ones((5, 4), dtype=np.float32))


def test_unknown_layer_and_setting_get_did_you_mean():
    with pytest.raises(SpecError, match="did you mean 'dense'") as err:
        Sequential([{"type": "dens", "units": 2}], (3,))
    assert err.value.field == "layers[0].type"
    with pytest.raises(SpecError, match="did you mean 'units'") as err:
        Sequential([{"type": "dense", "unit": 2}], (3,))
    assert err.value.field == "layers[0].unit"
    with pytest.raises(SpecError, match="did you mean 'relu'"):
        Sequential([{"type": "dense", "units": 2, "activation": "rellu"}], (3,))


def test_negative_units_and_bad_reshape():
    with pytest.raises(SpecError, match="expected a positive integer, got -3"):
        Sequential([{"type": "dense", "units": -3}], (3,))
    with pytest.raises(SpecError, match="cannot reshape"):
        Sequential([{"type": "reshape", "shape": [2, 2]}], (5,))


def test_dropout_only_in_training_and_inverted():
    net = Sequential([{"type": "dropout", "rate": 0.5}], (1000,))
    x = np.ones((4, 1000), dtype=np.float32)
    np.testing.assert_array_equal(net.forward(x), x)
    y = net.forward(x, training=True)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert y.mean() == pytest.approx(1.0, abs=0.05)


def test_leaky_relu_layer_takes_its_slope():
    net = Sequential([{"type": "leaky_relu", "slope": 0.2}], (2,))
    y = net.forward(np.array([[-1.0, 3.0]], dtype=np.float32))
    assert_close_float32(y, [[-0.2, 3.0]], magnitude=[[0.2, 3.0]])


def test_every_engine_module_defining_a_layer_is_registered():
    """A layer module left out of LAYER_MODULES would never fill the registry."""
    import importlib
    import inspect
    import pkgutil

    import nncli.engine as engine
    from nncli.engine.layer import Layer
    from nncli.engine.registry import LAYERS

    defining = set()
    for info in pkgutil.walk_packages(engine.__path__, "nncli.engine."):
        module = importlib.import_module(info.name)
        classes = [c for c in vars(module).values() if inspect.isclass(c) and c is not Layer]
        if any(issubclass(c, Layer) and c.__module__ == module.__name__ for c in classes):
            defining.add(info.name.removeprefix("nncli.engine."))
    assert defining == set(engine.LAYER_MODULES)
    registered_in = {LAYERS.get(name).__module__ for name in LAYERS.names()}
    assert registered_in <= {f"nncli.engine.{name}" for name in engine.LAYER_MODULES}


def test_the_network_uses_only_what_layer_declares():
    """Every member the network and the gradient check read, set or call on a layer is declared
    on ``Layer`` with a default, and nothing in nncli asks a layer with getattr/hasattr or reaches
    into a layer's private (``_``) state from outside its class."""
    import ast
    import re

    from helpers import ROOT

    from nncli.engine.layer import Layer

    declared = set(dir(Layer)) | set(vars(Layer()))
    for name in ("network.py", "gradcheck.py"):
        tree = ast.parse((ROOT / "nncli" / "engine" / name).read_text(encoding="utf-8"))
        used = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("layer", "after")
        }
        assert used and used <= declared, (name, sorted(used - declared))
    asking = re.compile(r"(getattr|hasattr|setattr)\((layer|part|twin|outer|after)\b|\blayer\._")
    for path in sorted((ROOT / "nncli").rglob("*.py")):
        found = asking.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path.relative_to(ROOT)}: {found}"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"type": "conv2d", "filters": 2, "bias_initializer": "normal"}, "bias_initializer"),
        (
            {"type": "conv1d", "filters": 2, "kernel_initializer": "he_uniform"},
            "kernel_initializer",
        ),
        (
            {
                "type": "embedding",
                "input_dim": 4,
                "output_dim": 2,
                "embeddings_initializer": "zeros",
            },
            "embeddings_initializer",
        ),
        (
            {"type": "gru", "units": 2, "recurrent_initializer": "glorot_uniform"},
            "recurrent_initializer",
        ),
    ],
)
def test_a_given_initializer_is_kept_in_config_and_a_default_is_not(settings, field):
    from nncli.engine.registry import LAYERS

    def create(entry):
        return LAYERS.create(entry["type"], {k: v for k, v in entry.items() if k != "type"})

    config = create(settings).config()
    kept = config[field]
    assert (kept if isinstance(kept, str) else kept["type"]) == settings[field]
    assert create(config).config() == config
    bare = {k: v for k, v in settings.items() if k != field}
    assert field not in create(bare).config()


def _shape_cases() -> list:
    """Every registered layer's examples, and each recurrent one both ways round."""
    from nncli.engine.registry import LAYERS

    cases = []
    for name in LAYERS.names():
        for i, (settings, shape) in enumerate(LAYERS.get(name).examples):
            cases.append(pytest.param(name, settings, shape, id=f"{name}-{i}"))
            if "bidirectional" in LAYERS.settings(name) and not settings.get("bidirectional"):
                both = {**settings, "bidirectional": True}
                cases.append(pytest.param(name, both, shape, id=f"{name}-{i}-bidirectional"))
    return cases


@pytest.mark.parametrize(("name", "settings", "shape"), _shape_cases())
def test_shapes_known_without_allocating_are_the_built_ones(name, settings, shape):
    """``param_shapes``, ``state_shapes`` and ``output_shape`` (the memory check before a build)
    give what a build makes, and a layer that makes arrays answers without building them."""
    from nncli.backend import get_backend
    from nncli.engine.layer import Layer
    from nncli.engine.network import make_layer

    planned = make_layer({"type": name, **settings}, 0)
    built = make_layer({"type": name, **settings}, 0)
    out = built.build(shape, get_backend("cpu", "float64"), np.random.default_rng(0))
    assert planned.param_shapes(shape) == {k: tuple(v.shape) for k, v in built.params.items()}
    assert planned.state_shapes(shape) == {k: tuple(v.shape) for k, v in built.state.items()}
    assert planned.output_shape(shape) == out
    if built.params or built.state:
        assert type(planned).output_shape is not Layer.output_shape, "it would build to answer"
    assert not planned.params and not planned.state


def test_planned_arrays_follow_the_shapes_through_the_network():
    from nncli.engine.network import planned_arrays

    layers = [
        {"type": "conv2d", "filters": 3, "kernel_size": 3},
        "batchnorm",
        {"type": "maxpool2d", "pool_size": 2},
        "flatten",
        {"type": "dense", "units": 5},
    ]
    net = Sequential(layers, (1, 8, 8))
    planned = planned_arrays(layers, (1, 8, 8))
    assert [p.label for p in planned] == [layer.label for layer in net.layers]
    for p, layer in zip(planned, net.layers, strict=True):
        assert p.params == {k: tuple(v.shape) for k, v in layer.params.items()}
        assert p.state == {k: tuple(v.shape) for k, v in layer.state.items()}
    assert sum(p.count() for p in planned) == net.parameter_count()
    too_small = [{"type": "conv2d", "filters": 1, "kernel_size": 8}, *layers[1:]]
    with pytest.raises(SpecError) as built:  # the build's own error, before any weight is drawn
        Sequential(too_small, (1, 8, 8))
    with pytest.raises(SpecError) as plan:
        planned_arrays(too_small, (1, 8, 8))
    assert str(plan.value) == str(built.value) and "too small for a 2x2 window" in str(plan.value)
