"""``nncli report``: the page parsed back (html.parser) holds each section and asks no server
for anything (no http:// or https:// in any src or href, every picture a PNG data URI, no
script, stylesheet or frame); its numbers are ``evaluate --json``'s; its ROC AUC is
scikit-learn's ``roc_auc_score`` and its reliability table ``calibration_curve`` on the same
probabilities; permutation importance ranks an added pure-noise column last on a designed table;
several checkpoints stand side by side; and the output rules of every command."""

from __future__ import annotations

import base64
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line, sha

pytest.importorskip("matplotlib")
metrics = pytest.importorskip("sklearn.metrics")
calibration = pytest.importorskip("sklearn.calibration")

from nncli.commands.report import report  # noqa: E402

BASE = ["summary", "layers", "curves"]
CLASSIFIER = ["metrics", "per-class", "confusion", "roc", "pr", "calibration", "wrong"]
DESIGNED_SPEC = """\
version: 1
seed: 0
data: {kind: csv, path: designed.csv, target: label, validation_split: 0.25}
model:
  layers: [{type: dense, units: 16, activation: tanh}, {type: dense, units: 1, activation: sigmoid}]
loss: binary_cross_entropy
optimizer: {type: adam, learning_rate: 0.03}
training: {epochs: 30, batch_size: 32}
output: out/model.h5
"""

REGRESSION_SPEC = """\
version: 1
seed: 0
data: {kind: csv, path: iris.csv, target: sepal_length_cm, test_split: 0.2}
model: {layers: [{type: dense, units: 6, activation: tanh}, {type: dense, units: 1}]}
loss: mse
training: {epochs: 4, batch_size: 32}
output: out/model.h5
"""


class Page(HTMLParser):
    """A report parsed: each section's run columns, table cells (text, data-value), pictures;
    every tag and every src/href of the page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.tags: set[str] = set()
        self.links: list[str] = []
        self.current: dict | None = None
        self.cell: list | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "section":
            self.current = self.sections[attrs["id"]] = {"runs": 0, "cells": [], "images": []}
        elif self.current is not None and tag == "div" and attrs.get("class") == "run":
            self.current["runs"] += 1
        elif self.current is not None and tag == "img":
            self.current["images"].append(attrs["src"])
        elif self.current is not None and tag in ("td", "th"):
            self.cell = ["", attrs.get("data-value")]
            self.current["cells"].append(self.cell)

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cell = None

    def values(self, section: str) -> list[float]:
        return [float(v) for _, v in self.sections[section]["cells"] if v is not None]

    def texts(self, section: str) -> list[str]:
        return [text for text, _ in self.sections[section]["cells"]]


def train(folder: Path, spec: str, data: Path, name: str) -> Path:
    folder.mkdir()
    shutil.copy(data, folder / name)
    (folder / "spec.yaml").write_text(spec)
    result = invoke("train", folder / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return folder / "out" / "model.h5"


def designed_table(path: Path) -> Path:
    """400 rows: ``label`` = 2a + b + shift(colour) > 0 with shift red -1.5, green 0, blue 1.5
    (a, b standard normal, colour uniform); ``noise`` is drawn independently of everything, so
    shuffling it cannot change what the label depends on."""
    rng = np.random.default_rng(7)
    a, b, noise = rng.standard_normal((3, 400))
    colour = rng.choice(["red", "green", "blue"], 400)
    shift = np.select([colour == "red", colour == "blue"], [-1.5, 1.5], 0.0)
    label = np.where(2 * a + b + shift > 0, "yes", "no")
    lines = ["a,b,colour,noise,label"] + [
        f"{a[i]:.5f},{b[i]:.5f},{colour[i]},{noise[i]:.5f},{label[i]}" for i in range(400)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    designed = designed_table(root / "designed.csv")
    return {
        "iris": train(root / "iris", iris_spec("{epochs: 3, batch_size: 16}"), IRIS, "iris.csv"),
        "designed": train(root / "designed", DESIGNED_SPEC, designed, "designed.csv"),
        "regression": train(root / "regression", REGRESSION_SPEC, IRIS, "iris.csv"),
    }


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pictures as a PNG signature alone: the tests that read no picture skip matplotlib's
    drawing (a second a figure on a busy machine); the page's pictures are checked above."""
    from nncli.plots import draw

    monkeypatch.setattr(draw, "render", lambda picture: b"\x89PNG\r\n\x1a\n")


