"""``nncli serve``: a checkpoint read once, at start, and answered over HTTP (the server itself
is the ``nncli.serve`` room). Here is the model's side of it, ``Served``: a request's rows
become the frame a CSV file of those rows reads as (``Predictor.prepare_records``), the
server joins their inputs with other requests' in forward passes (``forward``), and each
request's outputs become its answer: the predictions in the data's own terms and, for a
classifier, the probabilities, what ``nncli predict --proba`` writes for the same rows.

Nothing is read from disk after the start: no request can name a file.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nncli import __version__
from nncli.commands.apply import check_rows_kind
from nncli.commands.predictor import PROBA, Predictions, Predictor, Prepared
from nncli.data.columns import NumericColumn, scaled_values, scaling_of
from nncli.data.digest import content_digest
from nncli.errors import NncliError
from nncli.serve.settings import Settings

WORKER_SETTINGS = "NNCLI_SERVE"  # what each process of --workers reads: checkpoint, settings
FACTORY = "nncli.commands.serve:worker_app"
TRAINING_SHOWN = ("epoch", "best_epoch", "best_value", "seed", "device")


def serve(
    checkpoint: Path, settings: Settings, *, ready: Callable[[str], None] | None = None
) -> None:
    """Load ``checkpoint`` and answer requests on ``settings.host:port`` until SIGTERM or
    Ctrl-C; ``ready`` hears the address once it listens. SpecError (exit 2) without the
    ``serve`` extra, for a bad option or an address that cannot be had."""
    from nncli import serve as room

    room.require()
    settings.check()
    from nncli.serve import server
    from nncli.serve.app import build_app

    served = Served.load(Path(checkpoint), settings)
    sock = server.listen(settings.host, settings.port)
    if ready is not None:
        ready(server.url(sock))
    if settings.workers == 1:
        server.run(build_app(served, settings), settings, sock)
        return
    os.environ[WORKER_SETTINGS] = json.dumps(
        {"checkpoint": str(Path(checkpoint).resolve()), "settings": json.loads(settings.to_json())}
    )
    server.run_workers(FACTORY, settings, sock)


def worker_app() -> Any:
    """The app of one process of ``--workers``: the checkpoint loaded once, here."""
    from nncli.serve.app import build_app

    given = json.loads(os.environ[WORKER_SETTINGS])
    settings = Settings(**given["settings"]).check()
    return build_app(Served.load(Path(given["checkpoint"]), settings), settings)


def plain(value: Any) -> Any:
    """A checkpoint's values as JSON takes them: non-finite numbers and other types as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def spec_of(predictor: Predictor) -> Any:
    """The checkpoint's resolved spec as plain values (through the spec room's safe reader),
    or None when it holds none that reads."""
    from nncli.spec.document import parse

    try:
        return plain(parse(predictor.model.spec_yaml, "spec").data)
    except NncliError:
        return None


def reads(predictor: Predictor) -> str:
    """What a request to the model holds: ``rows`` (tables, sequences, time series),
    ``images`` (uploaded files) or ``text`` (a prompt, for ``POST /generate``)."""
    return "rows" if predictor.encoder.tabular else predictor.kind


def input_of(predictor: Predictor) -> dict[str, Any]:
    """``/info``'s ``input`` for a model that reads no rows: an image's size, color and the
    per-channel scaling, or a text model's symbols and context."""
    encoder = predictor.encoder
    if predictor.kind == "images":
        return {
            "image_size": list(encoder.image_size),
            "resize": encoder.resize,
            "color": encoder.color,
            "scaling": {"offset": encoder.mean.tolist(), "scale": encoder.std.tolist()},
        }
    if predictor.kind == "text":
        size = encoder.size
        return {"level": encoder.level, "sequence_length": encoder.sequence_length, "symbols": size}
    return {}


