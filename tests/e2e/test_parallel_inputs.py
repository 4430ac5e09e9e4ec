"""A table of several inputs (data.inputs) under MPI and on the strict GPU stand-in: every
input's rows and every padded input's mask shared, the weights the single process's."""

import os
import subprocess
import sys

import pytest

from tests.data.test_table_inputs import designed_table
from tests.e2e.test_parallel import assert_same_weights, needs_mpi, one_process, ranks, run_job

SPEC = """\
seed: 2
dtype: float64
data:
  kind: csv
  path: reviews.csv
  target: label
  validation_split: 0.25
  inputs:
    fields: {columns: [amount, noise]}
    body: {column: review, tokens: words, max_length: 10, vocabulary: 30}
model: {layers: [{type: embedding, inputs: body, input_dim: auto, output_dim: 4},
                 {type: gru, units: 4, name: text_code},
                 {type: dropout, rate: 0.2, inputs: fields, name: kept},
                 {type: concat, inputs: [text_code, kept]},
                 {type: dense, units: auto, activation: softmax}]}
loss: cross_entropy
training: {epochs: 2, batch_size: 15}
optimizer: {type: sgd, learning_rate: 0.1, momentum: 0.9}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    designed_table(root / "reviews.csv", rows=60)
    (root / "inputs.yaml").write_text(SPEC)
    return root


@needs_mpi
@pytest.mark.slow
def test_two_ranks_share_every_input_and_give_the_single_process_weights(folder):
    one = one_process(folder, "inputs.yaml", "--output", folder / "one" / "model.h5")
    job = ranks(folder, "train", "inputs.yaml", "--quiet", "--output", "two/model.h5")
    assert job.returncode == 0, job.stderr
    assert_same_weights(one, folder / "two" / "model.h5")


@pytest.mark.slow
def test_the_strict_gpu_stand_in_gives_the_cpu_weights(folder):
    one = one_process(folder, "inputs.yaml", "--output", folder / "cpu" / "model.h5")
    command = [sys.executable, "-m", "nncli", "train", "inputs.yaml", "--device", "gpu"]
    os.environ["NNCLI_FAKE_GPU"] = "1"
    try:
        job = run_job([*command, "--quiet", "--output", "gpu/model.h5"], folder)
    finally:
        del os.environ["NNCLI_FAKE_GPU"]
    assert isinstance(job, subprocess.CompletedProcess) and job.returncode == 0, job.stderr
    assert_same_weights(one, folder / "gpu" / "model.h5")
