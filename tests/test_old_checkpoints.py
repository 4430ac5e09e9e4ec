"""Checkpoints written by the previous release (0.1.0, before the layout change) still load and
predict the same numbers: iris (dense, categorical target), the digits CNN (image folder), the
sunspots LSTM (time-series window) and the walks GRU (grouped, padded sequences).

The files in tests/fixtures/v0.1.0/ were written by nncli 0.1.0 (`nncli train ... --output`),
with the predictions it gave (`nncli predict ... --proba`) beside them.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import DATASETS, ROOT, invoke

FIXTURES = ROOT / "tests" / "fixtures" / "v0.1.0"
CASES = {
    "iris": (DATASETS / "iris.csv", ["--proba"]),
    "cnn": (DATASETS / "digits_png" / "3", ["--proba"]),
    "lstm": (DATASETS / "sunspots_yearly.csv", []),
    "gru": (DATASETS / "walks.csv", ["--proba"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_checkpoint_of_the_previous_release_predicts_the_same_numbers(name, tmp_path):
    data, options = CASES[name]
    out = tmp_path / "predictions.csv"
    result = invoke("predict", FIXTURES / f"{name}.h5", data, *options, "--output", out)
    assert result.exit_code == 0, result.output
    expected = pd.read_csv(FIXTURES / f"{name}.expected.csv")
    got = pd.read_csv(out)[list(expected.columns)]
    assert len(got) == len(expected)
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            assert got[column].to_numpy() == pytest.approx(expected[column].to_numpy(), abs=1e-6)
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist()
