"""TensorBoard event files through tensorboardX (no TensorFlow or PyTorch needed): one scalar a
history column per epoch, the epoch as step, and the resolved spec as text. The only module
that imports tensorboardX."""

from __future__ import annotations

import math
import secrets
import time
from pathlib import Path
from typing import Any

from nncli.tracking.plan import LogPlan

EVENTS = "events.out.tfevents.*"
FLUSH_EVERY = 1.0  # seconds: the event file is flushed at most this often, and at the end


class TensorBoardWriter:
    """A run's event files in ``plan.tensorboard``. A resumed run appends a new file to the same
    folder whose ``purge_step`` hides any step from the resumed epoch on that an earlier file
    holds (a run stopped after its last checkpoint), so each step reads back once."""

    name = "tensorboard"
    run_id: str | None = None

    def __init__(self) -> None:
        self.writer: Any = None
        self.flushed = -math.inf  # when the event file was last flushed (time.monotonic)

    def begin(self, plan: LogPlan) -> None:
        from tensorboardX import SummaryWriter

        folder = Path(plan.tensorboard)
        folder.mkdir(parents=True, exist_ok=True)
        if plan.initial_epoch == 0:  # a fresh run replaces the event files of its name
            for old in folder.glob(EVENTS):
                old.unlink()
        self.writer = SummaryWriter(
            str(folder),
            purge_step=plan.initial_epoch + 1,
            filename_suffix="." + secrets.token_hex(4),  # two starts in one second stay apart
        )
        if plan.initial_epoch == 0:
            self.writer.add_text("spec", _as_code(plan.spec_yaml), 0)

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            if key != "epoch":
                self.writer.add_scalar(key, float(value), epoch)
        if time.monotonic() - self.flushed >= FLUSH_EVERY:  # a killed run keeps nearly all
            self.writer.flush()
            self.flushed = time.monotonic()

    def end(self, status: str, files: list[Path]) -> None:
        self.writer.close()


def _as_code(text: str) -> str:
    """YAML as a Markdown code block (TensorBoard renders text as Markdown)."""
    return "\n".join("    " + line for line in text.splitlines())