def describe(predictor: Predictor, checkpoint: Path, digest: str) -> dict[str, Any]:
    """``GET /info``: the model as JSON."""
    training = {k: predictor.training[k] for k in TRAINING_SHOWN if k in predictor.training}
    labels = None if predictor.kind == "text" else predictor.labels
    return plain(
        {
            "checkpoint": checkpoint.name,
            "sha256": digest,
            "nncli": __version__,
            "kind": predictor.kind,
            "reads": reads(predictor),
            "task": predictor.task,
            "inputs": predictor.encoder.row_columns(),
            **({"input": input_of(predictor)} if reads(predictor) != "rows" else {}),
            "labels": labels,
            "training": training,
            "spec": spec_of(predictor),
        }
    )


@dataclass(frozen=True)
class Served:
    """A loaded model as the server asks of it (``nncli.serve.app.Model``)."""

    predictor: Predictor
    unknown: str
    info: dict[str, Any]

    @classmethod
    def load(cls, checkpoint: Path, settings: Settings) -> Served:
        """Read ``checkpoint`` once (every check ``predict`` makes); DataError for a model of
        a kind no request can hold."""
        digest = content_digest(checkpoint) if checkpoint.is_file() else ""
        predictor = Predictor.load(checkpoint, settings.device)
        if reads(predictor) not in ("rows", "images", "text"):
            check_rows_kind(predictor.model, predictor.encoder, "requests")
        return cls(predictor, settings.unknown, describe(predictor, checkpoint, digest))

    @property
    def reads(self) -> str:
        return reads(self.predictor)

    @functools.cached_property
    def columns(self) -> list[dict[str, Any]]:
        return self.predictor.encoder.row_columns()

    @functools.cached_property
    def header(self) -> Any:
        """The columns a JSON row holds, as the pandas Index of its frames (made once: an Index
        of text looks its string type up anew each time)."""
        import pandas as pd

        return pd.Index([c["name"] for c in self.columns if c["role"] != "target"])

    def prepare_rows(self, rows: list[dict[str, Any]]) -> Prepared:
        """JSON rows checked against the request schema (every column of the model but the
        targets, a number column's values numbers or None) -> their inputs, as
        ``Predictor.prepare_records`` makes them: the number columns go in as float64 (None:
        NaN, a missing cell), which the encoder reads without making text of them, the same
        values a CSV file's text gives. Rows named ``rows[i]``."""
        import pandas as pd

        given = [c for c in self.columns if c["role"] != "target"]  # the schema drops targets
        names = [c["name"] for c in given]
        if all(c["type"] == "number" for c in given):  # one float64 block (a wide table)
            block = np.array([[row[name] for name in names] for row in rows], dtype=np.float64)
            prepared = self.prepare_numbers(block)
            if prepared is not None:
                return prepared
            frame = pd.DataFrame(block, columns=self.header, copy=False)
        else:
            kinds = [np.float64 if c["type"] == "number" else object for c in given]
            frame = pd.DataFrame(
                {name: np.array([row[name] for row in rows], dtype=kind)
                 for name, kind in zip(names, kinds, strict=True)}
            )  # fmt: skip
        frame.attrs["nncli_rows"] = "rows"
        return self.predictor.prepare(frame, unknown=self.unknown, where="rows", source="rows")

    def prepare_numbers(self, block: np.ndarray) -> Prepared | None:
        """The rows of a table of numbers, (N, F) float64 in the features' order, with no
        missing value -> their inputs without a frame (``block_inputs``); None where the
        frame's way must read them."""
        x = self.block_inputs(block)
        return None if x is None else Prepared(None, x, None, {})

    @functools.cached_property
    def plain_numbers(self) -> bool:
        """A table whose features are all number columns, read without missing-value strings:
        its clean JSON rows need no frame (``prepare_block``)."""
        encoder = self.predictor.encoder
        columns = getattr(encoder, "columns", None)
        if encoder.kind != "csv" or encoder.na_values or not columns:
            return False
        return all(isinstance(column, NumericColumn) for column in columns)

    def block_inputs(self, block: np.ndarray) -> np.ndarray | None:
        """Numbers (N, F) float64 in the features' order -> their inputs, the values
        ``prepare_rows``' frame gives (the encoder's own scaling, ``scaled_values``, then its
        dtype), without the frame: a one-row request's encoding in microseconds. None for a
        table of other columns, a missing value, or one that overflows the dtype: the frame's
        way fills or names them."""
        if not (self.plain_numbers and np.isfinite(block).all()):
            return None
        with np.errstate(over="ignore"):  # an overflow: the frame's way names it
            x = scaled_values(self.scaling, block).astype(self.predictor.encoder.dtype)
        return x if np.isfinite(x).all() else None

    @functools.cached_property
    def scaling(self) -> np.ndarray:
        """The number columns' fill, offset and scale (``scaling_of``), gathered once."""
        return scaling_of(self.predictor.encoder.columns)

    def prepare_table(self, header: list[str], rows: list[list[str]]) -> Prepared:
        """A CSV body's header and rows of text -> their inputs, as the file would give them."""
        import pandas as pd

        frame = pd.DataFrame(rows, columns=header, dtype=object)
        frame.attrs["nncli_rows"] = "rows"
        return self.predictor.prepare(frame, unknown=self.unknown, where="rows", source="rows")

    def prepare_images(self, uploads: list[Any]) -> Prepared:
        """Uploaded image files (each with its ``field``, ``filename`` and ``data``) -> their
        inputs, as ``predict`` reads the same files; DataError at the field of the first that
        is no image, or not of a size the model takes."""
        encoder = self.predictor.encoder
        named = [(upload.field, upload.data) for upload in uploads]
        frame = encoder.read_uploads(named, [upload.filename for upload in uploads])
        return self.predictor.prepare(frame, where="files", source="the files")

    def generate(self, prompt: str, length: int, temperature: float, seed: int) -> str:
        """``nncli generate``'s text for the same prompt, length, temperature and seed (the
        network's passes are the command's, one window at a time)."""
        from nncli.commands.generate import sample

        return sample(
            self.predictor, prompt, length=length, temperature=temperature, seed=seed, what="prompt"
        )

    def forward(self, x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        return self.predictor.outputs(x, mask)

    def answer(self, prepared: Prepared, outputs: np.ndarray) -> dict[str, Any]:
        """``{"predictions": [...]}`` with, for a classifier, ``"probabilities"`` (one
        ``{label: p}`` a row) and, where the model names its rows (a sequence's id and step, a
        forecast's step), ``"ids"``."""
        return answer_of(self.predictor.finish(prepared, outputs))

    def rowwise(self, prepared: Prepared) -> Callable[[np.ndarray], dict[str, list]] | None:
        """``answer`` as a function of the outputs alone, one value a row in each list, where
        a request's answer is that (inputs encoded without a frame: no id column can come
        from it), so that the server's batcher answers a whole round's rows in one call; else
        None."""
        return self.answer_rows if prepared.frame is None else None

    def answer_rows(self, outputs: np.ndarray) -> dict[str, list]:
        return answer_of(self.predictor.finish(Prepared(None, None, None, {}), outputs))

    def answer_csv(self, prepared: Prepared, outputs: np.ndarray) -> str:
        """What ``nncli predict --proba`` writes for the rows."""
        table = self.predictor.finish(prepared, outputs).table(proba=True)
        return table.to_csv(index=False, lineterminator="\n")


def answer_of(done: Predictions) -> dict[str, Any]:
    """Predictions -> the JSON answer (``Served.answer``)."""
    named = {k: v for k, v in done.columns.items() if k.startswith("prediction")}
    ids = {k: v.tolist() for k, v in done.columns.items() if k not in named}
    if list(named) == ["prediction"]:
        predictions = named["prediction"].tolist()
    else:  # one value a target: {target: value} a row
        targets = [k[len("prediction_") :] for k in named]
        values = np.stack(list(named.values()), axis=1).tolist()
        predictions = [dict(zip(targets, row, strict=True)) for row in values]
    answer: dict[str, Any] = {"predictions": predictions}
    if done.probabilities:
        labels = [k[len(PROBA) :] for k in done.probabilities]
        p = np.stack(list(done.probabilities.values()), axis=1).tolist()
        answer["probabilities"] = [dict(zip(labels, row, strict=True)) for row in p]
    if ids:
        names = list(ids)
        rows = zip(*ids.values(), strict=True)
        answer["ids"] = [dict(zip(names, row, strict=True)) for row in rows]
    return answer
