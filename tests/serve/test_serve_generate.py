"""``POST /generate`` for a text model: the text ``nncli generate`` prints for the same prompt,
length, temperature and seed; every bad value refused by its key (422), and the server
answering a good prompt right after each; ``/predict`` of a text model, and ``/generate`` of
a model of rows, point to the other endpoint (404)."""

from __future__ import annotations

import pytest
from helpers import invoke


def generated(checkpoint, prompt: str, length: int, temperature: float, seed: int) -> str:
    result = invoke(
        "generate", checkpoint, "--prompt", prompt, "--length", str(length),
        "--temperature", str(temperature), "--seed", str(seed),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result.stdout.removesuffix("\n")


@pytest.mark.parametrize("temperature, seed", [(0.8, 3), (0.0, 0), (1.5, 11)])
def test_generate_answers_what_nncli_generate_prints(serving, text_model, temperature, seed):
    expected = generated(text_model, "To be", 40, temperature, seed)
    body = {"prompt": "To be", "length": 40, "temperature": temperature, "seed": seed}
    with serving(text_model) as client:
        answer = client.post("/generate", json=body)
        again = client.post("/generate", json=body)
        info = client.get("/info").json()
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"text": expected} == again.json()
    assert expected.startswith("To be") and len(expected) == len("To be") + 40
    assert info["reads"] == "text" and info["input"]["sequence_length"] == 16


def test_defaults_are_nncli_generates(serving, text_model):
    with serving(text_model) as client:
        answer = client.post("/generate", json={"prompt": "ROMEO"}).json()
    assert answer["text"] == generated(text_model, "ROMEO", 200, 1.0, 0)


BAD = {  # body -> (field, a piece of expected, a piece of found)
    '{"length": 5}': ("prompt", "text in the model's vocabulary", "nothing"),
    '{"prompt": ""}': ("prompt", "at least one char to start from", "''"),
    '{"prompt": "snow \\u2603"}': ("prompt", "vocabulary", "'\u2603'"),
    '{"prompt": "To", "length": -1}': ("length", "from 0 to 50 (--max-length)", "-1"),
    '{"prompt": "To", "length": 51}': ("length", "from 0 to 50", "51"),
    '{"prompt": "To", "length": 2.5}': ("length", "a whole number", "2.5"),
    '{"prompt": "To", "temperature": -0.5}': ("temperature", "0 or more", "-0.5"),
    '{"prompt": "To", "temperature": "hot"}': ("temperature", "a finite number", '"hot"'),
    '{"prompt": "To", "seed": -1}': ("seed", "a whole number from 0", "-1"),
    '{"prompt": "To", "lenght": 5}': ("lenght", "(did you mean 'length'?)", "an unknown key"),
    '{"prompt": "To", ': ("body", "JSON", "invalid JSON"),
}


def test_a_bad_value_is_refused_by_its_key_and_the_server_goes_on(serving, text_model):
    head = {"Content-Type": "application/json"}
    with serving(text_model, raise_errors=False, max_length=50) as client:
        for body, (field, expected, found) in BAD.items():
            answer = client.post("/generate", content=body.encode(), headers=head)
            assert answer.status_code == 422, (body, answer.text)
            problem = answer.json()["detail"][0]
            assert problem["field"] == field, problem
            assert expected in (problem["expected"] or problem["message"]), problem
            assert found in (problem["found"] or problem["message"]), problem
            good = client.post("/generate", json={"prompt": "To", "length": 3})
            assert good.status_code == 200 and len(good.json()["text"]) == 5


def test_each_model_points_to_its_own_endpoint(serving, text_model):
    with serving(text_model, raise_errors=False) as client:
        predict = client.post("/predict", json={"rows": [{"text": "To be"}]})
        good = client.post("/generate", json={"prompt": "To", "length": 1})
    with serving("iris", raise_errors=False) as client:
        generate = client.post("/generate", json={"prompt": "To be"})
    assert predict.status_code == 404 and "POST /generate" in predict.json()["error"]
    assert generate.status_code == 404 and "this model reads rows" in generate.json()["error"]
    assert good.status_code == 200
