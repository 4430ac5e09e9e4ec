"""Where a setting means something else in the library a user comes from (issue 31), the spec
says so instead of training with the other meaning: a batchnorm ``momentum`` written the Keras
way is refused with its equivalent, and a spec without ``version`` (read as version 1, whose
``early_stopping.patience`` allows one epoch more than Keras's) gets a note once a run.

``docs/guides/coming-from-keras-and-pytorch.md`` lists every name that differs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nncli.spec.fields import Problem

# the most a batchnorm momentum may be: above it, the running statistics would follow the last
# batches more than all the others, which is what Keras's momentum (0.99) written here would do
MOMENTUM_LIMIT = 0.5


def _batchnorm_momentum(settings: dict[str, Any]) -> list[Problem]:
    """``momentum`` above 0.5: nncli's (PyTorch's) new = (1 - m) old + m batch, so 0.99 keeps
    1% of the old statistics; Keras's new = m old + (1 - m) batch: its 0.99 is 0.01 here."""
    m = settings.get("momentum")
    if not isinstance(m, (int, float)) or isinstance(m, bool) or m <= MOMENTUM_LIMIT:
        return []
    message = (
        f"expected at most {MOMENTUM_LIMIT}, got {m}: here, as in PyTorch, the running "
        f"statistics move as new = (1 - momentum) old + momentum batch, so {m} would keep "
        f"{1 - m:.3g} of the old ones; Keras's momentum means new = momentum old + "
        f"(1 - momentum) batch: Keras's {m} is momentum: {round(1 - m, 12):g} here"
    )
    return [(("momentum",), message, False)]


# (registry kind, registered name) -> the check of its settings as written
REFUSED: dict[tuple[str, str], Callable[[dict[str, Any]], list[Problem]]] = {
    ("layer", "batchnorm"): _batchnorm_momentum,
}


def refused(kind: str, name: str, settings: dict[str, Any]) -> list[Problem]:
    """The problems of settings that another library's meaning would make silently wrong."""
    check = REFUSED.get((kind, name))
    return [] if check is None else check(settings)


def stops_after(patience: int, version: int) -> int:
    """Epochs without improvement after which early stopping ends a run: Keras's ``patience``
    from spec version 2 on, one more under version 1."""
    return patience if version >= 2 else patience + 1


def version_note(spec: Any) -> str | None:
    """The note for a spec that does not say its ``version`` and stops early: it is read as
    version 1, where ``patience`` means one epoch more than in Keras (None otherwise)."""
    es = spec.training.early_stopping
    if "version" in spec.model_fields_set or es is None or spec.version >= 2:
        return None
    p = es.patience
    where = spec.line_of("training.early_stopping.patience") or spec.line_of(
        "training.early_stopping"
    )
    return (
        f"{where + ': ' if where else ''}the spec has no 'version': read as version 1, "
        f"where patience: {p} stops after {stops_after(p, 1)} epochs without improvement; "
        f"write version: 2 for Keras's meaning (patience: {p + 1} then stops where this run "
        f"does), or version: 1 to keep this one"
    )


def resumed_note(spec: Any, written: int, kept: int) -> str | None:
    """The note for a resumed run whose spec says another version than its checkpoint: the
    checkpoint's goes on (None without early stopping, where the versions do not differ)."""
    es = spec.training.early_stopping
    if es is None:
        return None
    p = es.patience
    return (
        f"the spec says version {written}, the checkpoint it resumes was trained under version "
        f"{kept}: the run keeps version {kept}, where patience: {p} stops after "
        f"{stops_after(p, kept)} epochs without improvement"
    )


def version_notes(
    spec: Any, unversioned: str | None, kept: tuple[int, int] | None, note: Any = None
) -> list[str]:
    """What a run says once about its spec version, told to ``note``: that it has none
    (``unversioned``, the spec's ``version_note`` before a resume), or that a resumed run keeps
    its checkpoint's (``kept``: the spec's version, the checkpoint's)."""
    said = resumed_note(spec, *kept) if kept else unversioned
    notes = [said] if said else []
    for line in notes if note is not None else ():
        note(line)
    return notes
