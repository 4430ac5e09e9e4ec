"""The serve tests' models: the bundled table specs trained for an epoch or two, once a session,
each with its whole data set, a small CNN on digit images and a character LSTM; ``serving``
opens an app on one of them through FastAPI's test client (the batcher running, as under
uvicorn)."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import DATASETS, ROOT, invoke, text_spec

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")
pytest.importorskip("httpx")

SPECS = {  # name -> (spec in models/, data set, epochs): every bundled spec of rows
    "iris": ("iris.yaml", "iris.csv", 2),
    "penguins": ("penguins.yaml", "penguins.csv", 2),
    "walks": ("walks-gru.yaml", "walks.csv", 1),
    "sunspots": ("sunspots-lstm.yaml", "sunspots_yearly.csv", 1),
}


NUMBERS = {  # the columns a JSON client would send as numbers
    "iris": {"sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"},
    "penguins": {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"},
    "walks": {"t", "value"},
    "sunspots": {"sunactivity"},
}


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (checkpoint, its data set's CSV file)."""
    root = tmp_path_factory.mktemp("serve-models")
    out = {}
    for name, (spec, data, epochs) in SPECS.items():
        text = (ROOT / "models" / spec).read_text().replace("../datasets/", "")
        (root / f"{name}.yaml").write_text(text.replace("epochs:", f"epochs: {epochs} #"))
        (root / data).write_bytes((DATASETS / data).read_bytes())
        checkpoint = root / f"{name}.h5"
        result = invoke("train", root / f"{name}.yaml", "--quiet", "--output", checkpoint)
        assert result.exit_code == 0, result.stderr
        out[name] = (checkpoint, root / data)
    return out


IMAGE_SPEC = """version: 1
seed: 0
data: {kind: images, path: digits, image_size: [8, 8], color: grayscale, normalize: standard,
       validation_split: 0.2}
model:
  layers:
    - {type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu}
    - {type: maxpool2d, pool_size: 2}
    - flatten
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 2, batch_size: 16}
"""
DIGITS = ("0", "1", "7")  # the classes of the small image model, 12 images each


@pytest.fixture(scope="session")
def image_model(tmp_path_factory) -> tuple[Path, Path]:
    """A small CNN on 36 of the digits PNGs -> (checkpoint, its labelled image folder)."""
    root = tmp_path_factory.mktemp("serve-images")
    for digit in DIGITS:
        (root / "digits" / digit).mkdir(parents=True)
        for png in sorted((DATASETS / "digits_png" / digit).iterdir())[:12]:
            (root / "digits" / digit / png.name).write_bytes(png.read_bytes())
    (root / "digits.yaml").write_text(IMAGE_SPEC)
    checkpoint = root / "digits.h5"
    result = invoke("train", root / "digits.yaml", "--quiet", "--output", checkpoint)
    assert result.exit_code == 0, result.stderr
    return checkpoint, root / "digits"


@pytest.fixture(scope="session")
def text_model(tmp_path_factory) -> Path:
    """A character LSTM on 3,000 characters of Shakespeare -> its checkpoint."""
    root = tmp_path_factory.mktemp("serve-text")
    layers = "[{type: lstm, units: 8, return_sequences: true}, {type: dense, units: auto, "
    layers += "activation: softmax}]"
    spec = text_spec(root, "level: char, sequence_length: 16", layers)
    result = invoke("train", spec, "--quiet")
    assert result.exit_code == 0, result.stderr
    return root / "out" / "model.h5"


def rows_of(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    """A CSV file's rows as records of text (at most ``limit``)."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return rows[:limit]


def typed(records: list[dict[str, str]], numbers: set[str]) -> list[dict[str, object]]:
    """Records as a JSON client sends them: the ``numbers`` columns as numbers, empty cells
    as null."""

    def value(name: str, text: str) -> object:
        if text == "":
            return None
        return float(text) if name in numbers else text

    return [{k: value(k, v) for k, v in record.items()} for record in records]


def concurrently(client, requests: list[list[dict]]) -> list[dict]:
    """Every request's JSON rows posted to ``client``'s app at once -> their answers, in order."""
    import asyncio

    import httpx

    async def together() -> list[dict]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
            sent = [http.post("/predict", json={"rows": r}) for r in requests]
            return [answer.json() for answer in await asyncio.gather(*sent)]

    return client.portal.call(together)


@contextmanager
def open_served(checkpoint: Path, raise_errors: bool = True, **given) -> Iterator:
    """A TestClient on ``checkpoint``'s app under the settings ``given``."""
    with warnings.catch_warnings():  # starlette's note that its client will move off httpx
        warnings.filterwarnings("ignore", message="Using `httpx`")
        from fastapi.testclient import TestClient

    from nncli.commands.serve import Served
    from nncli.serve.app import build_app
    from nncli.serve.settings import Settings

    settings = Settings(**given).check()
    app = build_app(Served.load(checkpoint, settings), settings)
    with TestClient(app, raise_server_exceptions=raise_errors) as client:
        yield client


@pytest.fixture
def serving(models) -> Callable[..., contextmanager]:
    """``with serving(name, **settings) as client``: a TestClient on that model's app."""

    def open_app(name: str | Path, raise_errors: bool = True, **given):
        """A bundled model by its name, or any checkpoint by its path."""
        checkpoint = models[name][0] if isinstance(name, str) else name
        return open_served(checkpoint, raise_errors, **given)

    return open_app
