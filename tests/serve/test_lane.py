"""The hot path of POST /predict (JSON rows answered ahead of FastAPI's routing) answers and
refuses exactly as the FastAPI route does, and a round's answers are made in one call."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import numpy as np
import pytest
from conftest import NUMBERS, concurrently, rows_of, typed
from helpers import invoke

from nncli.serve.batching import Batcher
from nncli.serve.lane import Lane
from nncli.serve.schema import number_rows


def bodies(name: str, data) -> list[tuple[bytes, str]]:
    """Good and bad JSON bodies for the model ``name`` (its rows from ``data``), each with the
    Content-Type it is sent with."""
    rows = typed(rows_of(data, 3), NUMBERS[name])
    first = dict(rows[0])
    column = sorted(NUMBERS[name])[0]
    typo = {**{k: v for k, v in first.items() if k != column}, column[:-1] + "x": 1.0}
    sent = [
        {"rows": rows},
        {"rows": rows[:1]},
        {"rows": []},
        {"rows": rows * 3},  # over --max-rows 5
        {"rows": [typo]},
        {"rows": [{k: v for k, v in first.items() if k != column}]},
        {"rows": [{**first, column: "many"}]},
        {"rows": [{**first, column: True}]},
        {"rows": [{**first, column: 10**400}]},
        {"rows": [{**first, column: None}]},
        {"rows": rows, "extra": 1},
        {"row": rows},
        [rows],
    ]
    texts = [json.dumps(body).encode() for body in sent]
    texts += [
        b'{"rows": [{"x": NaN}]}',
        b"{not json",
        b"",
        json.dumps({"rows": rows * 40}).encode(),
    ]
    if name == "penguins":
        texts.append(json.dumps({"rows": [{**first, "island": "Atlantis"}]}).encode())
    kinds = ["application/json", "application/problem+json", "", "application/json; charset=utf-8"]
    return [(text, kinds[i % len(kinds)]) for i, text in enumerate(texts)]


@pytest.mark.parametrize("name", ["iris", "penguins"])
def test_the_lane_answers_and_refuses_as_the_route_does(serving, models, name):
    """Every body, good or bad, gets the same status, headers and bytes through the lane as
    through FastAPI's route (the lane switched off); the lane took each of them."""
    sent = bodies(name, models[name][1])
    with serving(name, max_rows=5, max_body_mb=0.01) as client:
        lane, taken = client.app.lane, []

        async def predicting(request, kind):
            taken.append(kind)
            return await spied(request, kind)

        spied, lane.predicting = lane.predicting, predicting
        answers = [post(client, body, kind) for body, kind in sent]
        client.app.lane = None
        routed = [post(client, body, kind) for body, kind in sent]
        text = client.get("/metrics").text
    assert answers == routed
    assert len(taken) == len(sent)
    statuses = [status for status, _, _ in answers]
    filled = name == "penguins"  # its training filled missing numbers: null is a value
    assert statuses.count(200) == 2 + filled and set(statuses) == {200, 413, 422}
    for status in (200, 413, 422):  # the lane's requests counted as the route's
        count = 2.0 * statuses.count(status)
        assert f'nncli_requests_total{{path="/predict",status="{status}"}} {count}' in text


def test_quick_rows_answer_as_predict_proba_under_concurrency(serving, models, monkeypatch):
    """iris rows without their target (the quick way: one parse, one block, a round's answers
    in one call), 40 requests at once: fewer passes than requests, and every probability the
    text predict --proba writes for the row."""
    import nncli.serve.app as app_module

    quick = []

    def counted(*given):
        block = number_rows(*given)
        quick.append(block is not None)
        return block

    monkeypatch.setattr(app_module, "number_rows", counted)
    checkpoint, data = models["iris"]
    rows = typed(rows_of(data), NUMBERS["iris"])
    for row in rows:
        row.pop("species")
    starts = list(range(0, 120, 3))
    requests = [rows[s : s + 1 + i % 4] for i, s in enumerate(starts)]
    written = invoke("predict", checkpoint, data, "--proba").stdout
    expected = list(csv.DictReader(io.StringIO(written)))
    with serving("iris", max_batch=16, max_wait_ms=200) as client:
        answers = concurrently(client, requests)
        used = client.app.state.batcher.passes
    assert quick == [True] * len(requests) and used < len(requests)
    for start, request, answer in zip(starts, requests, answers, strict=True):
        assert len(answer["predictions"]) == len(request)
        for k, probabilities in enumerate(answer["probabilities"]):
            row = expected[start + k]
            assert answer["predictions"][k] == row["prediction"]
            assert {f"proba_{label}": repr(p) for label, p in probabilities.items()} == {
                key: value for key, value in row.items() if key.startswith("proba_")
            }


def post(client, body: bytes, kind: str) -> tuple[int, str, str]:
    headers = {"content-type": kind} if kind else {}
    answer = client.post("/predict", content=body, headers=headers)
    return answer.status_code, answer.headers.get("content-type"), answer.text


