"""Determinism: one spec and seed give bitwise identical checkpoints in fresh processes, whatever
global random state or hash seed the process starts with; predictions do not depend on the batch
size they are computed in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_network_close

from nncli.backend import get_backend
from nncli.checkpoint import model as model_io
from nncli.engine.network import Sequential
from nncli.training.loop import predict

ROOT = Path(__file__).resolve().parents[2]

PENGUINS_SPEC = """\
version: 1
seed: 11
data:
  kind: csv
  path: penguins.csv
  target: species
  missing: drop
  validation_split: 0.25
model:
  layers:
    - {type: dense, units: 16, activation: relu}
    - {type: dropout, rate: 0.3}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01, clip_norm: 5.0}
training: {epochs: 5, batch_size: 16}
"""

# a process whose global random state differs from a plain one's before nncli is imported
SEEDED = (
    "import random, sys, numpy; numpy.random.seed(12345); random.seed(99); "
    "numpy.random.random(17); sys.argv = ['nncli'] + sys.argv[1:]; "
    "from nncli.cli import app; app()"
)


def datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset under /model, /optimizer and /data, and the training history but its times."""
    found: dict[str, np.ndarray] = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset) and not name.endswith("history/time"):
            found[name] = obj[()]

    with h5py.File(path, "r") as f:
        for root in ("model", "optimizer", "data", "training"):
            f[root].visititems(lambda name, obj, root=root: visit(f"{root}/{name}", obj))
        found["optimizer.step"] = np.asarray(f["optimizer"].attrs["step"])
    return found


@pytest.mark.slow
def test_two_fresh_processes_give_bitwise_identical_checkpoints(tmp_path: Path):
    shutil.copy(ROOT / "datasets" / "penguins.csv", tmp_path / "penguins.csv")
    spec = tmp_path / "penguins.yaml"
    spec.write_text(PENGUINS_SPEC)
    runs = {
        "plain": ([sys.executable, "-m", "nncli"], "0"),
        "seeded": ([sys.executable, "-c", SEEDED], "4242"),
    }
    for name, (command, hash_seed) in runs.items():
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        args = ["train", str(spec), "--output", str(tmp_path / name / "model.h5"), "--quiet"]
        done = subprocess.run(
            command + args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    a, b = (datasets(tmp_path / name / "model.h5") for name in runs)
    assert a.keys() == b.keys()
    assert any(k.startswith("optimizer/") for k in a) and "data/encoder/categorical/fill" in a
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _nets() -> dict[str, tuple[Sequential, np.ndarray, np.ndarray | None]]:
    backend, rng = get_backend("cpu", "float32"), np.random.default_rng(5)
    n = 23
    dense = Sequential(
        [
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dropout", "rate": 0.5},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
        (6,),
        backend=backend,
        seed=1,
    )
    conv = Sequential(
        [
            {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
            {"type": "maxpool2d", "pool_size": 2},
            {"type": "flatten"},
            {"type": "dense", "units": 2},
        ],
        (1, 10, 10),
        backend=backend,
        seed=2,
    )
    lstm = Sequential(
        [{"type": "lstm", "units": 8}, {"type": "dense", "units": 1}],
        (9, 3),
        backend=backend,
        seed=3,
    )
    lengths = rng.integers(1, 10, size=n)
    mask = np.arange(9)[None, :] < lengths[:, None]
    return {
        "dense": (dense, rng.normal(size=(n, 6)).astype(np.float32), None),
        "conv": (conv, rng.normal(size=(n, 1, 10, 10)).astype(np.float32), None),
        "lstm-masked": (
            lstm,
            rng.normal(size=(n, 9, 3)).astype(np.float32) * mask[..., None],
            mask,
        ),
    }


@pytest.mark.parametrize("name", ["dense", "conv", "lstm-masked"])
def test_predictions_agree_across_batch_sizes(name: str):
    net, x, mask = _nets()[name]
    outputs = [predict(net, x, mask=mask, batch_size=size) for size in (1, 7, len(x))]
    for out in outputs[1:]:
        assert out.dtype == np.float32 and out.shape == outputs[0].shape
        # another batch size is another BLAS path (gemv, gemm blocks): float32's own tolerance
        assert_network_close(out, outputs[0], net, x, steps=9, mask=mask)


def test_a_reloaded_checkpoint_predicts_the_same_in_any_batch_size(tmp_path: Path):
    from nncli import spec as spec_module
    from nncli.commands import train as train_command

    shutil.copy(ROOT / "datasets" / "penguins.csv", tmp_path / "penguins.csv")
    (tmp_path / "p.yaml").write_text(PENGUINS_SPEC.replace("epochs: 5", "epochs: 2"))
    np.random.seed(7)  # global state nncli must ignore
    result = train_command.train(spec_module.load(tmp_path / "p.yaml"), output=tmp_path / "m.h5")
    model = model_io.load(result.output)
    x = np.random.default_rng(0).normal(size=(50, model.net.input_shape[0])).astype(np.float32)
    full = predict(model.net, x, batch_size=len(x))
    for size in (1, 7):
        assert_network_close(predict(model.net, x, batch_size=size), full, model.net, x)
