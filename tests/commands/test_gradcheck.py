"""``nncli gradcheck``: every bundled spec's network passes in float64, and a layer whose
backward is broken fails with exit 1 and names the layer and parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import IRIS, ROOT, invoke, iris_spec, one_error_line

from nncli.commands.gradcheck import TOLERANCE, gradcheck
from nncli.engine.layers.dense import Dense

MODELS = sorted((ROOT / "models").glob("*.yaml"))


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    path = tmp_path / "iris.yaml"
    path.write_text(iris_spec("{epochs: 1, batch_size: 16}"))
    return path


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_every_bundled_spec_passes(path: Path):
    checked = gradcheck(path, rows=2)
    assert checked["rows"] == 2
    assert checked["parameters"], "no parameter was checked"
    compared = [p for p in checked["parameters"] if not p["zero"]]
    assert compared and all(p["ok"] for p in checked["parameters"])
    assert max(p["error"] for p in compared) <= TOLERANCE, checked["parameters"]


def test_every_parameter_gets_a_row(spec: Path):
    rows = gradcheck(spec)["parameters"]
    assert [(r["layer"], r["type"], r["parameter"]) for r in rows] == [
        (0, "dense", "weight"),
        (0, "dense", "bias"),
        (1, "dense", "weight"),
        (1, "dense", "bias"),
    ]
    assert [r["size"] for r in rows] == [32, 8, 24, 3]
    assert all(r["checked"] == min(16, r["size"]) and r["ok"] for r in rows)


def test_command_prints_the_table_and_exits_0(spec: Path):
    result = invoke("gradcheck", spec, "--rows", 3)
    assert result.exit_code == 0, result.stderr
    assert "3 rows" in result.stdout and "weight" in result.stdout and "FAIL" not in result.stdout


def test_broken_backward_fails_with_exit_1(spec: Path, monkeypatch: pytest.MonkeyPatch):
    backward = Dense.backward

    def broken(self, dy):  # the weight gradient 1% too large: a plausible slip in the calculus
        dx = backward(self, dy)
        self.grads["weight"][...] *= 1.01
        return dx

    monkeypatch.setattr(Dense, "backward", broken)
    result = invoke("gradcheck", spec)
    assert result.exit_code == 1, result.stdout
    failed = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert len(failed) == 2 and all("weight" in line for line in failed), result.stdout


def test_data_option_takes_rows_from_another_file(spec: Path, tmp_path: Path):
    lines = IRIS.read_text().splitlines()
    other = tmp_path / "few.csv"
    other.write_text("\n".join([lines[0], *lines[1::3]]) + "\n")  # every third row
    assert gradcheck(spec, data=other, rows=2)["rows"] == 2
    result = invoke("gradcheck", spec, "--data", tmp_path / "missing.csv")
    one_error_line(result, 3, "missing.csv")


def test_a_bias_in_front_of_batchnorm_has_no_gradient_and_passes_as_such():
    """The normalisation removes a constant shift, so the conv bias before it has a zero
    gradient: its relative error between two roundings means nothing and is not a failure."""
    checked = gradcheck(ROOT / "models" / "walks-conv1d.yaml", rows=4)
    biases = [
        p for p in checked["parameters"] if p["type"] == "conv1d" and p["parameter"] == "bias"
    ]
    assert biases and all(p["zero"] and p["ok"] for p in biases)
    weights = [p for p in checked["parameters"] if p["parameter"] == "weight"]
    assert weights and not any(p["zero"] for p in weights)
