"""``nncli inspect`` of a network that is not a stack: each layer's inputs (a column of the
table, ``inputs`` in the JSON), named layers by their names, and a composed layer's parts with
their own parameters; a stack's table keeps its columns."""

from __future__ import annotations

import json

from helpers import ROOT, invoke

from nncli.commands.inspect import inspect

MODELS = ROOT / "models"


def test_a_graphs_rows_name_each_layers_inputs():
    summary = inspect(MODELS / "penguins-wide-deep.yaml")
    assert summary["stack"] is False
    rows = summary["layers"]
    assert [r["inputs"] for r in rows] == [["input"], ["input"], [1], [2], ["wide", "deep"], [4]]
    assert [r["name"] for r in rows] == ["wide", None, None, "deep", None, None]
    table = invoke("inspect", MODELS / "penguins-wide-deep.yaml").stdout
    assert "inputs" in table and "wide, deep" in table and "deep: dense (relu)" in table


def test_a_residual_blocks_parts_each_count_their_parameters():
    rows = inspect(MODELS / "digits-resnet.yaml")["layers"]
    block = rows[4]
    assert block["type"] == "residual" and block["output_shape"] == ["N", 32, 4, 4]
    parts = {p["name"]: p["params"] for p in block["parts"]}
    assert parts == {"0.conv2d": 4608, "1.batchnorm": 64, "2.relu": 0, "3.conv2d": 9216,
                     "4.batchnorm": 64, "projection": 544}  # fmt: skip
    assert block["params"] == sum(parts.values())
    table = invoke("inspect", MODELS / "digits-resnet.yaml").stdout
    assert "projection: conv2d" in table and "3.conv2d" in table


def test_a_stack_has_no_inputs_column_and_the_json_says_it_is_one():
    result = invoke("inspect", MODELS / "iris.yaml", "--json")
    summary = json.loads(result.stdout)
    assert summary["stack"] is True and summary["layers"][1]["inputs"] == [0]
    assert "inputs" not in invoke("inspect", MODELS / "iris.yaml").stdout
