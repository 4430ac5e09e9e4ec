"""Checkpoints written by the previous release (0.1.0, before the layout change) still load and
predict the same numbers: iris (dense, categorical target), the digits CNN (image folder), the
sunspots LSTM (time-series window) and the walks GRU (grouped, padded sequences).

The files in tests/fixtures/v0.1.0/ were written by nncli 0.1.0 (`nncli train ... --output`),
with the predictions it gave (`nncli predict ... --proba`) beside them. Those numbers came from
another processor: float32 results are compared within what float32 arithmetic allows
(``assert_close_float32``), never a fixed absolute tolerance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import (
    DATASETS,
    ROOT,
    assert_close_float32,
    chain_terms,
    float32_tolerance,
    invoke,
    output_reach,
)

from nncli import data as data_room
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
    model = model_io.load(FIXTURES / f"{name}.h5")
    encoder = data_room.encoder_from_state(model.encoder_state)
    reach = output_reach(model.net, *encoder.inputs(encoder.read_frame(data)))  # scaled units
    terms = chain_terms(model.net, steps)
    proba = np.sort(expected.filter(like="proba_").to_numpy(), axis=1)
    if proba.size:  # labels are compared exactly: no stored row is a tie float32 could flip
        assert (proba[:, -1] - proba[:, -2]).min() > float32_tolerance(reach, terms)
    else:  # a regression, decoded: |offset| + scale * reach in the file's units
        ends = [encoder.decode(np.array([[z]]))["prediction"][0] for z in (-reach, reach)]
        reach = float(np.abs(ends).max())
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            assert_close_float32(got[column], expected[column], terms, reach)
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist()
