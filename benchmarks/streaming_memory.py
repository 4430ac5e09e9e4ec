"""Peak memory of ``data.streaming`` against the in-memory run, on one generated table.

    python benchmarks/streaming_memory.py                   # 100,000 rows x 50 features, CSV
    python benchmarks/streaming_memory.py --rows 400000 --parquet

Writes a table of ``--rows`` random rows (50 float features, 10 classes) in a temporary folder,
as CSV (or Parquet in row groups of ``--chunk`` rows with ``--parquet``), and trains a small MLP
on it for one epoch with ``nncli train``, each run in its own child process: in memory, and with
``streaming: true`` (chunks of ``--chunk`` rows, 4 shuffled together). Prints each child's peak
resident memory (its ``ru_maxrss``), the training rows per second of the whole command, and the
most rows the shuffle buffer held (``Stream.held_peak``). Appends nothing: copy the table into
docs/guides/data.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = (  # one epoch of a small MLP; DATA and STREAMING are filled in
    "seed: 0\n"
    "data: {kind: csv, path: DATA, target: label, validation_split: 0.1, STREAMING}\n"
    "model: {layers: [{type: dense, units: 64, activation: relu},"
    " {type: dense, units: auto, activation: softmax}]}\n"
    "loss: cross_entropy\noptimizer: {type: adam, learning_rate: 0.001}\n"
    "training: {epochs: 1, batch_size: 256}\noutput: out/model.h5\n"
)

PROBE = """\
import json, os, resource, sys
from nncli.data import streaming
from nncli.cli import app

peaks = []
real = streaming.Stream.batches

def batches(self, *args, **kwargs):
    yield from real(self, *args, **kwargs)
    peaks.append(self.held_peak)

streaming.Stream.batches = batches
try:
    app()
finally:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(os.environ["PROBE_NAME"] + ".json", "w") as f:
        json.dump({"peak_kib": peak, "held_rows": max(peaks, default=0)}, f)
"""


def write_data(folder: Path, rows: int, parquet: bool, chunk: int) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 50)).astype(np.float32)
    labels = rng.integers(0, 10, rows)
    header = [*(f"f{i}" for i in range(50)), "label"]
    if parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {name: x[:, j] for j, name in enumerate(header[:-1])}
        path = folder / "big.parquet"
        pq.write_table(pa.table({**columns, "label": labels}), path, row_group_size=chunk)
        return path
    path = folder / "big.csv"
    table = np.column_stack([x, labels]).astype(np.float32)
    np.savetxt(path, table, fmt="%.5g", delimiter=",", header=",".join(header), comments="")
    return path


def run(folder: Path, data: Path, streaming: str, name: str) -> dict:
    """One ``nncli train`` in a child process, in a folder of its own (no other run beside)."""
    work = folder / name
    work.mkdir()
    spec = SPEC.replace("DATA", f"../{data.name}").replace("STREAMING", streaming)
    (work / "spec.yaml").write_text(spec)
    command = [sys.executable, "../probe.py", "train", "spec.yaml", "--quiet", "--force"]
    started = time.perf_counter()
    env = {**os.environ, "PROBE_NAME": "probe"}
    subprocess.run([*command, "--output", "model.h5"], cwd=work, env=env, check=True)
    seconds = time.perf_counter() - started
    return {**json.loads((work / "probe.json").read_text()), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=5_000)
    parser.add_argument("--parquet", action="store_true")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the data-writing child
    args = parser.parse_args()
    if args.write is not None:
        write_data(args.write, args.rows, args.parquet, args.chunk)
        return
    with tempfile.TemporaryDirectory(prefix="nncli-stream-") as tmp:
        folder = Path(tmp)
        # written by a child: a child started by vfork inherits this process's peak RSS in its
        # own ru_maxrss (Linux keeps the larger at exec), so this process never holds the table
        sizes = ["--rows", str(args.rows), "--chunk", str(args.chunk)]
        flag = ["--parquet"] if args.parquet else []
        subprocess.run([sys.executable, __file__, "--write", tmp, *sizes, *flag], check=True)
        data = folder / ("big.parquet" if args.parquet else "big.csv")
        (folder / "probe.py").write_text(PROBE)
        stream = f"streaming: true, chunk_rows: {args.chunk}, buffer_chunks: 4"
        runs = {}
        if not args.parquet:  # kind: csv reads Parquet only streaming (until the table readers)
            runs["in memory"] = run(folder, data, "streaming: false", "memory")
        runs["streaming"] = run(folder, data, stream, "stream")
        print(f"{args.rows:,} rows x 50 features, {data.name} {data.stat().st_size:,} B")
        print("| run | peak RSS (MiB) | rows/s (whole command) | rows held at once |")
        print("|---|---|---|---|")
        for name, seen in runs.items():
            held = seen["held_rows"] or f"{args.rows:,} (all)"
            rate = args.rows / seen["seconds"]
            print(f"| {name} | {seen['peak_kib'] / 1024:.0f} | {rate:,.0f} | {held} |")


if __name__ == "__main__":
    main()
