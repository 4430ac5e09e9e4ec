"""Sequences sent to ``POST /predict`` as rows with their id and order columns: grouped by id
(in the order the ids first appear) and put in order as ``nncli predict`` groups a file's rows,
answered one prediction a sequence (``ids``: the sequence's id) or, for a model of one
prediction a step, one a step (``ids``: the id and the order value); a sequence's answer does
not depend on the sequences sent with it."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from conftest import rows_of
from helpers import ROOT, assert_network_close, invoke

from nncli.commands.predictor import Predictor

WALKS = ("w003", "w000", "w011")


def sent(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """Rows as a JSON client sends them: the value a number, the step a whole number."""
    return [{**row, "t": int(row["t"]), "value": float(row["value"])} for row in rows]


def shuffled_walks(data) -> list[dict[str, str]]:
    """The rows of three walks, interleaved and each walk's steps out of order."""
    rows = [row for row in rows_of(data) if row["walk"] in WALKS]
    order = np.random.default_rng(5).permutation(len(rows))
    return [rows[i] for i in order]


def predicted(checkpoint, rows, tmp_path) -> list[dict[str, str]]:
    """``nncli predict --proba`` on a CSV file of ``rows``."""
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = invoke("predict", checkpoint, path, "--proba")
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout))), path


def check_like_predict(answer, expected, checkpoint, path, id_keys) -> None:
    """The answer's ids and labels are predict's; its probabilities within float32 rounding
    (predict's pass holds these sequences alone, the server's --max-batch rows)."""
    assert [{k: str(v) for k, v in ids.items()} for ids in answer["ids"]] == [
        {k: row[k] for k in id_keys} for row in expected
    ]
    assert answer["predictions"] == [row["prediction"] for row in expected]
    predictor = Predictor.load(checkpoint)
    x, mask = predictor.encoder.inputs(predictor.read_file(path))
    got = [list(p.values()) for p in answer["probabilities"]]
    labels = list(answer["probabilities"][0])
    want = [[float(row[f"proba_{label}"]) for label in labels] for row in expected]
    assert_network_close(got, want, predictor.net, x, steps=x.shape[1], mask=mask)


def test_rows_are_grouped_by_id_and_put_in_order_as_predict_does(serving, models, tmp_path):
    checkpoint, data = models["walks"]
    rows = shuffled_walks(data)
    expected, path = predicted(checkpoint, rows, tmp_path)
    with serving("walks") as client:
        answer = client.post("/predict", json={"rows": sent(rows)}).json()
    first_seen = list(dict.fromkeys(row["walk"] for row in rows))
    assert [ids["walk"] for ids in answer["ids"]] == first_seen and len(first_seen) == 3
    check_like_predict(answer, expected, checkpoint, path, ["walk"])


def test_a_sequence_gets_the_same_answer_alone_and_among_others(serving, models):
    _, data = models["walks"]
    rows = sent(shuffled_walks(data))
    with serving("walks") as client:
        together = client.post("/predict", json={"rows": rows}).json()
        alone = [
            client.post("/predict", json={"rows": [r for r in rows if r["walk"] == walk]}).json()
            for walk in [ids["walk"] for ids in together["ids"]]
        ]
    assert together["probabilities"] == [a["probabilities"][0] for a in alone]


@pytest.fixture(scope="module")
def per_step(tmp_path_factory):
    """walks-gru.yaml as a model of one prediction a step (the drift at every step)."""
    root = tmp_path_factory.mktemp("per-step")
    text = (ROOT / "models" / "walks-gru.yaml").read_text().replace("../datasets/", "")
    text = text.replace("target_per: sequence", "target_per: step")
    text = text.replace("{type: gru, units: 16}", "{type: gru, units: 8, return_sequences: true}")
    (root / "walks.yaml").write_text(text.replace("epochs: 40", "epochs: 1"))
    (root / "walks.csv").write_bytes((ROOT / "datasets" / "walks.csv").read_bytes())
    result = invoke("train", root / "walks.yaml", "--quiet", "--output", root / "walks.h5")
    assert result.exit_code == 0, result.stderr
    return root / "walks.h5", root / "walks.csv"


def test_a_model_of_one_prediction_a_step_answers_each_step(serving, per_step, tmp_path):
    checkpoint, data = per_step
    rows = shuffled_walks(data)
    expected, path = predicted(checkpoint, rows, tmp_path)
    with serving(checkpoint) as client:
        answer = client.post("/predict", json={"rows": sent(rows)}).json()
    assert len(answer["predictions"]) == len(rows)
    assert set(answer["ids"][0]) == {"walk", "t"}
    check_like_predict(answer, expected, checkpoint, path, ["walk", "t"])


def test_a_row_without_its_sequence_id_is_refused_by_name(serving, models):
    _, data = models["walks"]
    rows = sent(shuffled_walks(data)[:4])
    del rows[2]["walk"]
    with serving("walks", raise_errors=False) as client:
        answer = client.post("/predict", json={"rows": rows})
        good = client.post("/predict", json={"rows": rows[:2]})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "rows[2].walk"
    assert good.status_code == 200
