"""``nncli init`` on a table holding free text or image paths writes a spec of several inputs
(``data.inputs``), each such column an input of its own rather than one-hot, and it trains."""

import pandas as pd

from nncli.data.profile import profile
from tests.data.test_table_inputs import _image_table, designed_table
from tests.helpers import invoke


def _init_and_smoke(tmp_path, data) -> str:
    spec = tmp_path / "init.yaml"
    result = invoke("init", data, "--target", "label", "--output", spec)
    assert result.exit_code == 0, result.stderr
    smoke = invoke("train", spec, "--smoke")
    assert smoke.exit_code == 0, smoke.stderr
    return spec.read_text()


def test_a_free_text_column_becomes_a_text_input(tmp_path):
    data = designed_table(tmp_path / "reviews.csv", rows=120)
    table = pd.read_csv(data)
    table["review"] = table["review"] + " and then some more words about it"  # long, distinct
    table.to_csv(data, index=False)
    assert [c.role for c in profile(data, "label").columns] == ["numeric", "numeric", "text"]
    text = _init_and_smoke(tmp_path, data)
    assert "fields: {columns: [amount, noise]}" in text
    assert "review: {column: review, tokens: words" in text
    assert "inputs: [review_code, fields_code]" in text and "categorical" not in text


def test_a_column_of_image_paths_becomes_an_image_input(tmp_path):
    data = _image_table(tmp_path)
    text = _init_and_smoke(tmp_path, data)
    assert "photo: {column: photo, image_size: [32, 32], color: rgb}" in text
    assert "{type: flatten, inputs: photo}" in text
