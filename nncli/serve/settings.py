"""``nncli serve``'s options as one value: where it listens, how it batches, what it refuses.
Plain data, importable without the server's libraries (the command checks them first)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from nncli.errors import SpecError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Settings:
    """``host``/``port`` (loopback unless told; port 0: any free one), ``workers`` (processes,
    each with its own copy of the model), ``max_batch`` (rows of every forward pass),
    ``max_wait_ms`` (how long a request waits for others to share its pass), ``max_body_mb``
    (413 above), ``max_rows`` (rows, or image files, one request may hold), ``max_length``
    (symbols one ``/generate`` may ask for), ``device``, ``unknown`` (error: an unseen
    category is refused; ignore: encoded as zeros)."""

    host: str = LOOPBACK
    port: int = 8000
    workers: int = 1
    max_batch: int = 64
    max_wait_ms: float = 2.0
    max_body_mb: float = 10.0
    max_rows: int = 10_000
    max_length: int = 1_000
    device: str = "cpu"
    unknown: str = "error"

    def check(self) -> Settings:
        """SpecError (exit 2) naming the first option out of its range."""
        bad = [
            ("--port", self.port, 0 <= self.port <= 65535, "a port from 0 to 65535"),
            ("--workers", self.workers, self.workers >= 1, "1 or more"),
            ("--max-batch", self.max_batch, self.max_batch >= 1, "1 or more"),
            ("--max-wait-ms", self.max_wait_ms, self.max_wait_ms >= 0, "0 or more"),
            ("--max-body-mb", self.max_body_mb, self.max_body_mb > 0, "more than 0"),
            ("--max-rows", self.max_rows, self.max_rows >= 1, "1 or more"),
            ("--max-length", self.max_length, self.max_length >= 0, "0 or more"),
            ("--unknown", self.unknown, self.unknown in ("error", "ignore"), "error or ignore"),
        ]
        for option, value, ok, expected in bad:
            if not ok:
                raise SpecError(f"expected {expected}, got {value!r}", field=option)
        return self

    def public(self) -> dict[str, object]:
        """What ``/info`` tells a client about the server (not where it listens)."""
        hidden = ("host", "port", "device")
        return {k: v for k, v in asdict(self).items() if k not in hidden}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text)).check()
