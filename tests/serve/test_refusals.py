"""Bad input to ``POST /predict`` is refused by name, never with a 500 or a traceback: each case
below gets its status (422; 413 for a body over --max-body-mb; 415 for a body of another kind)
and JSON naming the field, what was expected and what came, and the server answers a good
request right after it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from conftest import rows_of, typed

IRIS = {"sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"}
PENGUINS = {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"}
CSV = {"Content-Type": "text/csv"}


def iris_row(**changes) -> dict:
    row = {"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4}
    row["petal_width_cm"] = 0.2
    row.update(changes)
    return {k: v for k, v in row.items() if v != "-"}  # "-": leave the column out


def penguin_row(**changes) -> dict:
    row = {"island": "Dream", "bill_length_mm": 39.5, "bill_depth_mm": 17.4}
    row |= {"flipper_length_mm": 186, "body_mass_g": 3800, "sex": "female", "year": 2007}
    return {**row, **changes}


def chunks(data: bytes, size: int = 64):
    """A body sent in pieces with no Content-Length (chunked): only its streamed size counts."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


@dataclass
class Case:
    model: str
    send: dict  # the test client's post() arguments
    status: int
    field: str
    expected: str = ""  # a piece of the Problem's expected
    found: str = ""  # a piece of its found
    settings: dict | None = None


