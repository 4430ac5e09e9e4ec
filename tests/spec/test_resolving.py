"""validate is train without the training: on every bundled spec, and on specs mutated in ways
users get wrong, ``nncli validate`` and ``nncli train --smoke`` reach the same verdict, with the
same exit code and the same first error line. Both resolve the spec through ``resolving.resolve``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import IRIS, ROOT, invoke, iris_spec, one_error_line, sha
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncli import backend
from nncli import spec as spec_module
from nncli.spec import resolve as resolving

MODELS = ROOT / "models"
HEAVY = {
    "digits-cnn.yaml",
    "shakespeare-char.yaml",
    "shakespeare-words.yaml",
    "digits-cnn-batchnorm.yaml",
    "digits-resnet.yaml",
    "shakespeare-transformer.yaml",
}  # seconds per smoke run: the slow mark
CHEAP = ["iris.yaml", "neuron.yaml", "penguins.yaml", "sunspots-lstm.yaml", "xor.yaml"]

# --set values a user gets wrong (and a few right ones), applied to any spec
MUTATIONS = [
    "model.input=[7]",
    "model.input=[4]",
    "model.input=[12, 1]",
    "model.input=[1, 12]",
    "training.early_stopping.monitor=val_acc",
    "training.early_stopping.monitor=accuracy",
    "training.early_stopping.monitor=val_accuracy",
    "training.early_stopping.monitor=val_rmse",
    "training.early_stopping.monitor=loss",
    "training.early_stopping.monitor=grad_norm",
    "training.early_stopping={monitor: val_loss, patience: 2}",
    "data.validation_split=0",
    "model.layers[0].units=auto",
    "model.layers[0].units=-3",
    "model.layers[0].units=0",
    "model.layers[0].type=dens",
    "model.layers[0].type=lstm",
    "model.layers[0].activation=rleu",
    "model.layers[0].activation=tanh",
    "loss=mse",
    "loss=cross_entropy",
    "loss=binary_cross_entropy",
    "loss=huber",
    "optimizer.learning_rate=-1",
    "optimizer.clip_norm=1.0",
    "training.batch_size=100000",
    "training.batch_size=full",
    "training.epochs=0",
    "device=auto",
    "device=tpu",
    "dtype=float16",
]


def _error_line(result) -> str | None:
    lines = [line for line in result.stderr.splitlines() if line.startswith("nncli: error:")]
    return lines[0] if lines else None


def _verdicts(spec: Path, overrides: list[str]) -> tuple[tuple, tuple]:
    sets = [word for o in overrides for word in ("--set", o)]
    checked = invoke("validate", spec, *sets)
    trained = invoke("train", spec, "--smoke", *sets)
    return (
        (checked.exit_code, _error_line(checked)),
        (trained.exit_code, _error_line(trained)),
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(p.name, marks=[pytest.mark.slow] if p.name in HEAVY else [])
        for p in sorted(MODELS.glob("*.yaml"))
    ],
)
def test_every_bundled_spec_validates_and_trains(name: str):
    checked, trained = _verdicts(MODELS / name, [])
    assert checked == trained == (0, None)


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(CHEAP),
    overrides=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=2, unique=True),
)
def test_validate_and_train_agree_on_mutated_specs(name: str, overrides: list[str]):
    checked, trained = _verdicts(MODELS / name, overrides)
    assert checked == trained, (name, overrides)


def test_model_input_must_agree_with_the_data():
    result = invoke("validate", MODELS / "iris.yaml", "--set", "model.input=[7]")
    one_error_line(result, 2, "model.input", "expected [4]", "got [7]")
    result = invoke("train", MODELS / "iris.yaml", "--smoke", "--set", "model.input=[7]")
    one_error_line(result, 2, "model.input", "expected [4]", "got [7]")


def test_channels_last_input_names_the_order():
    result = invoke("validate", MODELS / "digits-cnn.yaml", "--set", "model.input=[8, 8, 1]")
    one_error_line(result, 2, "expected [1, 8, 8]", "got [8, 8, 1]", "channels come first")


def test_monitor_is_checked_against_the_tasks_metrics():
    wrong = ["--set", "training.early_stopping.monitor=val_acc"]
    line = one_error_line(invoke("validate", MODELS / "iris.yaml", *wrong), 2)
    assert "did you mean 'val_accuracy'?" in line
    regression = ["--set", "training.early_stopping.monitor=val_accuracy"]
    line = one_error_line(invoke("train", MODELS / "sunspots-lstm.yaml", *regression), 2)
    assert "val_rmse" in line and "a regression task" in line


def test_monitors_follow_the_task_validation_and_clipping():
    assert resolving.monitors("classification", False, False) == ["loss", "accuracy"]
    assert resolving.monitors("regression", True, True) == [
        *("loss", "rmse", "mae", "grad_norm"),
        *("val_loss", "val_rmse", "val_mae"),
    ]


def test_resolve_gives_train_what_it_needs():
    spec = spec_module.load(MODELS / "iris.yaml")
    ready = resolving.resolve(spec)
    assert ready.device == "device: cpu" and ready.backend.name == "cpu"
    assert ready.net.input_shape == (4,) and ready.net.output_shape == (3,)
    assert ready.early_stopping.monitor == "val_loss" and ready.loss.task == "classification"


def test_device_auto_says_what_it_chose_and_why(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(backend, "choose_device", lambda: ("cpu", "CuPy not installed"))
    line = "device: cpu (auto: CuPy not installed)"
    result = invoke("validate", MODELS / "xor.yaml", "--device", "auto")
    assert result.exit_code == 0, result.stderr
    assert line in result.stdout.splitlines()
    result = invoke("train", MODELS / "xor.yaml", "--smoke", "--set", "device=auto")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == line


def test_validate_refuses_an_output_over_an_input_as_train_does(tmp_path: Path):
    spec = tmp_path / "iris.yaml"
    spec.write_text(iris_spec("{epochs: 1, batch_size: 16}").replace("out/model.h5", "iris.csv"))
    shutil.copy(IRIS, tmp_path / "iris.csv")
    before = sha(tmp_path / "iris.csv")
    lines = [
        one_error_line(invoke(command, spec), 2, "would overwrite the input file")
        for command in ("validate", "train")
    ]
    # the same line; train's ends with a hint naming its --output, which validate does not take
    assert lines[1] == lines[0] + "; choose another --output"
    assert sha(tmp_path / "iris.csv") == before
