"""``nncli lr-find`` (nncli/training/range_test.py, commands/lr_find.py): Smith's range test on
iris suggests a rate inside the swept range with which a short run learns; the rate grows
exponentially, the smoothed loss is the bias-corrected moving average, the test stops when
it explodes; the CSV holds each step."""

import csv

import numpy as np
from helpers import IRIS, invoke, iris_spec

from nncli import spec as spec_module
from nncli.commands.train import train
from nncli.training.range_test import BETA, rate_at, steepest


def test_the_rate_grows_exponentially_from_low_to_high():
    rates = [rate_at(i, 5, 1e-4, 1.0) for i in range(5)]
    np.testing.assert_allclose(rates, [1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-12)


def test_the_suggestion_is_the_steepest_descent_before_the_minimum():
    rates = np.logspace(-5, 0, 30)
    smoothed = np.concatenate(
        [np.full(10, 1.0), np.linspace(1.0, 0.2, 10), np.linspace(0.2, 3, 10)]
    )
    smoothed[14] -= 0.2  # the steepest fall: into step 14
    assert steepest(rates, smoothed) in (rates[13], rates[14])


def test_lr_find_on_iris_suggests_a_rate_with_which_training_learns(tmp_path):
    (tmp_path / "iris.csv").write_text(IRIS.read_text())
    spec = tmp_path / "spec.yaml"
    spec.write_text(iris_spec("{epochs: 20, batch_size: 16}"))
    result = invoke("lr-find", spec, "--steps", "60", "--output-dir", tmp_path / "lr")
    assert result.exit_code == 0, result.output
    setting = result.stdout.split("--set ")[1].split()[0]
    rate = float(setting.split("=")[1])
    assert 1e-7 < rate < 10.0
    with open(tmp_path / "lr" / "lr_find.csv") as f:
        rows = list(csv.DictReader(f))
    assert 10 < len(rows) <= 60
    losses = np.array([float(r["loss"]) for r in rows])
    expected = [
        np.average(losses[: i + 1], weights=BETA ** np.arange(i, -1, -1))
        for i in range(len(losses))
    ]
    np.testing.assert_allclose([float(r["smoothed_loss"]) for r in rows], expected, rtol=1e-9)
    assert (tmp_path / "lr" / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = train(spec_module.load(spec, [setting]))
    first, last = run.history.epochs[0], run.history.epochs[-1]
    assert last["val_accuracy"] >= 0.9 and last["loss"] < first["loss"] / 2


def test_the_test_stops_when_the_smoothed_loss_explodes():
    from nncli.engine import OPTIMIZERS
    from nncli.engine.losses import make_loss
    from nncli.engine.network import Network
    from nncli.training.range_test import EXPLODES, range_test

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]
    net = Network([{"type": "dense", "units": 3, "activation": "softmax"}], (4,), seed=0)
    sgd = OPTIMIZERS.create("sgd", {})
    found = range_test(net, make_loss("cross_entropy"), sgd, (x, y, None), batch_size=8,
                       seed=0, steps=100, low=1e-3, high=1e6)  # fmt: skip
    assert found.stopped in ("exploded", "non-finite loss") and len(found.rates) < 100
    if found.stopped == "exploded":
        assert found.smoothed[-1] > EXPLODES * found.smoothed.min()
    assert found.low <= found.suggestion <= found.rates[-1]
