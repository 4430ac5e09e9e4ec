"""The field checks of a spec: each turns a YAML value into a typed one or raises ``Invalid``.

Every field has our own validator (through ``checked``), so pydantic only contributes the
structure (unknown keys, missing keys, defaults) and every message reads like the rest of
nncli: what was expected, what was found. A validator raises ``Invalid`` with one or more
problems, each at a sub-path of the field (``layers[2].units``); ``loading.py`` turns them into
``SpecError``s at their file positions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainValidator

from nncli.backend import parse_device
from nncli.engine import checks
from nncli.engine.registry import did_you_mean
from nncli.errors import BackendError, SpecError
from nncli.spec.document import Path_
from nncli.training.scores import SCORES

VERSION = 2
# (sub-path, message, about the key): a key problem points at the key and names its mapping
Problem = tuple[Path_, str, bool]


class Invalid(ValueError):
    """Raised by a field validator; pydantic keeps it in the error's context for translation."""

    def __init__(self, problems: list[Problem]):
        super().__init__(problems[0][1])
        self.problems = problems

    @classmethod
    def one(cls, message: str, sub: Path_ = (), key: bool = False) -> Invalid:
        return cls([(sub, message, key)])


def short(value: Any) -> str:
    """A value as a message quotes it, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def checked(check: Callable[[Any], Any], optional: bool = False) -> PlainValidator:
    """A pydantic validator from a function that raises ``SpecError``."""

    def run(value: Any) -> Any:
        if optional and value is None:
            return None
        try:
            return check(value)
        except SpecError as exc:
            raise Invalid.one(exc.message) from None

    return PlainValidator(run)


def one_of(*names: str) -> PlainValidator:
    return checked(lambda v: checks.choice("", v, list(names)))


def _text(value: Any, what: str = "a non-empty string") -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"expected {what}, got {short(value)}")
    return value


def _names(value: Any, empty: bool = True) -> list[str]:
    if not isinstance(value, list) or not (value or empty):
        what = "a list" if empty else "a non-empty list"
        raise Invalid.one(f"expected {what} of names, got {short(value)}")
    bad = [
        ((i,), f"expected a name, got {short(v)}", False)
        for i, v in enumerate(value)
        if not isinstance(v, str) or not v
    ]
    if bad:
        raise Invalid(bad)
    return value


def _target(value: Any) -> str | list[str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value:
        return _names(value)
    raise SpecError(f"expected a column name or a list of them, got {short(value)}")


def _file_path(value: Any) -> Path:
    if not isinstance(value, str) or not value or "\0" in value:
        raise SpecError(f"expected a file path, got {short(value)}")
    return Path(os.path.expanduser(value))


def _delimiter(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or value in '"\r\n':
        raise SpecError(
            'expected one character between fields, such as ",", ";", "|" or "\\t" '
            f"(a tab), got {short(value)}"
        )
    return value


NAME_BYTES = 250  # runs/<name>-tune must still fit a file system's 255-byte names
SEED_MAX = 2**32 - 1  # numpy's seed range (np.random.seed), and every tool's that follows it


def _spec_name(value: Any) -> str:
    """A name that is one file name everywhere it is used (runs/<name>, runs/<name>-tune)."""
    if (
        not isinstance(value, str)
        or value in ("", ".", "..")
        or any(c in value for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise SpecError(
            "expected a name without slashes or control characters (used for runs/<name>), "
            f"got {short(value)}"
        )
    if len(value.encode("utf-8", "surrogatepass")) > NAME_BYTES:
        raise SpecError(
            f"expected a name of at most {NAME_BYTES} bytes (it names the folder runs/<name>), "
            f"got one of {len(value.encode('utf-8', 'surrogatepass'))}"
        )
    return value


def _seed(value: Any) -> int:
    if not checks.is_int(value) or not 0 <= value <= SEED_MAX:
        raise SpecError(
            f"expected an integer from 0 to {SEED_MAX} (numpy's seed range), got {short(value)}"
        )
    return value


def ints(value: Any, what: str, length: int | None = None) -> list[int]:
    ok = isinstance(value, list) and value and (length is None or len(value) == length)
    if not ok or not all(checks.is_int(v) and v >= 1 for v in value):
        raise SpecError(f"expected {what}, got {short(value)}")
    return value


def _batch_size(value: Any) -> int | str:
    if value == "full":
        return value
    if not checks.is_int(value) or value < 1:
        raise SpecError(f"expected a positive integer or 'full', got {short(value)}")
    return value


def _device(value: Any) -> str:
    """cpu | gpu | gpu:N | cuda:N | auto (``backend.parse_device`` reads them)."""
    try:
        parse_device(value)
    except BackendError as exc:
        raise SpecError(exc.message.removeprefix("device: ")) from None
    return str(value).strip().lower()


LOG_BACKENDS = ("tensorboard", "mlflow")  # training.log: nncli/tracking/ writes each


def _log(value: Any) -> list[str]:
    """``training.log``: where a run logs besides history.csv (one name or a list of names),
    each once."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        raise Invalid.one(f"expected a list of {' and '.join(LOG_BACKENDS)}, got {short(value)}")
    expected = ", ".join(LOG_BACKENDS)

    def hint(name: Any) -> str:
        return did_you_mean(name, list(LOG_BACKENDS)) if isinstance(name, str) else ""

    problems: list[Problem] = [
        ((i,), f"expected one of {expected}, got {short(name)}{hint(name)}", False)
        for i, name in enumerate(names)
        if name not in LOG_BACKENDS
    ]
    if problems:
        raise Invalid(problems)
    return list(dict.fromkeys(names))


