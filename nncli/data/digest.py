"""The content digest of a data file or folder: how ``nncli evaluate`` knows a file is the one
a model was trained on (``train`` records it in the checkpoint's training record).

A file: sha256 of its bytes. A folder (images): sha256 over each file below it, in sorted
order, as its path relative to the folder and the sha256 of its bytes; so a renamed, moved,
added or changed file changes it, and copying the folder elsewhere does not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

BLOCK = 1 << 20


def content_digest(path: Path) -> str:
    """sha256 (hex) of a file's bytes, or of a folder's files (names and contents)."""
    path = Path(path)
    if not path.is_dir():
        return _file_sha256(path).hexdigest()
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
        digest.update(_file_sha256(file).digest())
    return digest.hexdigest()


def _file_sha256(path: Path) -> Any:
    """The sha256 object over a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest
