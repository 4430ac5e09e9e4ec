"""ONNX export of a model of several inputs from one table: one graph input per spec input,
named after it, and onnxruntime's outputs equal to nncli's within float32 tolerance."""

import json

import numpy as np
import pandas as pd
import pytest

from nncli.checkpoint import model as model_io
from nncli.commands.predictor import Predictor
from tests.data.test_table_inputs import BOTH, designed_table
from tests.helpers import assert_close_float32, invoke

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def test_each_spec_input_is_a_graph_input_and_the_outputs_agree(tmp_path):
    data = designed_table(tmp_path / "reviews.csv", rows=80)
    spec = tmp_path / "both.yaml"
    spec.write_text(BOTH.format(path=data).replace("epochs: 40", "epochs: 2"))
    out, graph = tmp_path / "m.h5", tmp_path / "m.onnx"
    assert invoke("train", spec, "--output", out, "--quiet").exit_code == 0
    result = invoke("export", out, "--output", graph)
    assert result.exit_code == 0, result.stderr
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["fields", "body"]
    meta = json.loads(onnx.load(str(graph)).metadata_props[1].value)
    assert set(meta["inputs"]) == {"fields", "body"}

    predictor = Predictor.load(out)
    frame = pd.read_csv(data).head(6)
    x, mask = predictor.encoder.inputs(frame)
    expected = predictor.outputs(x, mask)
    raw = frame[["amount", "noise"]].to_numpy(dtype=np.float32)  # the file's units
    for row in range(len(frame)):  # one text a call: the graph has no padding mask
        steps = int(mask["body"][row].sum())
        feed = {"fields": raw[row : row + 1], "body": x["body"][row : row + 1, :steps]}
        got = session.run(None, {k: v.astype(np.float32) for k, v in feed.items()})[0]
        assert_close_float32(got[0], expected[row], terms=64)
    assert model_io.load(out).net.input_names == ("fields", "body")
