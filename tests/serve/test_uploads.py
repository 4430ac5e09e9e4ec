"""Image files uploaded to ``POST /predict`` (``multipart/form-data``) for a model of images:
one prediction a file, ``nncli predict --proba``'s for the same files; micro-batched like rows;
every bad upload refused by its form field (422), a body over --max-body-mb 413, and the server
answering a good upload right after each."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from helpers import assert_network_close, invoke

from nncli.commands.predictor import Predictor


def files_of(folder: Path, count: int) -> list[Path]:
    """``count`` PNGs of the labelled folder, taken from every class in turn."""
    classes = [sorted(d.iterdir()) for d in sorted(folder.iterdir())]
    return [classes[i % len(classes)][i // len(classes)] for i in range(count)]


def form(paths: list[Path], field: str = "files") -> list:
    return [(field, (p.name, p.read_bytes(), "image/png")) for p in paths]


def test_each_uploaded_image_gets_predicts_answer(serving, image_model):
    """Six PNGs in one form: six predictions, named by file, each predict --proba's label and
    its probabilities within float32 rounding (predict's pass holds the 36 images of the
    folder, the server's 64 rows: another size of product)."""
    checkpoint, folder = image_model
    paths = files_of(folder, 6)
    written = invoke("predict", checkpoint, folder, "--proba")
    assert written.exit_code == 0, written.stderr
    expected = {Path(r["file"]).name: r for r in csv.DictReader(io.StringIO(written.stdout))}
    with serving(checkpoint) as client:
        info = client.get("/info").json()
        answer = client.post("/predict", files=form(paths))
    assert answer.status_code == 200, answer.text
    answer = answer.json()
    assert (info["reads"], info["input"]["image_size"], info["labels"]) == (
        "images", [8, 8], ["0", "1", "7"],
    )  # fmt: skip
    assert [row["file"] for row in answer["ids"]] == [p.name for p in paths]
    assert answer["predictions"] == [expected[p.name]["prediction"] for p in paths]
    predictor = Predictor.load(checkpoint)
    x = predictor.encoder.transform(folder)
    for path, probabilities in zip(paths, answer["probabilities"], strict=True):
        row = expected[path.name]
        want = [float(row[f"proba_{label}"]) for label in probabilities]
        assert_network_close(list(probabilities.values()), want, predictor.net, x)


def test_uploads_share_passes_and_get_their_lone_answers(serving, image_model):
    """One form of six files and six forms of one file each: the same numbers (every pass has
    --max-batch rows, whoever shares it)."""
    checkpoint, folder = image_model
    paths = files_of(folder, 6)
    with serving(checkpoint, max_batch=4) as client:
        together = client.post("/predict", files=form(paths)).json()
        alone = [client.post("/predict", files=form([p], "file")).json() for p in paths]
        passes = client.app.state.batcher.passes
    assert together["probabilities"] == [a["probabilities"][0] for a in alone]
    assert [a["ids"] for a in alone] == [[{"file": p.name}] for p in paths]
    assert passes == 2 + 6  # six files in passes of 4 rows, then one pass each


def png_cut_short(folder: Path) -> bytes:
    data = files_of(folder, 1)[0].read_bytes()
    return data[:50]  # the header whole (33 bytes), the pixels cut


BAD = {  # name -> (form parts, status, field, a piece of found)
    "a text file": (
        lambda f: form(files_of(f, 1)) + [("files", ("notes.txt", b"hello", "text/plain"))],
        422, "files[1]", "not a PNG, JPEG, BMP or GIF image",
    ),
    "a truncated PNG": (
        lambda f: [("image", ("cut.png", png_cut_short(f), "image/png"))],
        422, "image", "truncated or corrupt",
    ),
    "a form field beside the file": (
        lambda f: ({"comment": "a seven"}, form(files_of(f, 1))), 422, "comment", "not a PNG",
    ),
    "more files than --max-rows": (lambda f: form(files_of(f, 3)), 422, "files", "3 files"),
}  # fmt: skip


def test_a_bad_upload_is_refused_by_its_field_and_the_server_goes_on(serving, image_model):
    checkpoint, folder = image_model
    with serving(checkpoint, raise_errors=False, max_rows=2) as client:
        for name, (parts, status, field, found) in BAD.items():
            sent = parts(folder)
            data, files = sent if isinstance(sent, tuple) else ({}, sent)
            answer = client.post("/predict", data=data, files=files)
            assert answer.status_code == status, (name, answer.text)
            (problem,) = answer.json()["detail"]
            assert problem["field"] == field and found in problem["found"], problem
            assert "image" in problem["expected"] or "files" in problem["expected"]
            good = client.post("/predict", files=form(files_of(folder, 1)))
            assert good.status_code == 200 and len(good.json()["predictions"]) == 1


def test_an_upload_over_max_body_mb_is_413_and_other_bodies_415(serving, image_model):
    checkpoint, folder = image_model
    big = [("files", ("big.png", b"\x89PNG" + bytes(3_000), "image/png"))]
    with serving(checkpoint, raise_errors=False, max_body_mb=0.002) as client:
        over = client.post("/predict", files=big)
        rows = client.post("/predict", json={"rows": [{"file": "/etc/passwd"}]})
        generate = client.post("/generate", json={"prompt": "To be"})
        good = client.post("/predict", files=form(files_of(folder, 1)))
    assert over.status_code == 413 and over.json()["detail"][0]["field"] == "body"
    assert rows.status_code == 415
    assert rows.json()["detail"][0]["expected"] == "multipart/form-data (image files)"
    assert generate.status_code == 404
    assert "POST /predict (this model reads images)" in generate.json()["error"]
    assert good.status_code == 200


def test_a_multipart_body_that_does_not_parse_is_422(serving, image_model):
    checkpoint, folder = image_model
    head = {"Content-Type": "multipart/form-data; boundary=xyz"}
    with serving(checkpoint, raise_errors=False) as client:
        garbage = client.post("/predict", content=b"not a form", headers=head)
        cut = client.post("/predict", content=b"--xyz\r\nContent-Disposition: form", headers=head)
        bare = {"Content-Type": "multipart/form-data"}
        nothing = client.post("/predict", content=b"", headers=bare)
        good = client.post("/predict", files=form(files_of(folder, 1)))
    assert garbage.status_code == 422 and "does not parse" in garbage.json()["error"]
    assert cut.status_code == 422 and "cut short" in cut.json()["error"]
    assert nothing.status_code == 422 and nothing.json()["detail"][0]["field"] == "Content-Type"
    assert good.status_code == 200
    assert np.isclose(sum(good.json()["probabilities"][0].values()), 1.0)
