"""The conventions other libraries give optimizer settings (issue 31), each reproduced from its
documented formula: ``clip_value`` is PyTorch's ``clip_grad_value_`` (Keras's ``clipvalue``),
``decoupled_weight_decay: true`` is p *= 1 - lr weight_decay before the optimizer's own step on
the plain gradient (PyTorch's AdamW, Keras 3's ``weight_decay``), for every optimizer."""

from typing import Any

import numpy as np
import pytest
from helpers import torch_reference

from nncli.engine import OPTIMIZERS
from nncli.engine.optimizers import FlatParameters
from nncli.errors import SpecError


def _flat(arrays: dict[str, np.ndarray]) -> FlatParameters:
    """The arrays as views into one 1-D buffer (how ``Sequential`` hands them to a step)."""
    buffer = np.concatenate([a.ravel() for a in arrays.values()])
    views, at = {}, 0
    for name, a in arrays.items():
        views[name] = buffer[at : at + a.size].reshape(a.shape)
        at += a.size
    return FlatParameters(views, buffer)


@pytest.mark.parametrize("flat", [False, True])
def test_clip_value_clamps_each_element_as_torch_clip_grad_value(flat):
    torch = torch_reference()
    rng = np.random.default_rng(3)
    shapes = {"w": (4, 3), "b": (3,)}
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    ref = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    sgd = torch.optim.SGD(list(ref.values()), lr=0.1)
    ours = OPTIMIZERS.create("sgd", {"learning_rate": 0.1, "clip_value": 0.5})
    if flat:
        params = _flat(params)
    for _ in range(3):
        grads = {k: 2.0 * rng.normal(size=s) for k, s in shapes.items()}
        assert max(abs(g).max() for g in grads.values()) > 0.5  # something to clip
        for k, t in ref.items():
            t.grad = torch.tensor(grads[k])
        torch.nn.utils.clip_grad_value_(list(ref.values()), clip_value=0.5)
        sgd.step()
        ours.step(params, _flat(grads) if flat else grads)
    for k, t in ref.items():
        np.testing.assert_allclose(params[k], t.detach().numpy(), rtol=1e-12, atol=0)


def test_clip_value_and_clip_norm_together_are_refused():
    with pytest.raises(SpecError, match="one of clip_norm .* and clip_value") as err:
        OPTIMIZERS.create("adam", {"clip_norm": 1.0, "clip_value": 0.5})
    assert err.value.field == "clip_value"
    with pytest.raises(SpecError, match=r"expected a number in \(0"):
        OPTIMIZERS.create("adam", {"clip_value": 0})


def _sgd(p, g, state, lr, momentum=0.0, **_):
    """PyTorch's SGD on the plain gradient: b = momentum b + g (b = g at first); p -= lr b."""
    if momentum:
        state["b"] = g.copy() if "b" not in state else momentum * state["b"] + g
        g = state["b"]
    return p - lr * g


def _rmsprop(p, g, state, lr, rho=0.9, epsilon=1e-8, **_):
    """PyTorch's RMSprop (alpha = rho): v = rho v + (1 - rho) g^2; p -= lr g / (sqrt(v) + eps)."""
    state["v"] = rho * state.get("v", 0.0) + (1 - rho) * g * g
    return p - lr * g / (np.sqrt(state["v"]) + epsilon)


def _adagrad(p, g, state, lr, epsilon=1e-10, **_):
    """PyTorch's Adagrad: s += g^2; p -= lr g / (sqrt(s) + eps)."""
    state["s"] = state.get("s", 0.0) + g * g
    return p - lr * g / (np.sqrt(state["s"]) + epsilon)


def _adam(p, g, state, lr, beta1=0.9, beta2=0.999, epsilon=1e-8, **_):
    """Adam's step (Kingma and Ba) with bias correction at step t."""
    t = state["t"] = state.get("t", 0) + 1
    state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    m, v = state["m"] / (1 - beta1**t), state["v"] / (1 - beta2**t)
    return p - lr * m / (np.sqrt(v) + epsilon)


STEPS = {
    "sgd": (_sgd, {}),
    "momentum": (_sgd, {"momentum": 0.9}),
    "rmsprop": (_rmsprop, {}),
    "adagrad": (_adagrad, {}),
    "adam": (_adam, {}),
}


@pytest.mark.parametrize("kind", list(STEPS))
@pytest.mark.parametrize("flat", [False, True])
def test_decoupled_weight_decay_is_the_decay_then_the_plain_step(kind, flat):
    """Decoupled weight decay (Loshchilov and Hutter; PyTorch's AdamW): each step
    p <- p (1 - lr wd), then the optimizer's own update from the gradient alone; the gradient
    and the optimizer's state never see the decay."""
    rule, settings = STEPS[kind]
    name = "sgd" if kind == "momentum" else kind
    lr, wd = 0.05, 0.3
    ours = OPTIMIZERS.create(
        name,
        {"learning_rate": lr, "weight_decay": wd, "decoupled_weight_decay": True, **settings},
    )
    rng = np.random.default_rng(7)
    p = rng.normal(size=(5,))
    expected, state = p.copy(), {}
    params = _flat({"w": p}) if flat else {"w": p}
    for _ in range(4):
        g = rng.normal(size=(5,))
        expected = rule(expected * (1 - lr * wd), g, state, lr, **settings)
        ours.step(params, _flat({"w": g}) if flat else {"w": g})
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12, atol=1e-15)
    # it differs from coupled L2 of the same strength (the switch is no no-op), except under
    # plain SGD, where p - lr (g + wd p) = p (1 - lr wd) - lr g
    coupled = OPTIMIZERS.create(name, {"learning_rate": lr, "weight_decay": wd, **settings})
    q = rng.normal(size=(5,))
    r, state = q.copy(), {}
    for _ in range(3):  # momentum's first step is the same either way
        coupled.step({"w": q}, {"w": np.ones(5)})
        r = rule(r * (1 - lr * wd), np.ones(5), state, lr, **settings)
    assert np.allclose(q, r, rtol=1e-9) == (kind == "sgd")


