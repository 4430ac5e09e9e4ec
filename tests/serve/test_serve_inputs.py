"""``nncli serve`` for a model of several inputs from one table (issue 27's ``data.inputs``): JSON
and CSV rows carry every input's columns (the text column as a string), the request schema and
``/info`` name each column with its type and input, micro-batched passes pad every input and
mask alike, and each answer is ``nncli predict --proba``'s for the same rows. A model of
image-path columns is refused by name: no request may name a file path."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from conftest import concurrently, open_served
from helpers import invoke

from nncli.serve.batching import passes
from tests.data.test_table_inputs import BOTH, designed_table, image_table_spec

NUMBERS = ("amount", "noise")


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    """A columns input (amount, noise) and a text input (review), trained 2 epochs on the
    designed table of 120 rows -> (checkpoint, the table)."""
    root = tmp_path_factory.mktemp("serve-inputs")
    data = designed_table(root / "reviews.csv", rows=120)
    (root / "both.yaml").write_text(BOTH.format(path=data).replace("epochs: 40", "epochs: 2"))
    result = invoke("train", root / "both.yaml", "--output", root / "m.h5", "--quiet")
    assert result.exit_code == 0, result.stderr
    return root / "m.h5", data


def json_rows(data, limit: int | None = None) -> list[dict]:
    """The table's rows as a JSON client sends them: numbers as numbers, the review as text."""
    frame = pd.read_csv(data, keep_default_na=False).head(limit)
    return frame[[*NUMBERS, "review"]].to_dict(orient="records")


def predicted(checkpoint, data) -> list[dict[str, str]]:
    result = invoke("predict", checkpoint, data, "--proba")
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def as_rows(answer: dict) -> list[dict[str, str]]:
    """A JSON answer as predict's CSV rows (floats as Python writes them, as pandas does)."""
    return [
        {"prediction": str(p), **{f"proba_{k}": repr(v) for k, v in probabilities.items()}}
        for p, probabilities in zip(answer["predictions"], answer["probabilities"], strict=True)
    ]


def test_json_and_csv_rows_get_predict_probas_answer(two_inputs, tmp_path):
    checkpoint, data = two_inputs
    frame = pd.read_csv(data)
    frame.loc[0, "review"] = "Zebra quantum marmalade"  # no word of the vocabulary
    frame.loc[1, "review"] = ""  # an empty text
    frame = frame[["review", "label", "noise", "amount"]]  # reordered
    frame.to_csv(tmp_path / "new.csv", index=False)
    expected = predicted(checkpoint, tmp_path / "new.csv")
    rows = json_rows(tmp_path / "new.csv")
    rows[1]["review"] = None  # null: an empty text, as the empty cell of the file
    with open_served(checkpoint) as client:
        answer = client.post("/predict", json={"rows": rows})
        table = client.post(
            "/predict",
            content=(tmp_path / "new.csv").read_bytes(),
            headers={"Content-Type": "text/csv"},
        )
    assert answer.status_code == 200, answer.text
    assert as_rows(answer.json()) == expected
    assert table.status_code == 200, table.text
    assert table.text == invoke("predict", checkpoint, tmp_path / "new.csv", "--proba").stdout


def test_info_and_the_request_schema_name_every_inputs_columns(two_inputs):
    checkpoint, _ = two_inputs
    with open_served(checkpoint) as client:
        info = client.get("/info").json()
        document = client.get("/openapi.json").json()
    columns = {c["name"]: c for c in info["inputs"]}
    assert [(c["name"], c["type"], c.get("input")) for c in info["inputs"]] == [
        ("amount", "number", "fields"),
        ("noise", "number", "fields"),
        ("review", "text", "body"),
        ("label", "category", None),
    ]
    assert columns["review"]["max_length"] == 12 and columns["review"]["tokens"] == "words"
    assert columns["review"]["vocabulary"] == 14  # 12 words seen, padding and unknown
    row = document["components"]["schemas"]["Row"]
    assert set(row["required"]) == {"amount", "noise", "review"}
    review = {option.get("type") for option in row["properties"]["review"]["anyOf"]}
    assert review == {"string", "null"}
    assert row["properties"]["amount"]["type"] == "number"