@pytest.fixture(scope="module")
def iris_page(runs, tmp_path_factory) -> tuple[Page, dict]:
    output = tmp_path_factory.mktemp("iris_page") / "report.html"
    done = report([runs["iris"]], data=runs["iris"].parents[1] / "iris.csv", output=output)
    return Page(output.read_text(encoding="utf-8")), done


def test_the_page_holds_each_section_and_asks_no_server_for_anything(iris_page):
    page, done = iris_page
    assert list(page.sections) == done["sections"] == BASE + CLASSIFIER + ["importance"]
    assert not page.tags & {"script", "link", "iframe", "object", "embed", "base"}
    pictures = [src for s in page.sections.values() for src in s["images"]]
    assert len(pictures) == 4  # curves, ROC, precision-recall, reliability (a table: no images)
    for src in pictures:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for link in page.links:
        assert "http://" not in link and "https://" not in link and not link.startswith("//")
        assert link.startswith(("data:image/png;base64,", "#")), link
    summary = page.texts("summary")
    for what in ("data", "device", "processor", "epochs", "training time", "versions"):
        assert what in summary


def test_its_numbers_are_evaluate_json(runs, iris_page):
    page, _ = iris_page
    data = runs["iris"].parents[1] / "iris.csv"
    evaluated = json.loads(invoke("evaluate", runs["iris"], data, "--json").stdout)
    assert page.values("metrics") == list(evaluated["metrics"].values())
    per_class = [r[k] for r in evaluated["per_class"] for k in ("precision", "recall", "f1")]
    assert page.values("per-class") == per_class
    texts = page.texts("confusion")
    counts = [int(t) for t in texts if t.isdigit()]
    assert counts == [n for row in evaluated["confusion"] for n in row]


def test_roc_auc_is_scikit_learns_and_the_reliability_table_its_calibration_curve(iris_page):
    page, done = iris_page
    scored = done["runs"][0].scored
    p, classes = scored.probabilities, scored.classes
    expected = [metrics.roc_auc_score(classes == k, p[:, k]) for k in range(3)]
    np.testing.assert_allclose(page.values("roc"), expected, rtol=1e-12)
    right = p.argmax(axis=1) == classes
    observed, predicted = calibration.calibration_curve(right, p.max(axis=1), n_bins=10)
    table = np.array(page.values("calibration")).reshape(-1, 2)  # predicted, observed a row
    np.testing.assert_allclose(table[:, 0], predicted, rtol=1e-12)
    np.testing.assert_allclose(table[:, 1], observed, rtol=1e-12)


def test_a_pure_noise_column_ranks_last_and_a_category_is_one_column(runs, tmp_path, quick):
    checkpoint = runs["designed"]
    output = tmp_path / "designed.html"
    done = report([checkpoint], data=checkpoint.parents[1] / "designed.csv", output=output)
    ranked = [item.name for item in done["runs"][0].importance]
    assert sorted(ranked) == ["a", "b", "colour", "noise"]  # colour's one-hot moved as one
    assert ranked[-1] == "noise" and ranked[0] == "a"
    page = Page(output.read_text(encoding="utf-8"))
    assert [t for t in page.texts("importance") if t in ranked] == ranked
    roc = page.sections["roc"]
    assert [t for t in page.texts("roc") if t in ("yes", "no")] == ["yes"]  # binary: one curve
    assert len(roc["images"]) == 1
    (auc,) = page.values("roc")
    scored = done["runs"][0].scored
    assert auc == pytest.approx(metrics.roc_auc_score(scored.classes, scored.probabilities[:, 1]))


@pytest.mark.slow
def test_several_checkpoints_stand_side_by_side(runs, tmp_path):
    output = tmp_path / "both.html"
    data = runs["iris"].parents[1] / "iris.csv"
    other = train(tmp_path / "iris2", iris_spec("{epochs: 5, batch_size: 8}"), IRIS, "iris.csv")
    result = invoke("report", runs["iris"], other, "--data", data, "--output", output)
    assert result.exit_code == 0, result.stderr
    page = Page(output.read_text(encoding="utf-8"))
    assert list(page.sections)[0] == "comparison"
    sections = [section for name, section in page.sections.items() if name != "comparison"]
    assert all(section["runs"] == 2 for section in sections)
    header = page.texts("comparison")[:3]
    assert header == ["metric", "iris/out/model.h5", "iris2/out/model.h5"]
    assert len(page.sections["comparison"]["images"]) == 1  # the learning curves, shared axes


def test_without_data_the_page_shows_the_run_alone(runs, tmp_path, quick):
    result = invoke("report", runs["iris"], "--output", tmp_path / "alone.html")
    assert result.exit_code == 0, result.stderr
    page = Page((tmp_path / "alone.html").read_text(encoding="utf-8"))
    assert list(page.sections) == BASE


