"""The hot path of ``nncli serve``: ``POST /predict`` with JSON rows, answered as a plain ASGI
app ahead of FastAPI's routing (``Lane``), the request's work the route's own (``Predicting``).

A one-row request's own work (the body read, its schema validation, the encoding, the answer)
costs tens of microseconds; FastAPI's middleware stack, route matching, dependency solving and
response classes cost about as much again, per request, before and after it. The lane reads
the request's scope, takes a JSON ``/predict`` of a model of rows, and does only that work: the
same ``Bodies`` (the same pydantic request schema, so the same 422s), the same batcher, the
same answer bytes, every refusal answered by the same functions as the app's exception
handlers (``refusal``), and the request counted in the same metrics. Every other request (CSV,
uploads, the other endpoints, ``/predict/`` and its redirect) goes through FastAPI, which still
documents ``/predict`` in the OpenAPI schema.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from nncli.errors import NncliError
from nncli.serve.schema import Refused

LOG = logging.getLogger("nncli.serve")
JSON = "application/json"


def media_of(content_type: str) -> str:
    """A Content-Type header -> its media type (``application/json`` when none is given or a
    ``+json`` one), lower case, without parameters."""
    given = content_type.split(";")[0].strip().lower()
    return JSON if given.endswith("+json") or not given else given


def refusal(exc: Exception) -> JSONResponse:
    """A request's refusal as its JSON answer: ``Refused`` (422, 413, 415, 404), a model's
    ``NncliError`` (422, the field it names), or a bug (500, logged with its traceback by the
    caller, never sent)."""
    if isinstance(exc, Refused):
        return JSONResponse(exc.content(), status_code=exc.status)
    if isinstance(exc, NncliError):
        field = exc.field or exc.where or "rows"
        detail = {"field": field, "expected": None, "found": None, "message": str(exc)}
        return JSONResponse({"error": str(exc), "detail": [detail]}, status_code=422)
    error = f"internal error ({type(exc).__name__}); the server's log has the traceback"
    return JSONResponse({"error": error, "detail": []}, status_code=500)


class Lane:
    """``POST /predict`` with JSON rows, as an ASGI app: ``takes(scope)`` says whether a
    request is the lane's, ``predicting(request)`` is the route's own work, giving the answer's
    (bytes, media type); ``metrics`` count it as ``Counted`` counts the others."""

    def __init__(self, predicting: Any, metrics: Any):
        self.predicting, self.metrics = predicting, metrics

    @staticmethod
    def takes(scope: dict[str, Any]) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/predict":
            return False
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        return media_of(content_type.decode("latin-1")) == JSON

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        start = time.perf_counter()
        self.metrics.in_flight.inc()
        status = 500
        try:
            content, media = await self.predicting(Request(scope, receive), JSON)
            status = 200
            headers = [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", media.encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": content})
        except ClientDisconnect:
            status = 499  # the client left before its body came: nobody to answer
        except Exception as exc:  # every refusal and a bug are answered, never raised
            if not isinstance(exc, Refused | NncliError):
                LOG.error("POST /predict failed", exc_info=exc)
            answer = refusal(exc)
            status = answer.status_code
            await answer(scope, receive, send)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.answered("/predict", status, time.perf_counter() - start)


class LaneApp(FastAPI):
    """The FastAPI app, with ``lane`` (when set) answering the requests it takes before the
    middleware stack and the router see them."""

    lane: Lane | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.lane is not None and self.lane.takes(scope):
            await self.lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
