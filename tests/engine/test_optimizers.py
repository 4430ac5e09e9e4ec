"""Optimizer steps against values worked out by hand, state export/restore, clipping."""

import numpy as np
import pytest
from helpers import torch_reference

from nncli.engine import OPTIMIZERS
from nncli.engine.optimizers import SGD, Adam
from nncli.errors import SpecError


def test_one_adam_step_by_hand():
    p = np.array([1.0, -2.0, 0.5])
    g = np.array([0.1, -0.3, 0.0])
    Adam(learning_rate=0.1).step({"w": p}, {"w": g})
    # t=1: m = 0.1 g, v = 0.001 g^2; m^ = g, v^ = g^2 -> step = lr * g / (|g| + 1e-8)
    expected = np.array([1.0 - 0.1 * 0.1 / (0.1 + 1e-8), -2.0 + 0.1 * 0.3 / (0.3 + 1e-8), 0.5])
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_two_adam_steps_by_hand():
    p, lr, b1, b2, eps = np.array([1.0]), 0.01, 0.9, 0.999, 1e-8
    opt = Adam(learning_rate=lr)
    g1, g2 = 0.5, -0.2
    opt.step({"w": p}, {"w": np.array([g1])})
    opt.step({"w": p}, {"w": np.array([g2])})
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    w1 = 1.0 - lr * g1 / (abs(g1) + eps)
    w2 = w1 - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    assert p[0] == pytest.approx(w2, rel=1e-12)


def test_sgd_with_momentum_by_hand():
    p = np.array([1.0, 2.0])
    opt = SGD(learning_rate=0.1, momentum=0.9)
    opt.step({"w": p}, {"w": np.array([1.0, -1.0])})  # b = g
    np.testing.assert_allclose(p, [0.9, 2.1])
    opt.step({"w": p}, {"w": np.array([0.5, 0.5])})  # b = 0.9 b + g = [1.4, -0.4]
    np.testing.assert_allclose(p, [0.9 - 0.14, 2.1 + 0.04])


def test_nesterov_by_hand():
    p = np.array([1.0])
    opt = SGD(learning_rate=0.1, momentum=0.5, nesterov=True)
    opt.step({"w": p}, {"w": np.array([2.0])})  # b = 2; step g + 0.5 b = 3
    assert p[0] == pytest.approx(1.0 - 0.3)


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_adaptive_optimizers_first_step(name):
    p = np.array([1.0])
    opt = OPTIMIZERS.create(name, {"learning_rate": 0.1})
    opt.step({"w": p}, {"w": np.array([0.4])})
    decay = 1 - opt.rho if name == "rmsprop" else 1.0
    assert p[0] == pytest.approx(1.0 - 0.1 * 0.4 / (np.sqrt(decay * 0.16) + opt.epsilon))


def test_weight_decay_adds_to_the_gradient():
    p = np.array([2.0])
    SGD(learning_rate=0.1, weight_decay=0.5).step({"w": p}, {"w": np.array([0.0])})
    assert p[0] == pytest.approx(2.0 - 0.1 * 0.5 * 2.0)


def test_clip_norm_rescales_all_gradients_together_and_reports_the_norm():
    p, q = np.array([0.0]), np.array([0.0])
    opt = SGD(learning_rate=1.0, clip_norm=1.0)
    norm = opt.step({"a": p, "b": q}, {"a": np.array([3.0]), "b": np.array([4.0])})
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose([p[0], q[0]], [-0.6, -0.8], rtol=1e-9)


def test_non_finite_norm_leaves_parameters_untouched():
    p = np.array([1.0])
    norm = SGD(learning_rate=1.0, clip_norm=1.0).step({"w": p}, {"w": np.array([np.inf])})
    assert not np.isfinite(norm) and p[0] == 1.0


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad"])
def test_exported_state_resumes_exactly(name, f64):
    settings = {"learning_rate": 0.05, **({"momentum": 0.9} if name == "sgd" else {})}
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=3) for _ in range(6)]
    straight, opt = np.ones(3), OPTIMIZERS.create(name, settings)
    for g in grads:
        opt.step({"w": straight}, {"w": g})
    resumed, first = np.ones(3), OPTIMIZERS.create(name, settings)
    for g in grads[:3]:
        first.step({"w": resumed}, {"w": g})
    second = OPTIMIZERS.create(name, settings)
    second.load_state(first.export_state(), first.step_count, f64)
    for g in grads[3:]:
        second.step({"w": resumed}, {"w": g})
    np.testing.assert_array_equal(resumed, straight)


def test_bad_settings_name_the_field():
    with pytest.raises(SpecError) as err:
        OPTIMIZERS.create("adam", {"learning_rate": -1})
    assert err.value.field == "learning_rate"
    with pytest.raises(SpecError, match="did you mean 'learning_rate'"):
        OPTIMIZERS.create("adam", {"learnig_rate": 0.1})
    with pytest.raises(SpecError, match="did you mean 'adam'"):
        OPTIMIZERS.create("adma")


@pytest.mark.parametrize("weight_decay", [0.01, 0.3])
def test_adamw_matches_torch(weight_decay):
    torch = torch_reference()
    rng = np.random.default_rng(0)
    p = rng.normal(size=(3, 4))
    tp = torch.tensor(p.copy(), requires_grad=True)
    ref = torch.optim.AdamW([tp], lr=0.01, weight_decay=weight_decay)
    ours = OPTIMIZERS.create("adamw", {"learning_rate": 0.01, "weight_decay": weight_decay})
    for _ in range(5):
        g = rng.normal(size=p.shape)
        ours.step({"w": p}, {"w": g})
        tp.grad = torch.tensor(g)
        ref.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.state["w"]["v"], ref.state[tp]["exp_avg_sq"].numpy())


def test_adamw_decay_is_decoupled_from_the_gradient():
    p = np.array([2.0])
    opt = OPTIMIZERS.create("adamw", {"learning_rate": 0.1, "weight_decay": 0.5})
    opt.step({"w": p}, {"w": np.array([0.0])})  # m = v = 0: only the decay moves p
    assert p[0] == pytest.approx(2.0 * (1 - 0.1 * 0.5))
    assert opt.config()["weight_decay"] == 0.5 and opt.state["w"]["m"][0] == 0.0
    assert OPTIMIZERS.create("adamw").weight_decay == 0.01
