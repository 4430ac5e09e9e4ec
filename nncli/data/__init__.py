"""Data: files -> host numpy arrays plus fitted encoders; stored encoders -> predict-time inputs.

``load(cfg, base_dir, seed, loss)`` dispatches on ``cfg.kind``; ``encoder_from_state(state)``
rebuilds the encoder a checkpoint stored, dispatching on ``state["kind"]``. Nothing here imports
the engine's layers, h5py, typer or rich; pandas only inside the functions that read files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nncli.data import tabular
from nncli.data.dataset import Dataset, Encoder, task_for_loss
from nncli.data.encoders import TabularEncoder
from nncli.errors import CheckpointError, SpecError

LOADERS: dict[str, Callable[..., Dataset]] = {"csv": tabular.load}
ENCODERS: dict[str, Any] = {"csv": TabularEncoder}

__all__ = ["Dataset", "Encoder", "encoder_from_state", "load", "task_for_loss"]


def load(cfg: Any, base_dir: Path, seed: int, loss: str) -> Dataset:
    """The spec's ``data:`` section -> Dataset (train / validation / test arrays + encoder)."""
    kind = getattr(cfg, "kind", None)
    if kind not in LOADERS:
        raise SpecError(
            f"expected a data kind ({', '.join(sorted(LOADERS))}), got {kind!r}", field="data.kind"
        )
    return LOADERS[kind](cfg, Path(base_dir), seed, loss)


def encoder_from_state(state: dict) -> Encoder:
    """A checkpoint's ``/data`` dict -> the fitted encoder it describes."""
    kind = state.get("kind")
    kind = kind.decode("utf-8") if isinstance(kind, bytes) else str(kind)
    if kind not in ENCODERS:
        raise CheckpointError(
            f"the stored data encoder is of kind {kind!r}; this nncli knows "
            f"{', '.join(sorted(ENCODERS))}"
        )
    return ENCODERS[kind].from_state(state)