def test_adam_with_decoupled_weight_decay_is_torch_adamw():
    torch = torch_reference()
    rng = np.random.default_rng(0)
    p = rng.normal(size=(3, 4))
    tp = torch.tensor(p.copy(), requires_grad=True)
    ref = torch.optim.AdamW([tp], lr=0.01, weight_decay=0.2)
    ours = OPTIMIZERS.create(
        "adam", {"learning_rate": 0.01, "weight_decay": 0.2, "decoupled_weight_decay": True}
    )
    adamw = OPTIMIZERS.create("adamw", {"learning_rate": 0.01, "weight_decay": 0.2})
    q = p.copy()
    for _ in range(5):
        g = rng.normal(size=p.shape)
        ours.step({"w": p}, {"w": g})
        adamw.step({"w": q}, {"w": g})
        tp.grad = torch.tensor(g)
        ref.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(p, q)


def test_the_settings_are_stored_and_adamw_is_always_decoupled():
    cfg = OPTIMIZERS.create("rmsprop", {"clip_value": 1.5, "decoupled_weight_decay": True}).config()
    assert cfg["clip_value"] == 1.5 and cfg["decoupled_weight_decay"] is True
    assert OPTIMIZERS.create("adamw").config()["decoupled_weight_decay"] is True
    assert OPTIMIZERS.create("sgd").config()["decoupled_weight_decay"] is False
    with pytest.raises(SpecError, match="adamw's decay is decoupled") as err:
        OPTIMIZERS.create("adamw", {"decoupled_weight_decay": False})
    assert err.value.field == "decoupled_weight_decay"


def test_clip_norm_is_keras_global_clipnorm():
    """Keras's global_clipnorm (tf.clip_by_global_norm): every gradient times
    c / max(global_norm, c), the global norm over all gradients together."""
    rng = np.random.default_rng(11)
    grads = {"w": 3.0 * rng.normal(size=(4, 3)), "b": 3.0 * rng.normal(size=(3,))}
    norm = np.sqrt(sum((g * g).sum() for g in grads.values()))
    c = 0.7
    assert norm > c
    params = {k: np.zeros_like(g) for k, g in grads.items()}
    reported = OPTIMIZERS.create("sgd", {"learning_rate": 1.0, "clip_norm": c}).step(params, grads)
    assert reported == pytest.approx(norm, rel=1e-12)
    for k, g in grads.items():
        np.testing.assert_allclose(params[k], -g * c / max(norm, c), rtol=1e-9)


def _keras_l2_against_weight_decay(torch, steps: int, bias: bool) -> tuple[dict, Any]:
    """(nncli's parameters after SGD with weight_decay 2c, torch's Linear after SGD on the loss
    plus c * sum(W^2), Keras's kernel_regularizer=l2(c)), from the same start."""
    rng = np.random.default_rng(2)
    x, y = torch.tensor(rng.normal(size=(8, 3))), torch.tensor(rng.normal(size=(8, 2)))
    layer, mine = (torch.nn.Linear(3, 2, bias=bias).double() for _ in range(2))
    mine.load_state_dict(layer.state_dict())
    c, lr = 0.05, 0.1
    sgd = torch.optim.SGD(layer.parameters(), lr=lr)
    step = OPTIMIZERS.create("sgd", {"learning_rate": lr, "weight_decay": 2 * c})
    ours = {k: v.detach().numpy() for k, v in mine.named_parameters()}  # views: steps move mine
    for _ in range(steps):
        mine.zero_grad()
        torch.nn.functional.mse_loss(mine(x), y).backward()  # the data loss's gradient alone
        with torch.no_grad():
            step.step(ours, {k: v.grad.numpy() for k, v in mine.named_parameters()})
        sgd.zero_grad()
        (torch.nn.functional.mse_loss(layer(x), y) + c * (layer.weight**2).sum()).backward()
        sgd.step()
    return ours, layer


def test_kernel_regularizer_l2_is_weight_decay_2c_on_the_kernel():
    """Keras's kernel_regularizer=l2(c) adds c * sum(W^2) to the loss: SGD on that loss moves
    the kernel exactly as nncli's coupled weight_decay 2c does (what the suggestion says)."""
    ours, layer = _keras_l2_against_weight_decay(torch_reference(), steps=4, bias=False)
    np.testing.assert_allclose(ours["weight"], layer.weight.detach().numpy(), rtol=1e-12)


def test_weight_decay_also_decays_the_bias_where_keras_kernel_regularizer_does_not():
    ours, layer = _keras_l2_against_weight_decay(torch_reference(), steps=1, bias=True)
    np.testing.assert_allclose(ours["weight"], layer.weight.detach().numpy(), rtol=1e-12)
    assert not np.allclose(ours["bias"], layer.bias.detach().numpy(), rtol=1e-6)
