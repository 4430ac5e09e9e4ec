"""Checkpoints written by the previous release (0.1.0, before the layout change) still load and
predict the same numbers: iris (dense, categorical target), the digits CNN (image folder), the
sunspots LSTM (time-series window) and the walks GRU (grouped, padded sequences).

The files in tests/fixtures/v0.1.0/ were written by nncli 0.1.0 (`nncli train ... --output`),
with the predictions it gave (`nncli predict ... --proba`) beside them. Those numbers came from
another processor: float32 results are compared within what float32 arithmetic allows
(``assert_close_float32``), never a fixed absolute tolerance.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import DATASETS, ROOT, assert_close_float32, chain_terms, invoke

from nncli.checkpoint import model as model_io

FIXTURES = ROOT / "tests" / "fixtures" / "v0.1.0"
CASES = {  # data, options, the steps a recurrent layer runs
    "iris": (DATASETS / "iris.csv", ["--proba"], 1),
    "cnn": (DATASETS / "digits_png" / "3", ["--proba"], 1),
    "lstm": (DATASETS / "sunspots_yearly.csv", [], 12),  # the stored window
    "gru": (DATASETS / "walks.csv", ["--proba"], 40),  # the longest walk
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_checkpoint_of_the_previous_release_predicts_the_same_numbers(name, tmp_path):
    data, options, steps = CASES[name]
    out = tmp_path / "predictions.csv"
    result = invoke("predict", FIXTURES / f"{name}.h5", data, *options, "--output", out)
    assert result.exit_code == 0, result.output
    expected = pd.read_csv(FIXTURES / f"{name}.expected.csv")
    got = pd.read_csv(out)[list(expected.columns)]
    assert len(got) == len(expected)
    terms = chain_terms(model_io.load(FIXTURES / f"{name}.h5").net, steps)
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            assert_close_float32(got[column], expected[column], terms)
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist()
