"""Files uploaded as ``multipart/form-data`` (what ``curl -F file=@seven.png`` sends), parsed
in memory by python-multipart from a body already held under ``--max-body-mb``: nothing is
written to disk, and a request can name no file of the server's.

``uploads(body, content_type, most)`` -> one ``Upload`` a part, each named for messages by its
form field (``file``, or ``files[2]`` where a field is sent more than once); Refused (422) for
a body that does not parse, no part, or more than ``most``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from nncli.serve.schema import Problem, Refused, found_text

FORM = "multipart/form-data"
# python-multipart logs each body that does not parse; the client hears of it (422), and a
# server's log is no place for every bad request
logging.getLogger("python_multipart").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Upload:
    """One part of a form: ``field`` (its name in messages), ``filename`` as the client gave it
    (only ever echoed back, never opened) and its bytes."""

    field: str
    filename: str
    data: bytes


class Parts:
    """python-multipart's callbacks, collecting each part's name, filename and bytes."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str, bytes]] = []
        self.data: list[bytes] = []
        self.headers: dict[bytes, bytes] = {}
        self.name, self.value, self.ended = b"", b"", False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.begin,
            "on_part_data": lambda data, start, end: self.data.append(data[start:end]),
            "on_part_end": self.end,
            "on_header_field": lambda data, start, end: self.add("name", data[start:end]),
            "on_header_value": lambda data, start, end: self.add("value", data[start:end]),
            "on_header_end": self.header,
            "on_end": lambda: setattr(self, "ended", True),
        }

    def add(self, what: str, piece: bytes) -> None:
        setattr(self, what, getattr(self, what) + piece)

    def begin(self) -> None:
        self.data, self.headers = [], {}

    def header(self) -> None:
        self.headers[self.name.strip().lower()] = self.value.strip()
        self.name, self.value = b"", b""

    def end(self) -> None:
        options = parse_options_header(self.headers.get(b"content-disposition", b""))[1]
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        self.found.append((name, filename, b"".join(self.data)))


def uploads(body: bytes, content_type: str, most: int) -> list[Upload]:
    """A ``multipart/form-data`` body -> its parts, in order (module docstring)."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        expected = f"{FORM} with a boundary"
        raise Refused([Problem("Content-Type", expected, found_text(content_type))])
    parts = Parts()
    try:
        parser = MultipartParser(boundary, parts.callbacks())
        parser.write(body)
        parser.finalize()
    except FormParserError as err:
        found = f"one that does not parse ({err})"
        raise Refused([Problem("body", f"a {FORM} body", found)]) from None
    if not parts.ended:
        raise Refused([Problem("body", f"a {FORM} body", "one cut short (no closing boundary)")])
    if not parts.found:
        raise Refused([Problem("files", "at least 1 image file", "none")])
    if len(parts.found) > most:
        found = f"{len(parts.found)} files"
        raise Refused([Problem("files", f"at most {most} files (--max-rows)", found)])
    times, seen = Counter(name for name, _, _ in parts.found), Counter()
    named = []
    for name, filename, data in parts.found:  # one step a file, never a pixel
        label = name or "file"
        if times[name] > 1:
            label, seen[name] = f"{label}[{seen[name]}]", seen[name] + 1
        named.append(Upload(label, filename or label, data))
    return named
