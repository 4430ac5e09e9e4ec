"""The names users bring from Keras and PyTorch (issue 31, ``nncli/spec/conventions.py``): the
spec version that decides what ``patience`` means, with its note, kept by ``--resume``; a
batchnorm momentum written the Keras way refused with its equivalent; the lines for
``clipnorm``, ``clipvalue``, ``global_clipnorm`` and ``kernel_regularizer``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, keras_stop_epoch, one_error_line

from nncli.checkpoint import model as model_io
from nncli.spec import loads

# val_loss watched with mode max: it falls while adam learns iris, so epoch 1 stays the best
NEVER_BETTER = "{monitor: val_loss, mode: max, patience: 2, restore_best: false}"


def _iris(folder: Path, version: str | None, epochs: int = 12, name: str = "iris.yaml") -> Path:
    (folder / "iris.csv").write_bytes(IRIS.read_bytes())
    text = iris_spec(f"{{epochs: {epochs}, batch_size: 16, early_stopping: {NEVER_BETTER}}}")
    text = text.replace("version: 1\n", "" if version is None else f"version: {version}\n")
    spec = folder / name
    spec.write_text(text)
    return spec


def _stopped_at(model: Path) -> tuple[int, list[float]]:
    training = model_io.load(model).training
    return int(training["epoch"]), list(np.asarray(training["history"]["val_loss"]))


def _expected_stop(val_loss: list[float], patience: int) -> int | None:
    """Keras's rule (``helpers.keras_stop_epoch``) on the logged values, mode max."""
    return keras_stop_epoch([-v for v in val_loss], patience)


@pytest.mark.parametrize(("version", "patience"), [("2", 2), ("1", 3), (None, 3)])
def test_a_run_stops_where_keras_would_with_its_versions_patience(tmp_path, version, patience):
    """Version 2: Keras's patience 2; version 1 (written or not): Keras's patience 3."""
    result = invoke("train", _iris(tmp_path, version), "--quiet")
    assert result.exit_code == 0, result.stderr
    last, val_loss = _stopped_at(tmp_path / "out" / "model.h5")
    assert last < 12 and last == _expected_stop(val_loss, patience)
    notes = [line for line in result.stderr.splitlines() if line.startswith("nncli: note:")]
    if version is None:  # once, naming the line, what it does and what to write
        assert len(notes) == 1, result.stderr
        assert "iris.yaml:" in notes[0] and "read as version 1" in notes[0]
        assert "patience: 2 stops after 3 epochs" in notes[0] and "version: 2" in notes[0]
    else:
        assert notes == [], result.stderr


def test_resume_keeps_the_checkpoints_meaning_of_patience(tmp_path):
    """A version 1 checkpoint resumed under a version 2 spec stops after patience + 1, stores
    version 1 again, and says so once."""
    first = invoke("train", _iris(tmp_path, "1", epochs=2), "--quiet")
    assert first.exit_code == 0, first.stderr
    out = tmp_path / "out" / "model.h5"
    spec = _iris(tmp_path, "2", name="again.yaml")
    result = invoke("train", spec, "--resume", out, "--output", tmp_path / "r.h5", "--quiet")
    assert result.exit_code == 0, result.stderr
    last, val_loss = _stopped_at(tmp_path / "r.h5")
    assert last == _expected_stop(val_loss, 3) != _expected_stop(val_loss, 2)
    assert loads(model_io.load(tmp_path / "r.h5").spec_yaml, "stored").version == 1
    assert "the run keeps version 1, where patience: 2 stops after 3 epochs" in result.stderr


def test_a_spec_without_version_is_version_1_and_init_writes_version_2(tmp_path):
    text = iris_spec("{epochs: 2}").replace("version: 1\n", "")
    assert loads(text, "s").version == 1
    spec = tmp_path / "starter.yaml"
    assert invoke("init", IRIS, "--output", spec).exit_code == 0
    written = spec.read_text()
    assert "\nversion: 2\n" in written
    # the starter's run is the one version 1 gave: its patience 10 is Keras's 11
    assert "patience: 11}" in written and "stop after 11 epochs" in written
    assert loads(written, "starter", tmp_path).version == 2


