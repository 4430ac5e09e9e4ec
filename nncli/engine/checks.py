"""Checks for hyperparameters: each raises a ``SpecError`` naming the field, what was expected
and what was found, so the Python API and the spec loader give the same message."""

from __future__ import annotations

from typing import Any

from nncli.errors import SpecError


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_int(field: str, value: Any) -> int:
    if not is_int(value) or value < 1:
        raise SpecError(f"expected a positive integer, got {value!r}", field=field)
    return int(value)


def non_negative_int(field: str, value: Any) -> int:
    if not is_int(value) or value < 0:
        raise SpecError(f"expected a non-negative integer, got {value!r}", field=field)
    return int(value)


def int_pair(field: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """An integer or a pair of integers, each at least ``minimum``."""
    pair = (value, value) if is_int(value) else value
    if (
        not isinstance(pair, (list, tuple))
        or len(pair) != 2
        or not all(is_int(v) and v >= minimum for v in pair)
    ):
        raise SpecError(
            f"expected an integer >= {minimum} or a pair of them, got {value!r}", field=field
        )
    return int(pair[0]), int(pair[1])


def number(
    field: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real number in [low, high]; ``*_open`` excludes that end."""
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        rng = f" in {lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise SpecError(f"expected a number{rng}, got {value!r}", field=field)
    return float(value)


def boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"expected true or false, got {value!r}", field=field)
    return value


def choice(field: str, value: Any, choices: list[str]) -> str:
    from nncli.engine.registry import did_you_mean

    if value not in choices:
        raise SpecError(
            f"expected one of {', '.join(choices)}, got {value!r}" + did_you_mean(value, choices),
            field=field,
        )
    return value
