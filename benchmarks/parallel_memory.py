"""Memory per rank of a shared run: rank 0 reads the data, the others hold their rows.

    python benchmarks/parallel_memory.py            # 100,000 rows x 100 features, 1 and 2 ranks
    python benchmarks/parallel_memory.py --rows 5000

Writes a CSV of ``--rows`` random rows (100 float features, 10 classes) in a temporary folder,
trains a small MLP on it for 2 epochs with ``nncli train`` as one process and as 2 MPI ranks
(``mpiexec`` of the ``mpi`` extra), and prints each process's peak resident memory (its
``ru_maxrss``), the input bytes it held for training (``Spread.hold``), and the seconds rank 0
spent sending rows. Appends nothing: copy the table into benchmarks/PARALLEL.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SPEC = """\
version: 1
seed: 0
data: {kind: csv, path: big.csv, target: label, validation_split: 0.1}
model:
  layers:
    - {type: dense, units: 64, activation: relu}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.001}
training: {epochs: 2, batch_size: 256}
output: out/model.h5
"""

PROBE = """\
import json, os, resource, time
from nncli.training import spread
from nncli.cli import app

seen = {"held": 0, "send_s": 0.0}
real_hold = spread.Spread.hold

def hold(self, positions, keep=None):
    started = time.perf_counter()
    got = real_hold(self, positions, keep)
    if keep is None:  # training rows of an epoch
        seen["held"] = max(seen["held"], spread.held_bytes(got))
        seen["send_s"] += time.perf_counter() - started
    return got

spread.Spread.hold = hold
try:
    app()
finally:
    seen["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rank = os.environ.get("PMI_RANK", "0")
    with open(f"probe-{os.environ['PROBE_RANKS']}-{rank}.json", "w") as f:
        json.dump(seen, f)
"""


def write_data(folder: Path, rows: int) -> int:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 100)).astype(np.float32)
    labels = rng.integers(0, 10, rows)
    header = ",".join([*(f"f{i}" for i in range(100)), "label"])
    table = np.column_stack([x, labels]).astype(np.float32)
    np.savetxt(folder / "big.csv", table, fmt="%.5g", delimiter=",", header=header, comments="")
    return (folder / "big.csv").stat().st_size


def run(folder: Path, ranks: int) -> list[dict]:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    train = [sys.executable, "probe.py", "train", "spec.yaml", "--quiet", "--force"]
    command = [str(mpiexec), "-n", str(ranks), *train] if ranks > 1 else train
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env["PROBE_RANKS"] = str(ranks)
    subprocess.run(command, cwd=folder, env=env, check=True)
    return [json.loads((folder / f"probe-{ranks}-{r}.json").read_text()) for r in range(ranks)]


def processor() -> str:
    """The CPU's model name (Intel or AMD: the figures depend on it)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def held(seen: dict, ranks: int, rows: int) -> str:
    if ranks > 1:
        return f"{seen['held'] / 2**20:.1f}"
    return f"{(rows - int(round(rows * 0.1))) * 100 * 4 / 2**20:.1f} (all)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nncli-memory-") as tmp:
        folder = Path(tmp)
        size = write_data(folder, args.rows)
        (folder / "spec.yaml").write_text(SPEC)
        (folder / "probe.py").write_text(PROBE)
        print(f"{processor()}; {args.rows:,} rows, CSV {size:,} B")
        print("| run | rank | peak RSS (MiB) | training inputs held (MiB) | rank 0 sending (s) |")
        print("|---|---|---|---|---|")
        for ranks in (1, 2):
            for r, seen in enumerate(run(folder, ranks)):
                print(
                    f"| {ranks} process{'es' if ranks > 1 else ''} | {r} | "
                    f"{seen['peak_kib'] / 1024:.0f} | {held(seen, ranks, args.rows)} | "
                    f"{seen['send_s'] if ranks > 1 and r == 0 else 0:.2f} |"
                )


if __name__ == "__main__":
    main()
