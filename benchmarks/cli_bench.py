"""The command line's costs: ``nncli --help`` wall time, and ``nncli train`` on W1 against the
engine's own ``fit`` on the same data (the per-epoch time, and the fixed cost of a run: start-up,
reading the CSV, writing the checkpoint)."""

from __future__ import annotations

import csv
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from workloads import WORKLOADS, make_data


def nncli_command() -> list[str]:
    """The installed ``nncli`` script beside this interpreter, else ``python -m nncli``."""
    script = Path(sys.executable).parent / "nncli"
    if script.exists():
        return [str(script)]
    found = shutil.which("nncli")
    return [found] if found else [sys.executable, "-m", "nncli"]


def help_time(env: dict[str, str], repeats: int) -> dict[str, Any]:
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        subprocess.run([*nncli_command(), "--help"], env=env, check=True, capture_output=True)
        if i:  # the first run warms the file cache
            times.append(time.perf_counter() - t0)
    return {"times": times, "median": statistics.median(times)}


SPEC = """version: 1
name: w1
seed: 0
data: {{kind: csv, path: w1.csv, target: label, normalize: none, validation_split: 0}}
model:
  layers:
    - {{type: dense, units: 256, activation: relu}}
    - {{type: dense, units: 128, activation: relu}}
    - {{type: dense, units: 10, activation: softmax}}
loss: cross_entropy
optimizer: {{type: adam, learning_rate: 0.001}}
training: {{epochs: {epochs}, batch_size: 64}}
"""


def write_w1(folder: Path, quick: bool, epochs: int) -> Path:
    """W1's data as a CSV (4 decimals) and a spec that trains W1's network on it."""
    x, labels = make_data(WORKLOADS["W1"], quick)
    header = ",".join([*(f"p{i}" for i in range(x.shape[1])), "label"])
    table = np.column_stack([x, labels.astype(np.float32)])
    np.savetxt(folder / "w1.csv", table, delimiter=",", fmt="%.4g", header=header, comments="")
    spec = folder / "w1.yaml"
    spec.write_text(SPEC.format(epochs=epochs))
    return spec


def train_time(folder: Path, env: dict[str, str], quick: bool, epochs: int) -> dict[str, Any]:
    """One ``nncli train`` run: wall time and the per-epoch times from its history.csv."""
    spec = write_w1(folder, quick, epochs)
    out = folder / "out" / "model.h5"
    t0 = time.perf_counter()
    done = subprocess.run(
        [*nncli_command(), "train", str(spec), "--output", str(out), "--force"],
        env=env,
        capture_output=True,
        text=True,
        cwd=folder,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"nncli train failed ({done.returncode}): {done.stderr.strip()}")
    with open(out.parent / "history.csv", newline="") as f:
        epoch_times = [float(row["time"]) for row in csv.DictReader(f)]
    return {"wall": wall, "epoch_times": epoch_times, "fixed": wall - sum(epoch_times)}
