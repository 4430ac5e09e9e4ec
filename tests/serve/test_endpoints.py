"""``nncli serve``'s endpoints through FastAPI's test client: /health, /info, /metrics, the
OpenAPI document, and /predict answering exactly what ``nncli predict --proba`` writes for the
same rows, for every bundled spec of rows (a table with categories and missing values, a
sequence model, a time series)."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest
from conftest import NUMBERS, rows_of, typed
from helpers import assert_network_close, invoke

from nncli.commands.predictor import Predictor

COLUMNS = {"sunspots": ["sunactivity"]}  # the series' year is no column of the model


def predicted(checkpoint, data) -> list[dict[str, str]]:
    """``nncli predict CKPT DATA --proba``'s rows."""
    result = invoke("predict", checkpoint, data, "--proba")
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def as_predict_rows(answer: dict) -> list[dict[str, str]]:
    """A JSON answer as predict's CSV rows (numbers as Python writes them, as pandas does)."""
    rows = []
    for i, prediction in enumerate(answer["predictions"]):
        row = {k: str(v) for k, v in (answer.get("ids") or [{}] * (i + 1))[i].items()}
        row["prediction"] = str(prediction)
        for label, p in (answer.get("probabilities") or [{}] * (i + 1))[i].items():
            row[f"proba_{label}"] = repr(p)
        rows.append(row)
    return rows


def request_rows(name: str, data) -> list[dict[str, object]]:
    rows = rows_of(data)
    if name in COLUMNS:
        rows = [{k: row[k] for k in COLUMNS[name]} for row in rows]
    return typed(rows, NUMBERS[name])


def test_health_and_info_describe_the_loaded_model(serving, models):
    checkpoint, _ = models["penguins"]
    with serving("penguins") as client:
        assert client.get("/health").json() == {"status": "ok"}
        info = client.get("/info").json()
    assert info["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert info["checkpoint"] == checkpoint.name and info["nncli"]
    assert (info["kind"], info["task"]) == ("csv", "classification")
    assert info["labels"] == ["Adelie", "Chinstrap", "Gentoo"]
    inputs = {column["name"]: column for column in info["inputs"]}
    assert inputs["island"]["categories"] == ["Biscoe", "Dream", "Torgersen"]
    assert inputs["island"]["type"] == "category" and inputs["species"]["role"] == "target"
    scaling = inputs["bill_length_mm"]["scaling"]
    assert scaling["scale"] > 0 and 30 < scaling["offset"] < 60  # (x - mean) / std
    assert inputs["bill_length_mm"]["missing"] == "fill"  # penguins.yaml fills missing values
    assert info["spec"]["data"]["kind"] == "csv" and info["spec"]["loss"] == "cross_entropy"
    assert info["training"]["epoch"] == 2
    assert info["server"]["max_batch"] == 64


@pytest.mark.parametrize("name", ["iris", "penguins", "walks"])
def test_predict_answers_what_predict_proba_writes(serving, models, name):
    """Every row of the data set in one JSON request: the predictions and probabilities are
    predict --proba's, number for number. (The server's passes of 64 rows and predict's of the
    whole file take the same kernels for these networks; a float32 product may pick another by
    size, so this is not so for every network and pass size: docs/commands/serve.md.)"""
    checkpoint, data = models[name]
    expected = predicted(checkpoint, data)
    with serving(name, max_rows=10_000) as client:
        answer = client.post("/predict", json={"rows": request_rows(name, data)})
    assert answer.status_code == 200, answer.text
    assert as_predict_rows(answer.json()) == expected
    assert len(expected) > 1


def test_a_forecast_is_predicts_within_float32_rounding(serving, models):
    """A time series gives one forecast: predict runs it as a pass of one row, the server as
    one of 64 (a matrix-vector product against a matrix product: other roundings)."""
    checkpoint, data = models["sunspots"]
    (expected,) = predicted(checkpoint, data)
    with serving("sunspots") as client:
        answer = client.post("/predict", json={"rows": request_rows("sunspots", data)}).json()
    assert answer["ids"] == [{"step": 1}] and set(expected) == {"step", "prediction"}
    predictor = Predictor.load(checkpoint)
    x, _ = predictor.encoder.inputs(predictor.read_file(data))
    column = predictor.encoder.target_columns[0]
    assert_network_close(
        answer["predictions"], [float(expected["prediction"])], predictor.net, x,
        steps=len(x[0]), unscale=(column.offset, column.scale),
    )  # fmt: skip


@pytest.mark.parametrize("name", ["iris", "penguins", "walks"])
def test_a_csv_body_is_answered_with_predicts_csv(serving, models, name):
    checkpoint, data = models[name]
    result = invoke("predict", checkpoint, data, "--proba")
    with serving(name, max_rows=10_000) as client:
        answer = client.post(
            "/predict", content=data.read_bytes(), headers={"Content-Type": "text/csv"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text == result.stdout


def test_text_records_and_typed_records_get_one_answer(serving, models):
    _, data = models["penguins"]
    text = rows_of(data, 20)
    with serving("penguins") as client:
        first = client.post("/predict", json={"rows": typed(text, NUMBERS["penguins"])}).json()
        again = client.post("/predict", json={"rows": typed(text, NUMBERS["penguins"])}).json()
    assert first == again and len(first["predictions"]) == 20
    assert any(value is None for row in typed(text, NUMBERS["penguins"]) for value in row.values())


def test_metrics_count_requests_batches_and_passes(serving, models):
    _, data = models["iris"]
    rows = typed(rows_of(data, 3), NUMBERS["iris"])
    with serving("iris", max_batch=8) as client:
        for _ in range(2):
            assert client.post("/predict", json={"rows": rows}).status_code == 200
        assert client.post("/predict", json={"rows": []}).status_code == 422
        text = client.get("/metrics").text
    assert 'nncli_requests_total{path="/predict",status="200"} 2.0' in text
    assert 'nncli_requests_total{path="/predict",status="422"} 1.0' in text
    assert "nncli_forward_passes_total 2.0" in text
    assert "nncli_rows_total 6.0" in text
    assert 'nncli_batch_rows_bucket{le="2.0"} 0.0' in text  # no empty round
    assert 'nncli_batch_rows_bucket{le="4.0"} 2.0' in text
    assert 'nncli_request_seconds_count{path="/predict"} 3.0' in text


def test_the_openapi_schema_names_the_models_columns(serving):
    with serving("penguins") as client:
        document = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv"}
    row = document["components"]["schemas"]["Row"]
    properties = row["properties"]
    assert set(properties) == {
        "species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
        "body_mass_g", "sex", "year",
    }  # fmt: skip
    assert row["additionalProperties"] is False
    assert "species" not in row["required"] and "island" in row["required"]
    island = {v for option in properties["island"]["anyOf"] for v in option.get("enum", [])}
    assert island == {"Biscoe", "Dream", "Torgersen"}
    numbers = {option.get("type") for option in properties["bill_length_mm"]["anyOf"]}
    assert numbers == {"number", "null"}  # null: training filled missing values
