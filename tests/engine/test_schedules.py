"""Learning-rate schedules: the closed forms, PyTorch's schedulers where torch is installed, the
spec's checks, and a resumed run that continues its schedule bit for bit."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line, torch_reference

from nncli.engine.schedules import SCHEDULES
from nncli.errors import SpecError

LR = 0.1


def rates(settings: dict, epochs: int, monitored: list[float] | None = None) -> list[float]:
    """The rate of epochs 1..epochs, the schedule hearing ``monitored[e - 1]`` after epoch e."""
    settings = dict(settings)
    schedule = SCHEDULES.create(settings.pop("type"), settings)
    schedule.begin(epochs)
    out = []
    for e in range(1, epochs + 1):
        out.append(schedule.rate(LR, e))
        schedule.observe(e, {"val_loss": monitored[e - 1] if monitored else 0.0})
    return out


def test_closed_forms():
    got = rates({"type": "step", "step_size": 3, "gamma": 0.5}, 7)
    assert got == [LR * 0.5 ** ((e - 1) // 3) for e in range(1, 8)]
    got = rates({"type": "exponential", "gamma": 0.9}, 5)
    assert got == [LR * 0.9 ** (e - 1) for e in range(1, 6)]
    got = rates({"type": "cosine", "min_learning_rate": 0.01}, 5)  # T = the run's 5 epochs
    want = [0.01 + (LR - 0.01) * (1 + math.cos(math.pi * (e - 1) / 5)) / 2 for e in range(1, 6)]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert got[0] == LR


def test_warmup_ramps_linearly_then_follows_the_schedule():
    got = rates({"type": "exponential", "gamma": 0.5, "warmup_epochs": 4}, 6)
    want = [LR * 0.5 ** (e - 1) * min(1.0, e / 4) for e in range(1, 7)]
    assert got == want
    assert got[0] == LR * 0.25


def test_plateau_cuts_after_patience_and_stops_at_the_floor():
    flat = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    got = rates(
        {"type": "plateau", "factor": 0.5, "patience": 1, "min_learning_rate": 0.03}, 7, flat
    )
    # bad epochs 2, 3 (> patience 1): cut after epoch 3 -> epoch 4 at 0.05; again after 5
    assert got == [LR, LR, LR, 0.05, 0.05, 0.03, 0.03]


def test_plateau_state_round_trips():
    settings = {"factor": 0.5, "patience": 0}
    a = SCHEDULES.create("plateau", settings)
    for e, v in enumerate([3.0, 2.0, 2.5, 2.6], start=1):
        a.rate(LR, e)
        a.observe(e, {"val_loss": v})
    b = SCHEDULES.create("plateau", settings)
    b.load_state(a.state())
    assert b.state() == a.state() and b.rate(LR, 5) == a.rate(LR, 5) == LR * 0.25


def test_plateau_names_a_monitor_the_run_does_not_log():
    schedule = SCHEDULES.create("plateau", {"monitor": "val_los"})
    schedule.rate(LR, 1)
    with pytest.raises(SpecError, match="did you mean 'val_loss'"):
        schedule.observe(1, {"epoch": 1, "loss": 0.5, "val_loss": 0.6, "lr": LR})


TORCH_CASES = [
    ({"type": "step", "step_size": 2, "gamma": 0.3}, "StepLR", {"step_size": 2, "gamma": 0.3}),
    ({"type": "exponential", "gamma": 0.8}, "ExponentialLR", {"gamma": 0.8}),
    (
        {"type": "cosine", "epochs": 6, "min_learning_rate": 0.001},
        "CosineAnnealingLR",
        {"T_max": 6, "eta_min": 0.001},
    ),
    (
        {"type": "plateau", "factor": 0.5, "patience": 2, "min_learning_rate": 0.01},
        "ReduceLROnPlateau",
        {"factor": 0.5, "patience": 2, "min_lr": 0.01},
    ),
]


@pytest.mark.parametrize(("settings", "name", "torch_settings"), TORCH_CASES)
def test_matches_pytorch_schedulers(settings, name, torch_settings):
    torch = torch_reference()
    epochs = 14
    rng = np.random.default_rng(0)
    monitored = list(np.round(1.0 + rng.random(epochs), 1))  # ties and rises: plateaus happen
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = getattr(torch.optim.lr_scheduler, name)(optimizer, **torch_settings)
    want = []
    for e in range(1, epochs + 1):
        want.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(monitored[e - 1]) if name == "ReduceLROnPlateau" else scheduler.step()
    np.testing.assert_allclose(rates(settings, epochs, monitored), want, rtol=1e-12)


# -- the spec ---------------------------------------------------------------------------------
@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(IRIS, tmp_path / "iris.csv")
    return tmp_path


def spec_with_schedule(work: Path, schedule: str, lr: float = 0.05) -> Path:
    text = iris_spec("{epochs: 6, batch_size: 16}").replace(
        "learning_rate: 0.01}", f"learning_rate: {lr}, schedule: {schedule}}}"
    )
    path = work / "iris.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("schedule", "needles"),
    [
        ("{type: stepp, step_size: 2}", ("optimizer.schedule", "did you mean 'step'")),
        ("{type: step, step_size: 2, gama: 0.5}", ("optimizer.schedule", "did you mean 'gamma'")),
        ("{type: step, step_size: 0}", ("optimizer.schedule.step_size", "got 0")),
        ("{type: plateau, monitor: val_acc}", ("optimizer.schedule.monitor", "'val_accuracy'")),
    ],
)
def test_bad_schedules_are_spec_errors(work: Path, schedule: str, needles):
    result = invoke("validate", spec_with_schedule(work, schedule))
    one_error_line(result, 2, *needles)


def history(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def weights(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {f"{g}/{p}": f["model"][g][p][()] for g in f["model"] for p in f["model"][g]}


PLATEAU = "{type: plateau, monitor: val_accuracy, factor: 0.5, patience: 0, warmup_epochs: 2}"


@pytest.mark.slow
def test_resume_continues_the_schedule_bitwise(work: Path):
    spec = spec_with_schedule(work, PLATEAU)
    straight, half, resumed = (work / d / "m.h5" for d in "abc")
    for out, epochs in ((straight, "6"), (half, "3")):
        assert invoke("train", spec, "--epochs", epochs, "--output", out, "--quiet").exit_code == 0
    result = invoke(
        "train", spec, "--epochs", "6", "--resume", half, "--output", resumed, "--quiet"
    )
    assert result.exit_code == 0, result.stderr
    a, c = weights(straight), weights(resumed)
    assert a.keys() == c.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], c[k])
    lrs = [float(row["lr"]) for row in history(straight.with_name("m.history.csv"))]
    assert lrs == [float(row["lr"]) for row in history(resumed.with_name("m.history.csv"))]
    assert lrs[:2] == [0.025, 0.05] and min(lrs) < 0.05  # warmed up, then cut at a plateau


@pytest.mark.slow
def test_a_new_learning_rate_on_resume_rescales_the_schedule(work: Path):
    spec = spec_with_schedule(work, "{type: step, step_size: 2, gamma: 0.5}")
    half, resumed = work / "a" / "m.h5", work / "b" / "m.h5"
    assert invoke("train", spec, "--epochs", "3", "--output", half, "--quiet").exit_code == 0
    result = invoke(
        "train", spec, "--epochs", "5", "--resume", half, "--output", resumed, "--quiet",
        "--set", "optimizer.learning_rate=0.2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lrs = [float(row["lr"]) for row in history(resumed.with_name("m.history.csv"))]
    assert lrs == [0.05, 0.05, 0.025, 0.2 * 0.5, 0.2 * 0.25]  # epoch 4 at 0.2 g^1
