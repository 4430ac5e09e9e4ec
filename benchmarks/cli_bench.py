"""The command line's costs: ``nncli --help`` wall time, and ``nncli train`` on W1 and W2 (a
CSV of pixels behind a ``reshape``) against the engine's own ``fit`` on the same data (the
per-epoch time, and the fixed cost of a run: start-up, reading the CSV, writing the
checkpoint)."""

from __future__ import annotations

import csv
import json
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
name: {name}
seed: 0
data: {{kind: csv, path: {name}.csv, target: label, normalize: none, validation_split: 0}}
model:
  layers: {layers}
loss: cross_entropy
optimizer: {{type: adam, learning_rate: 0.001}}
training: {{epochs: {epochs}, batch_size: {batch}}}
"""
# the command line reads images from a CSV of pixels: a reshape in front of W2's network
CLI_WORKLOADS = ("W1", "W2")


def spec_layers(wid: str) -> list[dict[str, Any]]:
    w = WORKLOADS[wid]
    front = [{"type": "reshape", "shape": list(w.input_shape)}] if len(w.input_shape) > 1 else []
    return front + list(w.layers)


def write_workload(folder: Path, wid: str, quick: bool, epochs: int) -> Path:
    """A workload's data as a CSV (4 significant digits, a pixel per column) and a spec that
    trains its network on it."""
    w = WORKLOADS[wid]
    x, labels = make_data(w, quick)
    x = x.reshape(len(x), -1)
    name = wid.lower()
    header = ",".join([*(f"p{i}" for i in range(x.shape[1])), "label"])
    table = np.column_stack([x, labels.astype(np.float32)])
    np.savetxt(folder / f"{name}.csv", table, delimiter=",", fmt="%.4g", header=header,
               comments="")  # fmt: skip
    spec = folder / f"{name}.yaml"
    layers = json.dumps(spec_layers(wid))  # YAML reads JSON
    spec.write_text(SPEC.format(name=name, layers=layers, epochs=epochs, batch=w.batch))
    return spec


def train_time(
    folder: Path, env: dict[str, str], quick: bool, epochs: int, wid: str = "W1"
) -> dict[str, Any]:
    """One ``nncli train`` run: wall time and the per-epoch times from its history.csv."""
    spec = write_workload(folder, wid, quick, epochs)
    out = folder / f"out-{wid}" / "model.h5"
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
