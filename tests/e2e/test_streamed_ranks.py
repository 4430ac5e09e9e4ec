"""``data.streaming`` over MPI: each of 2 ranks reads its own chunks of every epoch (none reads
another's, together they read them all), a 2-rank run is reproducible, and its combined
validation metrics are those of the checkpoint scored in one process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import invoke
from test_parallel import MPIEXEC, needs_mpi, run_job, weights

SPEC = """\
seed: 4
data: {kind: csv, path: t.csv, target: label, streaming: true, chunk_rows: 40,
       buffer_chunks: 2, validation_split: 0.2}
model: {layers: [{type: dense, units: 8, activation: relu}, {type: dropout, rate: 0.2},
                 {type: dense, units: auto, activation: softmax}]}
loss: cross_entropy
training: {epochs: 2, batch_size: 16}
"""

SPY = """\
import json, os
from nncli.data import streaming
from nncli.cli import app

reads = []  # each pass of shares: the (chunk, part) it read
real_rows, real_shares = streaming.Source.rows, streaming.Stream.shares

def rows(self, k, part):  # the first pass reads through Source.kept, epochs through here
    if reads:
        reads[-1].append([int(k), int(part)])
    return real_rows(self, k, part)

def shares(self, *args):
    reads.append([])
    yield from real_shares(self, *args)

streaming.Source.rows, streaming.Stream.shares = rows, shares
try:
    app()
finally:
    with open(f"reads-{os.environ['PMI_RANK']}.json", "w") as f:
        json.dump(reads, f)
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    data["label"] = np.where(data["a"] > data["b"], "up", "down")
    data.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "spy.py").write_text(SPY)
    return tmp_path


def two_ranks(folder: Path, out: str) -> None:
    command = [MPIEXEC, "-n", "2", sys.executable, "spy.py", "train", "spec.yaml"]
    done = run_job([*command, "--quiet", "--output", out], folder)
    assert done.returncode == 0, done.stderr


@needs_mpi
def test_each_rank_reads_its_own_chunks_and_the_run_is_reproducible(folder: Path):
    two_ranks(folder, "a/model.h5")
    reads = [json.loads((folder / f"reads-{rank}.json").read_text()) for rank in (0, 1)]
    # the passes over the training part (the validation passes read part 1), one an epoch
    epochs = [[{k for k, part in done if part == 0} for done in rank] for rank in reads]
    epochs = [[chunks for chunks in rank if chunks] for rank in epochs]
    assert len(epochs[0]) == len(epochs[1]) == 2
    for mine, theirs in zip(*epochs, strict=True):  # 400 rows in 10 chunks of 40
        assert len(mine) == len(theirs) == 5 and mine | theirs == set(range(10))
    assert epochs[0][0] != epochs[0][1]  # the chunks are dealt again each epoch
    two_ranks(folder, "b/model.h5")
    first, second = weights(folder / "a" / "model.h5"), weights(folder / "b" / "model.h5")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    scored = invoke("evaluate", folder / "a" / "model.h5", folder / "t.csv", "--json")
    assert scored.exit_code == 0, scored.stderr
    metrics = json.loads(scored.stdout)["metrics"]
    history = pd.read_csv(folder / "a" / "history.csv")
    assert history["val_loss"].iloc[-1] == pytest.approx(metrics["loss"], rel=1e-5)
    # history.csv keeps 8 digits
    assert history["val_accuracy"].iloc[-1] == pytest.approx(metrics["accuracy"], abs=1e-7)