def test_the_lane_takes_json_predictions_only():
    def scope(method="POST", path="/predict", kind=b"application/json"):
        headers = [(b"host", b"x")] + ([(b"content-type", kind)] if kind is not None else [])
        return {"type": "http", "method": method, "path": path, "headers": headers}

    assert Lane.takes(scope()) and Lane.takes(scope(kind=None))
    assert Lane.takes(scope(kind=b"Application/JSON; charset=utf-8"))
    assert Lane.takes(scope(kind=b"application/vnd.api+json"))
    assert not Lane.takes(scope(kind=b"text/csv")) and not Lane.takes(scope(method="GET"))
    assert not Lane.takes(scope(kind=b"multipart/form-data; boundary=x"))
    assert not Lane.takes(scope(path="/predict/")) and not Lane.takes(scope(path="/generate"))
    assert not Lane.takes({"type": "lifespan"})


def test_a_round_finishes_the_rows_of_its_jobs_in_one_call():
    """Jobs submitted with one ``finish`` get their rows' part of one call on the round's
    outputs; a job without gets its outputs; an error in ``finish`` reaches each of its jobs."""
    calls = []

    def finish(outputs):
        calls.append(len(outputs))
        return {"first": outputs[:, 0].tolist(), "rows": [[r] for r in range(len(outputs))]}

    def broken(outputs):
        raise ValueError("no answer")

    async def main():
        batcher = Batcher(lambda x, mask: x * 2, max_batch=16, max_wait=0.2)
        await batcher.start()
        xs = [np.full((1 + i % 3, 2), i, dtype=np.float32) for i in range(6)]
        sent = [batcher.submit(x, None, finish) for x in xs]
        sent += [batcher.submit(xs[0], None), batcher.submit(xs[1], None, broken)]
        answers = await asyncio.gather(*sent, return_exceptions=True)
        await batcher.stop()
        return batcher, xs, answers

    batcher, xs, answers = asyncio.run(asyncio.wait_for(main(), 60))
    assert batcher.rounds == 1 and calls == [sum(len(x) for x in xs)]
    start = 0
    for x, answer in zip(xs, answers[:6], strict=True):
        assert answer == {
            "first": (x[:, 0] * 2).tolist(),
            "rows": [[start + r] for r in range(len(x))],
        }
        start += len(x)
    np.testing.assert_array_equal(answers[6], xs[0] * 2)
    assert isinstance(answers[7], ValueError)


def test_number_rows_read_the_values_the_request_schema_reads(models):
    """Numbers written every way JSON may write them (17 digits, exponents, subnormals, -0,
    whole numbers, huge ones) give, to the bit, the float64 block the pydantic schema gives."""
    from nncli.commands.serve import Served
    from nncli.serve.schema import Columns
    from nncli.serve.settings import Settings

    columns = Columns(Served.load(models["iris"][0], Settings()).columns, "error", 100)
    names = columns.numbers
    rng = np.random.default_rng(0)
    values = rng.standard_normal((40, 4)) * 10.0 ** rng.integers(-310, 308, (40, 4))
    texts = [[repr(v) for v in row] for row in values.tolist()]
    texts[0] = ["-0.0", "5", "-12345678901234567890", "1e-320"]
    texts[1] = ["0.1", "1E+2", "2.5e-3", "1.7976931348623157e308"]
    cells = [", ".join(f'"{n}": {t}' for n, t in zip(names, row, strict=True)) for row in texts]
    body = '{"rows": [' + ", ".join("{" + row + "}" for row in cells) + "]}"
    quick = number_rows(body.encode(), names, 100)
    rows = columns.request_model().model_validate_json(body).model_dump(by_alias=True)["rows"]
    schema = np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
    assert quick is not None and quick.dtype == np.float64
    assert quick.tobytes() == schema.tobytes()  # every bit, the sign of -0.0 too


def test_number_rows_leave_every_other_body_to_the_request_schema(models):
    names = ["a", "b"]
    assert number_rows(b'{"rows": [{"a": 1, "b": 2.5}]}', names, 2).tolist() == [[1.0, 2.5]]
    assert number_rows(b'{"rows": [{"a": 1}]}', ["a"], 2).tolist() == [[1.0]]
    others = [
        b'{"rows": [{"a": 1, "b": true}]}',
        b'{"rows": [{"a": 1, "b": "2"}]}',
        b'{"rows": [{"a": 1, "b": null}]}',
        b'{"rows": [{"a": 1, "b": NaN}]}',
        b'{"rows": [{"a": 1, "b": [2]}]}',
        b'{"rows": [{"a": 1, "b": 1' + b"0" * 400 + b"}]}",
        b'{"rows": [{"a": 1, "c": 2}]}',
        b'{"rows": [{"a": 1, "b": 2, "c": 3}]}',
        b'{"rows": [{"a": 1}]}',
        b'{"rows": [{"a": 1, "b": 2}, [1, 2]]}',
        b'{"rows": [{"a": 1, "b": 2}] * 3}',
        b'{"rows": [{"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1, "b": 2}]}',
        b'{"rows": []}',
        b'{"rows": {"a": 1, "b": 2}}',
        b'{"rows": [{"a": 1, "b": 2}], "more": 1}',
        b'[{"a": 1, "b": 2}]',
        b"{not json",
        b"",
    ]
    assert [number_rows(body, names, 2) for body in others] == [None] * len(others)
