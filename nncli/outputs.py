"""Files a run writes beside its checkpoint (and predict's output), each written atomically."""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from pathlib import Path

from nncli import model_io
from nncli.train import History


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def history_csv(history: History) -> str:
    columns = list(model_io.history_columns(history))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for e in history.epochs:
        writer.writerow(
            [int(e[c]) if c == "epoch" else f"{e.get(c, math.nan):.8g}" for c in columns]
        )
    return buf.getvalue()