def test_bad_input_is_422_by_field_and_a_good_request_is_answered_after(two_inputs):
    checkpoint, data = two_inputs
    good = {"rows": json_rows(data, 2)}
    missing = {"rows": [{"amount": 0.5, "noise": 0.1}]}
    number = {"rows": [{"amount": 0.5, "noise": 0.1, "review": 7}]}
    text = {"rows": [{"amount": "lots", "noise": 0.1, "review": "good"}]}
    with open_served(checkpoint) as client:
        first = client.post("/predict", json=good)
        for body, field, found in [
            (missing, "rows[0].review", "a missing column"),
            (number, "rows[0].review", "7"),
            (text, "rows[0].amount", '"lots"'),
        ]:
            answer = client.post("/predict", json=body)
            assert answer.status_code == 422, answer.text
            problem = answer.json()["detail"][0]
            assert problem["field"] == field and found in problem["found"], problem
        headers = {"Content-Type": "text/csv"}
        no_text = client.post("/predict", content="amount,noise\n1,2\n", headers=headers)
        assert no_text.status_code == 422
        assert no_text.json()["detail"][0]["field"] == "header.review"
        again = client.post("/predict", json=good)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()


def test_passes_pad_every_input_and_mask_to_max_batch():
    seen = []

    def forward(x, mask):
        masks = {f"mask {name}": m for name, m in mask.items()}
        seen.append({name: len(a) for name, a in {**x, **masks}.items()})
        return x["fields"][:, :1] + x["body"][:, :1]

    x = {"fields": np.arange(7.0)[:, None], "body": np.arange(7)[:, None] * 10}
    mask = {"body": np.ones((7, 3), dtype=bool)}
    outputs, count = passes(forward, x, mask, 4)
    assert count == 2 and outputs[:, 0].tolist() == [11 * k for k in range(7)]
    assert seen == [{"fields": 4, "body": 4, "mask body": 4}] * 2


def test_concurrent_requests_share_passes_and_get_their_lone_answers(two_inputs):
    checkpoint, data = two_inputs
    rows = json_rows(data)
    requests = [rows[s : s + 1 + s % 3] for s in range(0, 60, 3)]
    with open_served(checkpoint, max_batch=8, max_wait_ms=0) as client:
        alone = [client.post("/predict", json={"rows": r}).json() for r in requests]
    with open_served(checkpoint, max_batch=8, max_wait_ms=200) as client:
        joined = concurrently(client, requests)
        used = client.app.state.batcher.passes
    assert joined == alone
    assert used < len(requests)  # 20 requests of 40 rows in fewer passes
    expected = predicted(checkpoint, data)
    for start, answer in zip(range(0, 60, 3), joined, strict=True):
        assert as_rows(answer) == expected[start : start + len(answer["predictions"])]


def test_a_model_of_image_paths_is_refused_by_its_column(tmp_path):
    spec = image_table_spec(tmp_path)
    assert invoke("train", spec, "--output", tmp_path / "m.h5").exit_code == 0
    with open_served(tmp_path / "m.h5") as client:
        info = client.get("/info").json()
        answer = client.post("/predict", json={"rows": [{"photo": "d/dark/0.png"}]})
        table = client.post(
            "/predict", content="photo\n/etc/passwd\n", headers={"Content-Type": "text/csv"}
        )
        assert client.get("/health").status_code == 200
    assert info["inputs"][0] == {
        "name": "photo", "role": "feature", "input": "photo", "type": "image",
        "image_size": [8, 8], "color": "grayscale",
    }  # fmt: skip
    for refused in (answer, table):
        assert refused.status_code == 422
        problem = refused.json()["detail"][0]
        assert problem["field"] == "photo"
        assert "image paths cannot be served" in problem["expected"]
        assert "no request may name a file path" in refused.json()["error"]