@pytest.mark.parametrize(("keras", "ours"), [(0.99, "0.01"), (0.9, "0.1"), (0.6, "0.4")])
def test_a_keras_batchnorm_momentum_is_refused_with_its_equivalent(tmp_path, keras, ours):
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    text = iris_spec("{epochs: 1}").replace(
        "    - {type: dense, units: auto",
        f"    - {{type: batchnorm, momentum: {keras}}}\n    - {{type: dense, units: auto",
    )
    (tmp_path / "bn.yaml").write_text(text)
    line = one_error_line(invoke("validate", tmp_path / "bn.yaml"), 2, "model.layers[1].momentum")
    assert "new = (1 - momentum) old + momentum batch" in line  # ours (PyTorch's)
    assert "new = momentum old + (1 - momentum) batch" in line  # Keras's
    assert f"Keras's {keras} is momentum: {ours} here" in line and "bn.yaml:7:" in line
    assert loads(text.replace(str(keras), "0.5"), "s", tmp_path)  # 0.5 and below: accepted


def test_a_batchnorm_inside_a_residual_block_is_checked_too(tmp_path):
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    block = "{type: residual, layers: [{type: dense, units: 8}, {type: batchnorm, momentum: 0.9}]}"
    text = iris_spec("{epochs: 1}").replace(
        "    - {type: dense, units: auto", f"    - {block}\n    - {{type: dense, units: auto"
    )
    (tmp_path / "r.yaml").write_text(text)
    result = invoke("validate", tmp_path / "r.yaml")
    one_error_line(result, 2, "model.layers[1].layers[1].momentum", "momentum: 0.1 here")


@pytest.mark.parametrize(
    ("key", "needles"),
    [
        ("clipnorm", ["each weight's gradient by its own norm", "global_clipnorm", "clip_value"]),
        ("global_clipnorm", ["Keras's global_clipnorm is optimizer.clip_norm", "global norm"]),
        ("clipvalue", ["optimizer.clip_value", "clip_grad_value_", "clip_norm is the global"]),
    ],
)
def test_keras_clipping_names_get_the_line_that_says_the_difference(tmp_path, key, needles):
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    text = iris_spec("{epochs: 1}").replace("learning_rate: 0.01}", f"{key}: 1.0}}")
    (tmp_path / "s.yaml").write_text(text)
    line = one_error_line(invoke("validate", tmp_path / "s.yaml"), 2, f"unknown key {key!r}")
    assert "did you mean" not in line  # never offered as a synonym
    for needle in needles:
        assert needle in line, line


def test_kernel_regularizer_gets_its_exact_equivalent(tmp_path):
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    text = iris_spec("{epochs: 1}").replace("units: 8,", "units: 8, kernel_regularizer: 0.01,")
    (tmp_path / "s.yaml").write_text(text)
    line = one_error_line(invoke("validate", tmp_path / "s.yaml"), 2, "kernel_regularizer")
    assert "c * sum(w^2)" in line and "optimizer.weight_decay: 2c" in line
    assert "decoupled_weight_decay: false" in line and "biases" in line


def test_clip_value_and_decoupled_weight_decay_are_spec_keys(tmp_path):
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    text = iris_spec("{epochs: 1}").replace(
        "learning_rate: 0.01}", "clip_value: 0.5, weight_decay: 0.1, decoupled_weight_decay: true}"
    )
    optimizer = loads(text, "s", tmp_path).optimizer
    assert optimizer["clip_value"] == 0.5 and optimizer["decoupled_weight_decay"] is True
    assert loads(iris_spec("{epochs: 1}"), "s", tmp_path).optimizer["clip_value"] is None


@pytest.mark.parametrize("command", ["validate", "cv"])
def test_validate_and_cv_say_the_note_once(tmp_path, command):
    spec = _iris(tmp_path, None, epochs=2)
    extra = ["--folds", "2", "--output", tmp_path / "cv"] if command == "cv" else []
    result = invoke(command, spec, *extra)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("read as version 1") == 1, result.stderr
