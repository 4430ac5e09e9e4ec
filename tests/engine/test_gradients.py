"""Finite-difference gradient checks in float64, driven by the registries: every layer,
activation and loss registered is checked, so a new one is checked the day it is registered."""

import numpy as np
import pytest

from nncli.backend import get_backend, gpu_available
from nncli.engine import ACTIVATIONS, LAYERS, LOSSES
from nncli.engine.activations import make_activation
from nncli.engine.gradcheck import check_layer, check_loss, numeric_gradient, relative_error
from nncli.engine.network import Sequential, make_layer

TOL = 1e-6
# every check runs on each backend this machine has: the CPU always, the GPU when CuPy finds one
BACKENDS = ["cpu", *(["gpu"] if gpu_available() else [])]

LAYER_CASES = [
    pytest.param(name, settings, shape, id=f"{name}-{i}")
    for name in LAYERS.names()
    for i, (settings, shape) in enumerate(LAYERS.get(name).examples)
]


def test_every_layer_has_examples():
    missing = [name for name in LAYERS.names() if not LAYERS.get(name).examples]
    assert not missing, f"layers without gradient-check examples: {missing}"


@pytest.mark.parametrize(("name", "settings", "shape"), LAYER_CASES)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("device", BACKENDS)
def test_layer_gradients(name, settings, shape, training, device):
    layer = make_layer({"type": name, **settings}, 0)
    backend = get_backend(device, "float64")
    errors = check_layer(layer, shape, batch=3, seed=7, training=training, backend=backend)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_activation_gradients(name, f64):
    act = make_activation(name)
    z = np.random.default_rng(3).normal(size=(4, 5)) * 2
    r = np.random.default_rng(4).normal(size=(4, 5))
    act.forward(z)
    analytic = act.backward(r)
    numeric = numeric_gradient(lambda: float((act.forward(z) * r).sum()), z)
    assert relative_error(analytic, numeric) < TOL


def _targets(name, shape, rng):
    if LOSSES.get(name).task == "classification":
        if name == "cross_entropy":
            return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]
        return rng.integers(0, 2, size=shape).astype(float)
    return rng.normal(size=shape)


@pytest.mark.parametrize("name", LOSSES.names())
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2), (6, 1)])
def test_loss_gradients(name, shape):
    rng = np.random.default_rng(5)
    loss = LOSSES.create(name)
    y = _targets(name, shape, rng)
    mask = rng.random(shape[:2]) > 0.3 if len(shape) == 3 else None
    if loss.fused_activation:
        z = rng.normal(size=shape)
        assert check_loss(loss, z, y, mask=mask, logits=True) < TOL
        p = make_activation(loss.fused_activation).forward(z)
        assert check_loss(loss, p, y, mask=mask) < TOL
    else:
        assert check_loss(loss, rng.normal(size=shape), y, mask=mask) < TOL


def test_masked_loss_ignores_padded_steps():
    rng = np.random.default_rng(0)
    for name in LOSSES.names():
        loss = LOSSES.create(name)
        y = _targets(name, (2, 4, 3), rng)
        p = make_activation(loss.fused_activation or "sigmoid").forward(rng.normal(size=(2, 4, 3)))
        mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=bool)
        changed = p.copy()
        changed[~mask] = 0.5
        assert float(loss.forward(p, y, mask=mask)) == pytest.approx(
            float(loss.forward(changed, y, mask=mask))
        )


@pytest.mark.parametrize(
    ("activation", "loss_name"),
    [
        ("softmax", "cross_entropy"),
        ("sigmoid", "binary_cross_entropy"),
        ("linear", "mse"),
        ("tanh", "mae"),
    ],
)
@pytest.mark.parametrize("device", BACKENDS)
def test_network_gradients_through_the_loss(activation, loss_name, device):
    """The whole chain, including the fused softmax/sigmoid + cross-entropy shortcut."""
    rng = np.random.default_rng(11)
    backend = get_backend(device, "float64")
    net = Sequential(
        [
            {"type": "dense", "units": 5, "activation": "elu"},
            {"type": "dense", "units": 3, "activation": activation},
        ],
        (4,),
        backend=backend,
        seed=3,
    )
    loss = LOSSES.create(loss_name)
    fused = net.fuse_output(loss.fused_activation)
    assert fused == (loss.fused_activation == activation)
    x = backend.asarray(rng.normal(size=(6, 4)))
    y = backend.asarray(_targets(loss_name, (6, 3), rng))

    def value():
        p = net.forward(x)
        return float(loss.forward(p, y, logits=net.logits if fused else None))

    value()
    net.backward(loss.backward())
    analytic = {k: g.copy() for k, g in net.named_gradients().items()}
    for name, param in net.named_parameters().items():
        assert relative_error(analytic[name], numeric_gradient(value, param)) < TOL, name