def test_the_output_rules(runs, tmp_path, quick):
    checkpoint = runs["iris"]
    data = checkpoint.parents[1] / "iris.csv"
    output = tmp_path / "r.html"
    output.write_text("mine")
    one_error_line(invoke("report", checkpoint, "--output", output), 2, "--force")
    assert output.read_text() == "mine"
    kept = sha(data), sha(checkpoint)
    one_error_line(invoke("report", checkpoint, "--data", data, "--output", data), 2)
    one_error_line(invoke("report", checkpoint, "--output", checkpoint), 2)
    assert (sha(data), sha(checkpoint)) == kept
    one_error_line(invoke("report", checkpoint, "--output", tmp_path / "r.txt"), 2, ".html")
    result = invoke("report", checkpoint, "--output", output, "--force")
    assert result.exit_code == 0 and "replaced" in result.stderr
    assert output.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_without_matplotlib_one_line_with_the_install_hint(runs, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    result = invoke("report", runs["iris"], "--output", tmp_path / "r.html")
    one_error_line(result, 2, "nncli report", 'pip install -e ".[plot]"')
    assert not (tmp_path / "r.html").exists()


def test_wrong_rows_are_the_most_confident_mistakes_shown_in_the_files_terms(runs):
    from nncli.commands.predictor import Predictor
    from nncli.commands.report_run import Scored, table_values, wrong_rows

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.7, 0.3]])
    scored = Scored(["no", "yes"], np.array([0, 0, 0, 0, 1]), probabilities, None)
    assert wrong_rows(scored).tolist() == [3, 1, 4, 2]  # 0.95, 0.8, 0.7, 0.6; row 0 is right
    assert wrong_rows(scored, 2).tolist() == [3, 1]
    checkpoint = runs["designed"]
    predictor = Predictor.load(checkpoint)
    frame = predictor.read_file(checkpoint.parents[1] / "designed.csv")
    x, _ = predictor.encoder.inputs(frame)
    shown = dict(table_values(predictor, np.asarray(x)[:5]))
    assert list(shown) == ["a", "b", "colour", "noise"]
    assert shown["colour"].tolist() == frame["colour"].astype(str).tolist()[:5]
    np.testing.assert_allclose(shown["a"].astype(float), frame["a"].astype(float)[:5], rtol=1e-3)


def test_a_regression_shows_its_fit_on_evaluates_rows_and_the_rise_of_its_loss(runs, quick):
    checkpoint = runs["regression"]
    data = checkpoint.parents[1] / "iris.csv"
    done = report([checkpoint], data=data, output=checkpoint.parents[1] / "r.html")
    assert done["sections"] == BASE + ["metrics", "fit", "importance"]
    evaluated = json.loads(invoke("evaluate", checkpoint, data, "--json").stdout)
    (fit,) = done["runs"][0].fit.fits
    assert len(fit.actual) == evaluated["rows"]
    rmse = np.sqrt(np.mean((fit.actual - fit.predicted) ** 2))
    assert rmse == pytest.approx(evaluated["metrics"]["rmse"], rel=1e-5)
    page = Page((checkpoint.parents[1] / "r.html").read_text(encoding="utf-8"))
    assert "the rise in the loss" in (checkpoint.parents[1] / "r.html").read_text()
    assert len(page.values("importance")) == 2 * 4  # drop and spread of each of 4 columns


def test_importance_shuffles_a_seeded_sample_of_a_large_table(runs, monkeypatch):
    from nncli.commands import report_run
    from nncli.commands.predictor import Predictor

    seen = []
    original = report_run.permutation_importance

    def spy(score, x, groups, rng, **kwargs):
        seen.append(x.copy())
        return original(score, x, groups, rng, **kwargs)

    monkeypatch.setattr(report_run, "IMPORTANCE_ROWS", 40)
    monkeypatch.setattr(report_run, "permutation_importance", spy)
    checkpoint = runs["designed"]
    predictor = Predictor.load(checkpoint)
    from nncli.commands.evaluate import score_file

    result = score_file(predictor, checkpoint.parents[1] / "designed.csv")
    scored = report_run.scored_rows(predictor, result, result["outputs"])
    first = report_run.importance(predictor, result, scored)
    again = report_run.importance(predictor, result, scored)
    assert len(result["inputs"]) == 400 and [len(x) for x in seen] == [40, 40]
    np.testing.assert_array_equal(seen[0], seen[1])  # the same sample: seeded
    assert first == again
