"""The spec's ``search:`` section (``nncli tune``): ``--set`` paths -> the ranges a search tries.

```yaml
search:
  optimizer.learning_rate: {low: 1.0e-4, high: 3.0e-2, log: true}   # floats
  model.layers[0].units: [16, 32, 64, 128]                         # choices
  training.batch_size: {low: 16, high: 128, log: true}             # ints (both bounds ints)
```
Every problem is a spec error at the line and column of the key or value: a key that is not a
spec key, ``low >= high``, empty choices, and a bound or choice that makes the spec invalid
(each is applied as ``--set KEY=VALUE`` and the spec validated, before the first trial).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nncli.engine.registry import did_you_mean
from nncli.errors import SpecError, SpecErrors
from nncli.spec import document
from nncli.spec.fields import short
from nncli.spec.loading import Spec, flow_yaml

RANGE_KEYS = ("low", "high", "log")


@dataclass(frozen=True)
class Param:
    """One searched setting: ``kind`` float or int (``low``..``high``, ``log`` scale) or choice."""

    key: str  # a --set path: model.layers[0].units
    kind: str  # "float", "int" or "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()
    where: str | None = None  # spec.yaml:LINE:COL of the key

    def describe(self) -> str:
        """``float in [0.0001, 0.03] (log)``, ``one of [16, 32, 64]``: how studies compare."""
        if self.kind == "choice":
            return f"one of {flow_yaml(list(self.choices))}"
        return f"{self.kind} in [{self.low!r}, {self.high!r}]" + (" (log)" if self.log else "")

    def candidates(self) -> list[Any]:
        """The values checked before the first trial: both bounds, or every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def grid(self, points: int) -> list[Any]:
        """``points`` values spread over the range (log-spaced with ``log``); every choice."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int" and self.high - self.low + 1 <= points:
            return list(range(int(self.low), int(self.high) + 1))
        ends = (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)
        values = [ends[0] + (ends[1] - ends[0]) * i / max(points - 1, 1) for i in range(points)]
        values = [math.exp(v) for v in values] if self.log else values
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        return values

    def assignment(self, value: Any) -> str:
        """``KEY=VALUE`` for ``--set``: the spec with this value written in."""
        return f"{self.key}={flow_yaml(value)}"


def ignored(command: str) -> str:
    """The note ``train`` and ``validate`` give a spec with a ``search:`` section."""
    return f"the spec's search: section is for nncli tune; {command} ignores it"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range(key: str, value: dict[str, Any], spec: Spec) -> Param:
    """``{low, high, log}`` -> a float or int Param (int when both bounds are integers)."""
    for name in value:
        if name not in RANGE_KEYS:
            hint = did_you_mean(name, list(RANGE_KEYS)) or f" (expected {', '.join(RANGE_KEYS)})"
            raise SpecError(
                f"unknown key {name!r}{hint}",
                where=spec.search_where((key, name), key=True),
                field=f"search.{key}",
            )
    missing = [name for name in ("low", "high") if name not in value]
    if missing:
        raise SpecError(
            f"missing required key {missing[0]!r}", where=spec.search_where((key,)), field=key
        )
    low, high, log = value["low"], value["high"], value.get("log", False)
    for name, bound in (("low", low), ("high", high)):
        if not _number(bound) or not math.isfinite(bound):
            raise SpecError(
                f"expected a finite number, got {bound!r}",
                where=spec.search_where((key, name)),
                field=f"search.{key}.{name}",
            )
    if not isinstance(log, bool):
        raise SpecError(
            f"expected true or false, got {log!r}",
            where=spec.search_where((key, "log")),
            field=f"search.{key}.log",
        )
    if low >= high:
        raise SpecError(
            f"expected low < high, got low {low!r} and high {high!r}",
            where=spec.search_where((key, "low")),
            field=f"search.{key}",
        )
    if log and low <= 0:
        raise SpecError(
            f"a log scale needs low > 0, got {low!r}",
            where=spec.search_where((key, "low")),
            field=f"search.{key}.low",
        )
    kind = "int" if isinstance(low, int) and isinstance(high, int) else "float"
    bounds = (int(low), int(high)) if kind == "int" else (float(low), float(high))
    return Param(key, kind, *bounds, log=log, where=spec.search_where((key,), key=True))


def _param(key: Any, value: Any, spec: Spec) -> Param:
    where = spec.search_where((key,), key=True)
    if not isinstance(key, str) or document.parse_key(key) is None:
        example = "model.layers[1].units"
        raise SpecError(f"expected a --set path such as {example}, got {key!r}", where=where)
    if isinstance(value, dict):
        return _range(key, value, spec)
    if isinstance(value, list):
        if not value:
            raise SpecError(
                "expected at least one choice, got an empty list",
                where=spec.search_where((key,)),
                field=f"search.{key}",
            )
        return Param(key, "choice", choices=tuple(value), where=where)
    raise SpecError(
        f"expected {{low, high, log}} or a list of choices, got {short(value)}",
        where=spec.search_where((key,)),
        field=f"search.{key}",
    )


def space(spec: Spec, reload: Callable[[Sequence[str]], Any] | None = None) -> list[Param]:
    """The ``search:`` section -> Params, every problem raised at once (``SpecErrors``).

    ``reload(assignments)``: the spec validated again with ``--set`` assignments (``nncli.spec.
    load`` of the same file); each bound and each choice is checked through it."""
    raw = spec.search
    if raw is None:
        return []
    if not isinstance(raw, dict) or not raw:
        got = "an empty section" if raw in ({}, None) else short(raw)
        expected = "a mapping of --set paths to ranges or choices"
        raise SpecError(f"expected {expected}, got {got}", where=spec.search_where(()))
    params, errors = [], []
    for key, value in raw.items():
        try:
            params.append(_param(key, value, spec))
        except SpecError as exc:
            errors.append(exc)
    if not errors and reload is not None:
        errors = [e for p in params for e in _check_values(p, spec, reload)]
    if errors:
        raise errors[0] if len(errors) == 1 else SpecErrors(errors)
    return params


def _check_values(
    param: Param, spec: Spec, reload: Callable[[Sequence[str]], Any]
) -> list[SpecError]:
    """The spec with each candidate written in must be valid; an unknown key is said once."""
    errors = []
    places = range(len(param.choices)) if param.kind == "choice" else ("low", "high")
    for value, place in zip(param.candidates(), places, strict=True):
        try:
            reload([param.assignment(value)])
        except SpecError as exc:
            found = exc.errors if isinstance(exc, SpecErrors) else [exc]
            message = found[0].message
            if "unknown key" in message or message.startswith(("no layer", "no item")):
                # not a key of the spec: one error, whatever the value
                field = f"search.{param.key}"
                message = f"{param.key!r} is not a key of the spec: {message}"
                return [SpecError(message, where=param.where, field=field)]
            which = f"choice {flow_yaml(value)}" if param.kind == "choice" else f"{value!r}"
            errors.append(
                SpecError(
                    f"{which} makes the spec invalid: {message}",
                    where=spec.search_where((param.key, place)),
                    field=f"search.{param.key}",
                )
            )
    return errors


def assignments(params: Sequence[Param], values: dict[str, Any]) -> list[str]:
    """``--set`` assignments that write a trial's values into the spec, in the section's order."""
    return [p.assignment(values[p.key]) for p in params if p.key in values]


def described(params: Sequence[Param]) -> dict[str, str]:
    """``{key: "float in [...] (log)"}``: the space a study records and a later run compares."""
    return {p.key: p.describe() for p in params}


def difference(stored: dict[str, str], params: Sequence[Param]) -> str | None:
    """The first way a study's recorded space differs from the spec's, or None."""
    now = described(params)
    for key in [*stored, *(k for k in now if k not in stored)]:
        if stored.get(key) != now.get(key):
            was = stored.get(key, "not searched")
            return f"{key}: the study searched {was}, the spec now {now.get(key, 'not searched')}"
    return None