def _version(value: Any) -> int:
    value = checks.positive_int("", value)
    if value > VERSION:
        raise SpecError(f"spec version {value} is newer than this nncli reads ({VERSION})")
    return value


PositiveInt = Annotated[int, checked(partial(checks.positive_int, ""))]
OptPositiveInt = Annotated[int | None, checked(partial(checks.positive_int, ""), optional=True)]
NonNegInt = Annotated[int, checked(partial(checks.non_negative_int, ""))]
NonNegFloat = Annotated[float, checked(lambda v: checks.number("", v, 0.0))]
Fraction = Annotated[float, checked(lambda v: checks.number("", v, 0.0, 1.0, high_open=True))]
Bool = Annotated[bool, checked(partial(checks.boolean, ""))]
Text = Annotated[str, checked(_text)]
OptText = Annotated[str | None, checked(_text, optional=True)]
Names = Annotated[list[str], PlainValidator(_names)]
SomeNames = Annotated[list[str], PlainValidator(partial(_names, empty=False))]
OptNames = Annotated[
    list[str] | None, PlainValidator(lambda v: None if v is None else _names(v, empty=False))
]
Target = Annotated[str | list[str], checked(_target)]
FilePath = Annotated[Path, checked(_file_path)]
OptFilePath = Annotated[Path | None, checked(_file_path, optional=True)]
Normalize = Annotated[str, one_of("standard", "minmax", "none")]
Missing = Annotated[str, one_of("error", "drop", "fill")]
Delimiter = Annotated[str, checked(_delimiter)]
BatchSize = Annotated[int | str, checked(_batch_size)]


# -- the top level's fields (the Spec itself lives in loading.py)
Version = Annotated[int, checked(_version)]
LogBackends = Annotated[list[str], PlainValidator(_log)]
SpecName = Annotated[str | None, checked(_spec_name, optional=True)]
Seed = Annotated[int, checked(_seed)]
Device = Annotated[str, checked(_device)]
Dtype = Annotated[str, one_of("float32", "float64")]


def metric_names(value: Any) -> list[str]:
    """Names of the scores a run reports on validation and test data (``training/scores.py``)."""
    if not isinstance(value, list):
        raise Invalid.one(f"expected a list of metric names, got {short(value)}")
    names = list(SCORES)
    problems: list[Problem] = [
        (
            (i,),
            f"expected one of {', '.join(names)}, got {short(name)}"
            + (did_you_mean(name, names) if isinstance(name, str) else ""),
            False,
        )
        for i, name in enumerate(value)
        if name not in names
    ]
    if problems:
        raise Invalid(problems)
    return list(dict.fromkeys(value))


Metrics = Annotated[list[str], PlainValidator(metric_names)]