BIG = json.dumps({"rows": [iris_row()] * 40}).encode()
CASES = {
    "missing column": Case(
        "iris", {"json": {"rows": [iris_row(petal_width_cm="-")]}}, 422,
        "rows[0].petal_width_cm", "a finite number", "nothing (a missing column)",
    ),
    "unknown column": Case(
        "iris", {"json": {"rows": [iris_row(petal_widht_cm=0.2)]}}, 422,
        "rows[0].petal_widht_cm", "(did you mean 'petal_width_cm'?)", "an unknown column",
    ),
    "text for a number": Case(
        "iris", {"json": {"rows": [iris_row(), iris_row(sepal_length_cm="abc")]}}, 422,
        "rows[1].sepal_length_cm", "a finite number", '"abc"',
    ),
    "a number as text": Case(
        "iris", {"json": {"rows": [iris_row(sepal_length_cm="5.1")]}}, 422,
        "rows[0].sepal_length_cm", "a finite number", '"5.1"',
    ),
    "true for a number": Case(
        "iris", {"json": {"rows": [iris_row(sepal_width_cm=True)]}}, 422,
        "rows[0].sepal_width_cm", "a finite number", "true",
    ),
    "null without missing: fill": Case(
        "iris", {"json": {"rows": [iris_row(sepal_width_cm=None)]}}, 422,
        "rows[0].sepal_width_cm", "a finite number", "null",
    ),
    "a number too large": Case(
        "iris", {"content": b'{"rows": [{"sepal_length_cm": 1e999, "sepal_width_cm": 3.5, '
                 b'"petal_length_cm": 1.4, "petal_width_cm": 0.2}]}'}, 422,
        "rows[0].sepal_length_cm", "a finite number", "Infinity",
    ),
    "unseen category": Case(
        "penguins", {"json": {"rows": [penguin_row(island="Atlantis")]}}, 422,
        "rows[0].island", "one of 'Biscoe', 'Dream', 'Torgersen'", '"Atlantis"',
    ),
    "no rows": Case("iris", {"json": {"rows": []}}, 422, "rows", "at least 1 row", "none"),
    "too many rows": Case(
        "iris", {"json": {"rows": [iris_row()] * 4}}, 422, "rows", "at most 3 rows", "4 rows",
        settings={"max_rows": 3},
    ),
    "body over the limit": Case(
        "iris", {"content": BIG}, 413, "body", "(--max-body-mb)", f"{len(BIG):,} bytes",
        settings={"max_body_mb": 1000 / 2**20},
    ),
    "streamed body over the limit": Case(
        "iris", {"content": chunks(BIG)}, 413, "body", "at most 1,000 bytes", "more than",
        settings={"max_body_mb": 1000 / 2**20},
    ),
    "not JSON": Case("iris", {"content": b'{"rows": ['}, 422, "body", "JSON", "invalid JSON"),
    "not an object": Case("iris", {"json": [iris_row()]}, 422, "body", '{"rows"', "[{"),
    "rows not a list": Case("iris", {"json": {"rows": iris_row()}}, 422, "rows", "", "{"),
    "a row not an object": Case("iris", {"json": {"rows": [5.1]}}, 422, "rows[0]", "", "5.1"),
    "a key beside rows": Case(
        "iris", {"json": {"rows": [iris_row()], "path": "/etc/passwd"}}, 422, "path", "", "/etc"
    ),
    "CSV: unknown column": Case(
        "iris", {"content": "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width,x\n"
                 "5.1,3.5,1.4,0.2,1\n", "headers": CSV}, 422,
        "header.petal_width", "(did you mean 'petal_width_cm'?)", "an unknown column",
    ),
    "CSV: a column twice": Case(
        "iris", {"content": "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,"
                 "sepal_width_cm\n5.1,3.5,1.4,0.2,3.5\n", "headers": CSV}, 422,
        "header.sepal_width_cm", "each column once", "2 times",
    ),
    "CSV: a short row": Case(
        "iris", {"content": "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n"
                 "5.1,3.5,1.4,0.2\n5.1,3.5\n", "headers": CSV}, 422,
        "rows[1]", "4 fields (the header's)", "2",
    ),
    "CSV: text for a number": Case(
        "iris", {"content": "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n"
                 "5.1,3.5,1.4,0.2\nabc,3.5,1.4,0.2\n", "headers": CSV}, 422,
        "rows", "", "",
    ),
    "CSV: a header alone": Case(
        "iris", {"content": "sepal_length_cm,sepal_width_cm\n", "headers": CSV}, 422,
        "rows", "a header line and at least 1 row", "none",
    ),
    "CSV: not UTF-8": Case(
        "iris", {"content": b"sepal_length_cm\n\xff\xfe\n", "headers": CSV}, 422,
        "body", "UTF-8 text", "not UTF-8",
    ),
    "a file upload to a table model": Case(
        "iris", {"files": {"file": ("x.png", b"\x89PNG\r\n\x1a\n", "image/png")}}, 415,
        "Content-Type", "application/json or text/csv", "multipart/form-data",
    ),
    "plain text": Case(
        "iris", {"content": b"5.1 3.5", "headers": {"Content-Type": "text/plain"}}, 415,
        "Content-Type", "application/json or text/csv", "text/plain",
    ),
    "a series shorter than its window": Case(
        "sunspots", {"json": {"rows": [{"sunactivity": 5.0}] * 3}}, 422, "rows", "", "",
    ),
}  # fmt: skip
GOOD = {
    "iris": {"json": {"rows": [iris_row()]}},
    "penguins": {"json": {"rows": [penguin_row()]}},
    "sunspots": {"json": {"rows": [{"sunactivity": float(v)} for v in range(20)]}},
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_by_name_and_the_server_keeps_serving(serving, name):
    case = CASES[name]
    with serving(case.model, **(case.settings or {})) as client:
        good = client.post("/predict", **GOOD[case.model])
        assert good.status_code == 200, good.text
        answer = client.post("/predict", **case.send)
        assert answer.status_code == case.status, answer.text
        body = answer.json()
        assert set(body) == {"error", "detail"} and "Traceback" not in answer.text
        problem = body["detail"][0]
        assert set(problem) == {"field", "expected", "found", "message"}
        assert problem["field"] == case.field
        assert case.expected in (problem["expected"] or "")
        assert case.found in (problem["found"] or "")
        assert body["error"].startswith(problem["message"])
        again = client.post("/predict", **GOOD[case.model])
        assert again.status_code == 200 and again.json() == good.json()
        metrics = client.get("/metrics").text
    assert 'status="500"' not in metrics


def test_an_error_from_the_models_own_checks_names_the_row(serving):
    """What the schema lets through, the encoder checks as it checks a file: its one line."""
    text = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n5.1,3.5,1.4,0.2\n"
    with serving("iris") as client:
        answer = client.post("/predict", content=text + "abc,3.5,1.4,0.2\n", headers=CSV)
    assert answer.status_code == 422
    message = answer.json()["error"]
    assert "column 'sepal_length_cm' expects numbers, found 'abc' on rows[1]" in message


def test_unseen_categories_are_zeros_with_unknown_ignore(serving, models):
    _, data = models["penguins"]
    rows = typed(rows_of(data, 5), PENGUINS)
    with serving("penguins") as client:
        refused = client.post("/predict", json={"rows": [penguin_row(island="Atlantis")]})
    with serving("penguins", unknown="ignore") as client:
        answered = client.post("/predict", json={"rows": [penguin_row(island="Atlantis")]})
        schema = client.get("/openapi.json").json()["components"]["schemas"]["Row"]
        known = client.post("/predict", json={"rows": rows})
    assert refused.status_code == 422 and answered.status_code == 200
    assert len(answered.json()["probabilities"]) == 1
    assert "enum" not in json.dumps(schema["properties"]["island"])
    assert known.status_code == 200


def test_a_bug_is_a_500_without_a_traceback_and_the_server_goes_on(serving, models):
    """Only a fault of the server itself answers 500: its JSON names the error's type and
    points at the log; the next request is answered."""
    rows = typed(rows_of(models["iris"][1], 2), IRIS)
    with serving("iris", raise_errors=False) as client:
        batcher = client.app.state.batcher
        real = batcher.forward

        def broken(x, mask):
            batcher.forward = real  # once
            raise RuntimeError("a bug")

        batcher.forward = broken
        failed = client.post("/predict", json={"rows": rows})
        answered = client.post("/predict", json={"rows": rows})
    assert failed.status_code == 500 and "Traceback" not in failed.text
    assert failed.json()["error"].startswith("internal error (RuntimeError)")
    assert answered.status_code == 200


def test_no_request_reads_a_file(serving, models, tmp_path):
    """A path in a request is a value like any other: the row is refused, nothing is read."""
    secret = tmp_path / "secret.csv"
    secret.write_text("sepal_length_cm\n1\n")
    with serving("iris") as client:
        as_value = client.post("/predict", json={"rows": [iris_row(sepal_length_cm=str(secret))]})
        as_key = client.post("/predict", json={"rows": [iris_row()], "path": str(secret)})
    assert as_value.status_code == as_key.status_code == 422
