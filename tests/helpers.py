"""What several test modules share: the bundled data sets, a small iris spec, the command line
through CliRunner and the check that an error is one line on stderr.

A plain module (``from helpers import ...``): pyproject's ``pythonpath = ["tests"]`` puts this
folder on sys.path; fixtures stay in the modules or in conftest.py.
"""

from __future__ import annotations

import hashlib
import os
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nncli.cli import app

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "datasets"
IRIS = DATASETS / "iris.csv"
PENGUINS = DATASETS / "penguins.csv"


def iris_spec(training: str) -> str:
    """A small iris classifier spec (iris.csv next to it, output out/model.h5) with the given
    flow-style ``training:`` mapping, e.g. ``{epochs: 2, batch_size: 16}``."""
    return f"""\
version: 1
seed: 0
data: {{kind: csv, path: iris.csv, target: species, validation_split: 0.2}}
model:
  layers:
    - {{type: dense, units: 8, activation: relu}}
    - {{type: dense, units: auto, activation: softmax}}
loss: cross_entropy
optimizer: {{type: adam, learning_rate: 0.01}}
training: {training}
output: out/model.h5
"""


def text_spec(folder: Path, data: str, layers: str, top: str = "", optimizer: str = "") -> Path:
    """``folder/text.yaml`` on the first 3,000 characters of shakespeare.txt (copied beside it):
    ``data`` the text section's settings, ``layers`` a flow-style list, ``top`` more top-level
    lines, ``optimizer`` more adam settings; one epoch in batches of 32 into out/model.h5."""
    (folder / "text.txt").write_text((DATASETS / "shakespeare.txt").read_text()[:3000])
    spec = folder / "text.yaml"
    spec.write_text(
        f"version: 1\nseed: 0\n{top}data: {{kind: text, path: text.txt, {data}}}\n"
        f"model: {{layers: {layers}}}\nloss: cross_entropy\n"
        f"optimizer: {{type: adam, learning_rate: 0.01{optimizer}}}\n"
        "training: {epochs: 1, batch_size: 32}\noutput: out/model.h5\n"
    )
    return spec


def torch_reference() -> types.ModuleType:
    """PyTorch, the oracle of every comparison with another implementation.

    Skipped on a machine without it; required in CI (``CI=true``), which installs the
    ``reference`` extra, so a comparison can never skip where it gates a merge.
    """
    if os.environ.get("CI") == "true":
        import torch

        return torch
    return pytest.importorskip("torch")


def invoke(*args: object):
    """``nncli ARGS`` in this process -> click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, code: int, *needles: str) -> str:
    """Check the run exited with ``code`` after one ``nncli: error:`` line on stderr holding every
    needle, and no traceback anywhere -> that line."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nncli: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def sha(path: Path) -> str:
    """SHA-256 of a file's bytes, to show a file was left exactly as it was."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def csv_cfg(path: Path, **settings) -> types.SimpleNamespace:
    """A ``data: {kind: csv}`` section as the loaders see it: the spec's defaults, no splits,
    target ``species``; ``settings`` override."""
    values = dict(
        kind="csv",
        path=path,
        target="species",
        features=None,
        categorical=[],
        normalize="standard",
        missing="error",
        na_values=[],
        validation_split=0.0,
        test_split=0.0,
        validation=None,
        test=None,
    )
    values.update(settings)
    return types.SimpleNamespace(**values)
