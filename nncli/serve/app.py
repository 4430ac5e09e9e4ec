"""The FastAPI app of ``nncli serve``: ``build_app(model, settings)``.

``GET /health``, ``GET /info``, ``POST /predict`` (JSON rows or a CSV table for a model of rows,
image files uploaded as ``multipart/form-data`` for a model of images), ``POST /generate`` (a
text model's prompt), ``GET /metrics`` and the OpenAPI document at ``/docs`` with the request
schema of the model's columns. Bad input is refused by name and never reaches a traceback: a
``Refused`` request (schema, size, content type) and an ``NncliError`` from the model's own
checks are 422 (413 for a body over the limit, 415 for a content type the endpoint does not
read, 404 for the endpoint of another kind of model); only a bug answers 500, its traceback in
the server's log. A JSON ``/predict`` of a model of rows is answered by the same work
(``predicting``) through ``lane.Lane``, ahead of FastAPI's routing; the route stays for the
other bodies and documents the endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic_core import to_json  # pydantic's serializer: each float's shortest repr, fast

from nncli.errors import DataError, NncliError
from nncli.serve.batching import Batcher
from nncli.serve.lane import Lane, LaneApp, media_of, refusal
from nncli.serve.metrics import Counted, Metrics
from nncli.serve.schema import (
    Columns,
    Problem,
    Refused,
    ValidationError,
    csv_table,
    found_text,
    generate_problems,
    generate_request,
    number_rows,
    place,
    problems,
)
from nncli.serve.settings import Settings
from nncli.serve.uploads import FORM, uploads

LOG = logging.getLogger("nncli.serve")
CSV = "text/csv"
JSON = "application/json"


class Prepared(Protocol):
    x: Any  # (N, ...), or {input name: (N, ...)} for a model of several inputs
    mask: Any  # None, (N, T), or {input name: (N, T)}


class Model(Protocol):
    """What the app asks of a loaded model (``nncli.commands.serve.Served``)."""

    info: dict[str, Any]
    columns: list[dict[str, Any]]
    reads: str  # rows, images or text

    def prepare_rows(self, rows: list[dict[str, Any]]) -> Prepared: ...
    def prepare_numbers(self, block: np.ndarray) -> Prepared | None: ...
    def prepare_table(self, header: list[str], rows: list[list[str]]) -> Prepared: ...
    def prepare_images(self, uploads: list[Any]) -> Prepared: ...
    def generate(self, prompt: str, length: int, temperature: float, seed: int) -> str: ...
    def forward(self, x: Any, mask: Any) -> np.ndarray: ...
    def answer(self, prepared: Prepared, outputs: np.ndarray) -> dict[str, Any]: ...
    def rowwise(self, prepared: Prepared) -> Callable[[np.ndarray], dict[str, list]] | None: ...
    def answer_csv(self, prepared: Prepared, outputs: np.ndarray) -> str: ...


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) once it passes ``limit`` bytes: by its declared
    Content-Length before a byte is read, else as it streams in."""
    over = Problem("body", f"at most {limit:,} bytes (--max-body-mb)", "")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused([Problem(over.field, over.expected, f"{int(declared):,} bytes")], 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused([Problem(over.field, over.expected, f"more than {limit:,} bytes")], 413)
        chunks.append(chunk)
    return b"".join(chunks)


ACCEPTS = {"rows": (JSON, CSV), "images": (FORM,)}
IMAGE = "an image file (PNG, JPEG, BMP or GIF)"


def media_type(request: Request, reads: str) -> str:
    """The body's media type, one the model's requests come in (rows: JSON unless the client
    says CSV; images: a multipart form); 415 for any other."""
    given = media_of(request.headers.get("content-type", ""))
    accepted = ACCEPTS[reads]
    if given in accepted:
        return given
    words = " or ".join(accepted) + (" (image files)" if reads == "images" else "")
    raise Refused([Problem("Content-Type", words, found_text(given))], 415)


def elsewhere(path: str, reads: str) -> Refused:
    """404 for the endpoint of another kind of model, naming the one this model answers."""
    other = "/generate" if reads == "text" else "/predict"
    model = {"text": "generates text", "images": "reads images", "rows": "reads rows"}[reads]
    return Refused([Problem(path, f"POST {other} (this model {model})", f"POST {path}")], 404)


def handlers(app: FastAPI) -> None:
    """Refusals as 422/413/415 JSON, the model's errors as 422, a bug as 500 (logged): the
    answers ``refusal`` gives the lane's requests too."""

    @app.exception_handler(Refused)
    @app.exception_handler(NncliError)
    async def refused(request: Request, exc: Exception) -> JSONResponse:
        return refusal(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = [Problem(place(tuple(e["loc"]))[0], e["msg"], found_text(e.get("input")))
                 for e in exc.errors()]  # fmt: skip
        return refusal(Refused(found))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        LOG.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return refusal(exc)


def openapi(app: FastAPI, request_models: dict[str, Any], reads: str) -> dict[str, Any]:
    """The OpenAPI document, each POST's body the model's own request schema: rows (JSON or
    CSV) or image files for ``/predict``, the prompt and its options for ``/generate``."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, request_model in request_models.items():
            body = request_model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[name] = body
        table = {"type": "string", "description": "A CSV table: a header line, then rows."}
        files = {"type": "array", "items": {"type": "string", "format": "binary"}}
        form = {"type": "object", "properties": {"files": files}, "required": ["files"]}
        content = {
            "rows": {
                JSON: {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
                CSV: {"schema": table},
            },
            "images": {FORM: {"schema": form}},
            "text": {JSON: {"schema": {"$ref": "#/components/schemas/GenerateRequest"}}},
        }[reads]
        path = "/generate" if reads == "text" else "/predict"
        schema["paths"][path]["post"]["requestBody"] = {"required": True, "content": content}
        app.openapi_schema = schema
    return app.openapi_schema


class Bodies:
    """What a request's body becomes, every refusal raised before any pass: the model's inputs
    (``/predict``) or a generation's values (``/generate``), through the request schemas
    ``rows`` and ``prompt``."""

    def __init__(self, model: Model, settings: Settings, columns: Columns):
        self.model, self.settings, self.columns = model, settings, columns
        self.rows = columns.request_model()
        self.prompt = generate_request(settings.max_length)

    def prepared(self, kind: str, body: bytes, content_type: str) -> Prepared:
        """A read body of media type ``kind`` -> the model's inputs for it."""
        if kind == CSV:
            return self.model.prepare_table(*csv_table(csv_text(body), self.columns))
        if kind == FORM:
            files = uploads(body, content_type, self.settings.max_rows)
            try:
                return self.model.prepare_images(files)
            except DataError as exc:  # the first file that is no image the model takes
                raise Refused([Problem(exc.where or "files", IMAGE, exc.message)]) from None
        numbers = self.columns.numbers
        block = None if numbers is None else number_rows(body, numbers, self.settings.max_rows)
        quick = None if block is None else self.model.prepare_numbers(block)
        if quick is not None:
            return quick
        try:
            parsed = self.rows.model_validate_json(body)
        except ValidationError as exc:
            raise Refused(problems(exc, self.columns)) from None
        return self.model.prepare_rows(parsed.model_dump(by_alias=True)["rows"])

    def generation(self, body: bytes) -> tuple[str, int, float, int]:
        """A ``/generate`` body -> (prompt, length, temperature, seed)."""
        try:
            asked = self.prompt.model_validate_json(body)
        except ValidationError as exc:
            raise Refused(generate_problems(exc, self.settings.max_length)) from None
        return asked.prompt, asked.length, asked.temperature, asked.seed


def build_app(model: Model, settings: Settings) -> FastAPI:
    """The app serving ``model`` under ``settings`` (batching, limits, unknown categories)."""
    columns = Columns(model.columns, settings.unknown, settings.max_rows)
    bodies = Bodies(model, settings, columns)
    metrics = Metrics(settings.max_batch)
    batcher = Batcher(
        model.forward, settings.max_batch, settings.max_wait_ms / 1000, metrics.observe_round
    )
    limit = int(settings.max_body_mb * 1024 * 1024)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await batcher.start()
        yield
        await batcher.stop()

    title = f"nncli serve: {model.info.get('checkpoint', 'a model')}"
    app = LaneApp(title=title, version=str(model.info.get("nncli", "")), lifespan=lifespan)
    app.state.batcher, app.state.metrics = batcher, metrics
    handlers(app)

    async def predicting(request: Request, kind: str) -> tuple[bytes, str]:
        """A ``/predict`` request's body of media type ``kind`` -> its answer's (bytes, media
        type): read, checked and encoded while the batcher expects it, then its passes."""
        columns.unserved()
        with batcher.expect():
            body = await read_body(request, limit)
            inputs = bodies.prepared(kind, body, request.headers.get("content-type", ""))
        finish = model.rowwise(inputs) if kind == JSON else None
        outputs = await batcher.submit(inputs.x, inputs.mask, finish)
        if kind == CSV:
            return model.answer_csv(inputs, outputs).encode(), CSV
        return to_json(outputs if finish else model.answer(inputs, outputs)), JSON

    if model.reads == "rows":
        app.lane = Lane(predicting, metrics)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """200 once the model is loaded (it is loaded before the server listens)."""
        return {"status": "ok"}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        """The model: task, input columns with their scaling, labels, spec, version, sha256."""
        return {**model.info, "server": settings.public()}

    @app.get("/metrics")
    async def metrics_text() -> Response:
        """Prometheus text: requests by status, latency, batch sizes, forward passes."""
        return Response(metrics.text(), media_type=metrics.content_type)

    @app.post("/predict", responses={404: {}, 413: {}, 415: {}, 422: {}})
    async def predict(request: Request) -> Response:
        """Rows -> predictions (and a classifier's probabilities): JSON ``{"rows": [...]}``,
        or a ``text/csv`` table answered as CSV (what ``nncli predict --proba`` writes); for a
        model of images, image files as ``multipart/form-data``, one prediction a file."""
        if model.reads == "text":
            raise elsewhere("/predict", model.reads)
        content, media = await predicting(request, media_type(request, model.reads))
        return Response(content, media_type=media)

    @app.post("/generate", responses={404: {}, 413: {}, 422: {}})
    async def generate(request: Request) -> dict[str, str]:
        """A text model's prompt -> ``{"text": ...}``: the prompt and ``length`` symbols drawn
        at ``temperature`` with ``seed``, what ``nncli generate`` prints for the same values."""
        if model.reads != "text":
            raise elsewhere("/generate", model.reads)
        values = bodies.generation(await read_body(request, limit))
        return {"text": await batcher.call(model.generate, *values)}

    schemas = {"PredictRequest": bodies.rows, "GenerateRequest": bodies.prompt}
    app.openapi = lambda: openapi(app, schemas, model.reads)  # type: ignore[method-assign]
    app.add_middleware(Counted, metrics=metrics)
    return app


def csv_text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        found = f"bytes that are not UTF-8 at byte {err.start}"
        raise Refused([Problem("body", "UTF-8 text", found)]) from None
