"""The one exception family nncli raises for problems a user can fix.

Each kind carries its exit code (ARCHITECTURE.md) and, where known, the place it happened
(``file:line:col`` or ``file, row 12``) and the dotted field path (``model.layers[2].units``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptionHint:
    """A remedy that is a command-line option (``--skip-bad leaves out unreadable images``):
    the command line adds ``; text`` to the error only for a command that takes ``option``, so
    no command suggests an option it does not have."""

    option: str
    text: str


class NncliError(Exception):
    """A user-facing error: one line, a place, what was expected and what was found; ``hint``:
    an option that would help, shown where the command takes it."""

    exit_code = 1
    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        field: str | None = None,
        hint: OptionHint | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.where = where
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        parts = [p for p in (self.where, self.field) if p]
        return ": ".join([*parts, self.message])


class SpecError(NncliError):
    """A bad key or value in a spec, a bad flag, or a spec that disagrees with a checkpoint."""

    exit_code = 2


class BackendError(NncliError):
    """A device that cannot be used (no CuPy, no GPU)."""

    exit_code = 2


class DataError(NncliError):
    """A missing file or column, a bad value, an unseen category, an empty set."""

    exit_code = 3


class ShapeError(DataError):
    """An array whose shape a layer or loss cannot take."""


class CheckpointError(NncliError):
    """A corrupt, truncated, foreign or newer checkpoint, or a file that cannot be written."""

    exit_code = 4


class DivergedError(NncliError):
    """Training produced a non-finite loss or gradient."""

    exit_code = 5


class Interrupted(NncliError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143) during training; the message says how to resume."""

    exit_code = 130

    def __init__(self, message: str, *, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class SpecErrors(SpecError):
    """Several spec errors found in one pass; printed one per line."""

    def __init__(self, errors: list[NncliError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    def lines(self) -> list[str]:
        return [str(e) for e in self.errors]
