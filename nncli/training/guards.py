"""Guards a training run keeps while ``fit`` runs: signals that stop at a batch boundary, weights
checked finite before anything saves them, and data checked finite before it reaches a network.

Signals: a handler that raises can fire inside a weakref callback or ``__del__`` (h5py runs many
while it saves), where Python prints "Exception ignored" and goes on, so the Ctrl-C is lost.
While ``SignalStop.installed()`` is active a SIGINT or SIGTERM only sets a flag; the callback
raises KeyboardInterrupt (``exit_code`` 128 + the signal number: 130, 143) after the current
batch, or after the epoch's checkpoints are complete. A second signal raises at once.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nncli.engine.history import History
from nncli.errors import DataError, DivergedError
from nncli.training.callbacks import Callback

SIGNALS = (signal.SIGINT, signal.SIGTERM)
CHUNK = 4096  # rows per finiteness check: bounded temporaries for large image sets
# an epoch's mean loss above this many times the run's first loss: diverging. Training lowers
# the loss from where the untrained network starts; noise between epochs is a small factor.
GROWTH = 1000.0


def stopped(signum: int) -> KeyboardInterrupt:
    exc = KeyboardInterrupt()
    exc.exit_code = 128 + int(signum)  # the shell's convention, read by the train command
    return exc


def diverged(epoch: int, batch: int, what: str, last: float | None) -> DivergedError:
    """The error that ends a run whose loss, gradient or weights stopped being finite."""
    last_text = "none" if last is None else f"{last:.6g}"
    err = DivergedError(
        f"training diverged at epoch {epoch}, batch {batch}: {what} (last finite loss {last_text})"
    )
    err.epoch, err.batch, err.last_loss = epoch, batch, last
    return err


class SignalStop(Callback):
    """Put last among the callbacks, so that an epoch's saves finish before it stops the run.

    ``together`` (several processes sharing each batch): True on every process when the flag
    is set on any, so all of them stop after the same batch. ``at="epoch"``: the first signal
    stops the run only once the current epoch has ended (a search's trial reports whole epochs);
    a second one stops it at once either way."""

    def __init__(self, together: Callable[[bool], bool] | None = None, at: str = "batch") -> None:
        if at not in ("batch", "epoch"):
            raise ValueError(f"at: expected batch or epoch, got {at!r}")
        self.signum: int | None = None
        self.forced = False  # a second signal: stop at once, save nothing more
        self.together, self.at = together, at

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # asked twice: stop now
            self.forced = True
            raise stopped(signum)
        self.signum = signum

    def check(self) -> None:
        asked = self.signum is not None
        if self.together is not None:
            asked = self.together(asked)
        if asked:
            raise stopped(signal.SIGINT if self.signum is None else self.signum)

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float, seen: int) -> None:
        if self.at == "batch":
            self.check()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.check()

    @contextlib.contextmanager
    def installed(self) -> Iterator[SignalStop]:
        """Handle SIGINT and SIGTERM for the block (only the main thread may set handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)


class FiniteWeights(Callback):
    """The last step of an epoch can overflow the weights while every loss was finite: stop
    there, before any checkpoint saves them (the next batch's loss would notice only later)."""

    def __init__(self, net: Any):
        self.net, self.batch, self.loss = net, 0, None

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float, seen: int) -> None:
        self.batch, self.loss = batch, loss

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        xp = self.net.backend.xp
        for name, p in self.net.named_parameters().items():
            if not bool(xp.isfinite(p).all()):
                what = f"the weights {name} became non-finite"
                raise diverged(epoch, self.batch, what, self.loss)


class LossGrowth(Callback):
    """Divergence that has not reached infinity yet (``FiniteChecks`` stops that): ``warn`` once
    when an epoch's training loss exceeds ``GROWTH`` times the run's first loss, which is the
    untrained network's (``first()``, measured when a fresh run begins) or, for a resumed run,
    its first epoch's. The run goes on; ``hint`` ends the line (what to change)."""

    def __init__(
        self, warn: Callable[[str], None], first: Callable[[], float], history: History, hint=""
    ):
        self.warn, self.first, self.history, self.hint = warn, first, history, hint
        self.reference, self.since, self.warned = math.nan, "", False

    def on_train_begin(self, info: dict[str, Any]) -> None:
        epochs = self.history.epochs
        if info["initial_epoch"] and epochs:
            self.reference, self.since = float(epochs[0]["loss"]), f"at epoch {epochs[0]['epoch']}"
        else:
            self.reference, self.since = float(self.first()), "before training"

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        loss, first = float(logs.get("loss", math.nan)), self.reference
        if self.warned or not (math.isfinite(loss) and first > 0 and loss > GROWTH * first):
            return
        self.warned = True
        self.warn(
            f"the training loss grew from {first:.4g} {self.since} to {loss:.4g} at epoch "
            f"{epoch}, over {GROWTH:.0f} times: the run is diverging{self.hint}"
        )


def require_finite(array: np.ndarray | None, what: str, where: str) -> None:
    """DataError naming the first row (1-based) of ``array`` (N, ...) holding NaN or infinity.

    The CSV encoders name the file line and column themselves; this is the net for the rest.
    Several inputs ({input name: array}): each checked, named."""
    if isinstance(array, dict):
        for name, part in array.items():
            require_finite(part, f"{what} ({name!r})", where)
        return
    if array is None or array.dtype.kind not in "fc" or array.size == 0:
        return
    for start in range(0, len(array), CHUNK):
        chunk = array[start : start + CHUNK]
        bad = ~np.isfinite(chunk.reshape(len(chunk), -1))
        if bad.any():
            row = start + int(np.argmax(bad.any(axis=1)))
            raise DataError(f"{what}: row {row + 1} holds NaN or infinity", where=where)
