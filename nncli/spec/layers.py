"""``model.layers`` checked: each layer by building it through the engine's registry, the layers
inside a layer that holds some (``residual``'s ``layers``) the same way, and then how the layers
are wired (``name``/``inputs``, ``nncli/engine/graph.py``). Every problem is kept with its path,
so the loader names each one's line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nncli.engine import graph
from nncli.engine.registry import LAYERS
from nncli.spec.document import parse_key
from nncli.spec.fields import Invalid, Problem, short

# a layer as written -> (its entry, the built layer or None, its problems): sections.py's check
BuildEntry = Callable[[Any], tuple[dict[str, Any], Any, list[Problem]]]


def checked_layers(
    value: Any, build_entry: BuildEntry, input_names: tuple[str, ...] = (graph.INPUT_NAME,)
) -> list[dict[str, Any]]:
    """The layers as entries (names in their registered spelling), or ``Invalid`` listing every
    problem: each layer's and the wiring's on the data's ``input_names``."""
    entries, problems = _entries(value, build_entry, within=None)
    if isinstance(value, list) and value:
        kinds = [_kind(item) for item in value]
        _, found = graph.problems([graph.split(item)[1] for item in value], kinds, input_names)
        problems += [(parse_key(error.field)[1:], error.message, False) for error in found]
    if problems:
        raise Invalid(problems)
    return entries


def _kind(item: Any) -> graph.Kind:
    """A layer's type and whether it is a merge (None when the type is unknown)."""
    kind = item.get("type") if isinstance(item, dict) else item
    name = LAYERS.canonical(kind)
    return (str(kind), None) if name is None else (name, LAYERS.get(name).several_inputs)


def _entries(
    value: Any, build_entry: BuildEntry, within: str | None
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Each layer of a list checked (``within``: the type of the layer holding the list)."""
    if not isinstance(value, list) or not value:
        return [], [((), f"expected a non-empty list of layers, got {short(value)}", False)]
    entries, problems = [], []
    for i, item in enumerate(value):
        own, keys = graph.split(item)
        if within is not None:
            problems += [
                ((i, key), graph.INSIDE.format(type=within, key=key), True) for key in keys
            ]
        own, inner = _inner_layers(own, build_entry)
        problems += [((i, "layers", *sub), message, key) for sub, message, key in inner]
        entry, _, found = build_entry(own) if not inner else (own, None, [])
        problems += [((i, *sub), message, key) for sub, message, key in found]
        entries.append({k: keys.get(k, entry.get(k)) for k in item} if keys else entry)
    return entries, problems


def _inner_layers(own: Any, build_entry: BuildEntry) -> tuple[Any, list[Problem]]:
    """A layer taking ``layers`` (residual) with them checked and in their registered spelling,
    and their problems (paths within the list)."""
    kind = LAYERS.canonical(own.get("type")) if isinstance(own, dict) else None
    if kind is None or "layers" not in LAYERS.settings(kind) or "layers" not in own:
        return own, []
    entries, problems = _entries(own["layers"], build_entry, within=kind)
    return ({**own, "layers": entries} if not problems else own), problems
