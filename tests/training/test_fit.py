"""``fit`` (nncli/training/loop.py) learns: XOR, a noisy sine curve; early stopping and the
weights it keeps; the same seed gives the same weights."""

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from helpers import assert_close_float32, chain_terms

from nncli.cli import report
from nncli.engine import OPTIMIZERS
from nncli.engine.history import History
from nncli.engine.losses import make_loss
from nncli.engine.network import Sequential
from nncli.training.callbacks import EarlyStopping
from nncli.training.loop import evaluate, fit, predict

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]]


def xor_net(seed=0):
    return Sequential(
        [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        (2,),
        seed=seed,
    )


def test_learns_xor():
    net = xor_net()
    history = fit(
        net,
        make_loss("cross_entropy"),
        OPTIMIZERS.create("adam", {"learning_rate": 0.05}),
        XOR_X,
        XOR_Y,
        epochs=200,
        batch_size=4,
    )
    assert history.epochs[-1]["accuracy"] == 1.0
    assert (predict(net, XOR_X).argmax(axis=1) == [0, 1, 1, 0]).all()


def test_fit_takes_a_fit_config_or_its_fields_as_keywords():
    from nncli.training.loop import FitConfig

    def run(**how: Any) -> tuple[History, Sequential]:
        net = xor_net()
        optimizer = OPTIMIZERS.create("adam", {"learning_rate": 0.05})
        return fit(net, make_loss("cross_entropy"), optimizer, XOR_X, XOR_Y, **how), net

    by_keywords, a = run(epochs=5, batch_size=2, seed=3)
    by_config, b = run(config=FitConfig(epochs=5, batch_size=2, seed=3))
    drop_time = [{k: v for k, v in e.items() if k != "time"} for e in by_keywords.epochs]
    assert drop_time == [{k: v for k, v in e.items() if k != "time"} for e in by_config.epochs]
    assert len(drop_time) == 5
    for name, weight in a.get_weights().items():
        np.testing.assert_array_equal(weight, b.get_weights()[name])
    with pytest.raises(TypeError):
        run(epochs=5, batch_sise=2)  # a misspelled option is not silently ignored


def test_early_stopping_is_a_callback_that_runs_before_the_others():
    from nncli.training.callbacks import Callback

    seen: list[int | None] = []

    class BestSoFar(Callback):  # what a periodic checkpoint reads at the end of an epoch
        def __init__(self, history: History):
            self.history = history

        def on_epoch_end(self, epoch, logs):
            seen.append(self.history.best_epoch)

    history = History()
    stopper = EarlyStopping(monitor="loss", patience=100)
    assert isinstance(stopper, Callback)
    fit(
        xor_net(),
        make_loss("cross_entropy"),
        OPTIMIZERS.create("adam", {"learning_rate": 0.05}),
        XOR_X,
        XOR_Y,
        epochs=3,
        batch_size=4,
        history=history,
        callbacks=[BestSoFar(history)],
        early_stopping=stopper,
    )
    assert seen == [1, 2, 3]  # the loss falls every epoch, and the best is known before them


def test_fits_a_noisy_sine_curve():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(512, 1)).astype(np.float32)
    y = (np.sin(x) + rng.normal(0, 0.05, size=x.shape)).astype(np.float32)
    net = Sequential(
        [
            {"type": "dense", "units": 32, "activation": "tanh"},
            {"type": "dense", "units": 32, "activation": "tanh"},
            {"type": "dense", "units": 1},
        ],
        (1,),
        seed=1,
    )
    loss = make_loss("mse")
    fit(
        net,
        loss,
        OPTIMIZERS.create("adam", {"learning_rate": 0.01}),
        x,
        y,
        epochs=60,
        batch_size=32,
    )
    grid = np.linspace(-3, 3, 200, dtype=np.float32)[:, None]
    assert evaluate(net, loss, grid, np.sin(grid))["rmse"] < 0.1


@pytest.mark.parametrize("batch_size", [1, "full", 3])
def test_batch_sizes(batch_size):
    net = xor_net()
    history = fit(
        net,
        make_loss("cross_entropy"),
        OPTIMIZERS.create("sgd", {"learning_rate": 0.1}),
        XOR_X,
        XOR_Y,
        epochs=2,
        batch_size=batch_size,
    )
    assert len(history.epochs) == 2 and np.isfinite(history.epochs[-1]["loss"])


def test_huge_logits_give_a_finite_loss_and_gradient():
    net = Sequential([{"type": "dense", "units": 3, "activation": "softmax"}], (2,))
    net.set_weights({"0.dense.weight": [[1e4, 0], [0, 1e4], [-1e4, 0]], "0.dense.bias": [0, 0, 0]})
    loss = make_loss("cross_entropy")
    net.fuse_output(loss.fused_activation)
    x = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[[2, 0]]  # confidently wrong: loss about 1e4
    value = float(loss.forward(net.forward(x), y, logits=net.logits))
    net.backward(loss.backward())
    assert np.isfinite(value) and value > 1e3
    assert all(np.isfinite(g).all() for g in net.named_gradients().values())


