"""What several test modules share: the bundled data sets, a small iris spec, the command line
through CliRunner and the check that an error is one line on stderr.

A plain module (``from helpers import ...``): pyproject's ``pythonpath = ["tests"]`` puts this
folder on sys.path; fixtures stay in the modules or in conftest.py.
"""

from __future__ import annotations

import hashlib
import types
from pathlib import Path

import numpy as np
from PIL import Image
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


def image_folder(root: Path) -> Path:
    """Two class folders, ``dark`` and ``light``, of six 8x8 grayscale PNGs each."""
    rng = np.random.default_rng(0)
    for c, label in enumerate(("dark", "light")):
        for k in range(6):
            pixels = (rng.integers(0, 90, (8, 8)) + 150 * c).astype(np.uint8)
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / label / f"{k}.png")
    return root


IMAGE_SPEC = """\
data: {kind: images, path: d, validation_split: 0.0}
model: {layers: [flatten, {type: dense, units: auto, activation: softmax}]}
loss: cross_entropy
training: {epochs: 1, batch_size: 4}
output: out/model.h5
"""