def _overshooting_fit(restore_best: bool = True) -> tuple[Sequential, np.ndarray, np.ndarray, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x[:, :1] * 2
    net = Sequential([{"type": "dense", "units": 1}], (3,))
    # a learning rate this large makes the validation loss worse after the first epochs
    history = fit(
        net,
        make_loss("mse"),
        OPTIMIZERS.create("sgd", {"learning_rate": 0.9}),
        x,
        y,
        epochs=30,
        batch_size=64,
        validation=(x[:16], y[:16]),
        early_stopping=EarlyStopping(patience=2, restore_best=restore_best),
    )
    return net, x, y, history


def test_early_stopping_restores_the_best_epoch():
    net, x, y, history = _overshooting_fit()
    best = min(history.column("val_loss"))
    assert history.best_value == best
    held = evaluate(net, make_loss("mse"), x[:16], y[:16])["loss"]
    assert_close_float32(held, best, chain_terms(net) + 16)  # the network, then a mean of 16


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stop_says_why_and_whose_weights_the_network_holds(restore_best):
    net, x, y, history = _overshooting_fit(restore_best)
    stop, best = history.early_stop, history.best_epoch
    assert stop is not None and history.stopped_early and history.monitor == "val_loss"
    assert (stop.epoch, stop.best_epoch, stop.patience) == (best + 3, best, 2)
    assert stop.epoch == history.epochs[-1]["epoch"] < 30 and stop.restored == restore_best
    value = f"val_loss {history.best_value:.4g}"
    logs = history.epochs[best - 1]  # that epoch's other validation metrics follow
    weights = (
        f"restored epoch {best}, {value}"
        if restore_best
        else f"the weights are the last epoch's ({stop.epoch}); the best was epoch {best}, {value}"
    )
    assert report.end_of_training(history) == [
        f"early stop at epoch {stop.epoch}: val_loss has not improved for 3 epochs (patience 2);"
        f" {weights}",
        f"best {value} at epoch {best}: val_rmse {logs['val_rmse']:.4g}, "
        f"val_mae {logs['val_mae']:.4g}",
    ]
    held = evaluate(net, make_loss("mse"), x[:16], y[:16])["loss"]
    expected = history.best_value if restore_best else history.epochs[-1]["val_loss"]
    assert_close_float32(held, expected, chain_terms(net) + 16)


def test_a_run_that_ends_without_stopping_names_the_weights_it_keeps():
    history = History(epochs=[{"epoch": e} for e in (1, 2, 3)], best_epoch=2, best_value=0.5)
    history.monitor = "val_accuracy"
    assert report.end_of_training(history) == [
        "best val_accuracy 0.5 at epoch 2 (the weights are the last epoch's, 3)"
    ]
    history.restored = True
    assert report.end_of_training(history) == [
        "best val_accuracy 0.5 at epoch 2 (its weights restored)"
    ]


TRAIN_SCRIPT = """
import json, sys, numpy as np
np.random.seed(int(sys.argv[2]))  # global state must not matter
from nncli.engine import OPTIMIZERS
from nncli.engine.losses import make_loss
from nncli.engine.network import Sequential
from nncli.training.loop import fit
rng = np.random.default_rng(5)
x = rng.normal(size=(40, 3)).astype(np.float32)
y = np.eye(2, dtype=np.float32)[(x[:, 0] > 0) * 1]
layers = [{"type": "dense", "units": 6, "activation": "relu"}, {"type": "dropout", "rate": 0.2},
          {"type": "dense", "units": 2, "activation": "softmax"}]
net = Sequential(layers, (3,), seed=int(sys.argv[1]))
fit(net, make_loss("cross_entropy"), OPTIMIZERS.create("adam", {}), x, y, epochs=3, batch_size=8,
    seed=int(sys.argv[1]))
print(json.dumps({k: v.tobytes().hex() for k, v in net.get_weights().items()}))
"""


def _train_in_fresh_process(seed: int, global_seed: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(seed), str(global_seed)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": str(global_seed), "PATH": ""},
    )
    return json.loads(out.stdout)


def test_same_seed_same_weights_in_fresh_processes_and_different_seed_differs():
    a = _train_in_fresh_process(0, 1)
    b = _train_in_fresh_process(0, 2)
    c = _train_in_fresh_process(1, 1)
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    ("monitor", "upwards"),
    [("val_accuracy", True), ("val_f1", True), ("val_auc", True), ("val_r2", True)]
    + [("val_loss", False), ("val_rmse", False), ("val_mae", False), ("loss", False)],
)
def test_auto_mode_keeps_the_best_epoch_of_every_score(monitor, upwards):
    stopper = EarlyStopping(monitor=monitor)
    assert stopper.maximize is upwards  # f1 once counted as lower-is-better: the worst kept
    assert stopper.improved(0.9, 0.8) is upwards
    assert EarlyStopping(monitor=monitor, mode="min").maximize is False
