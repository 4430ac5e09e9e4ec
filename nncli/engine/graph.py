"""The wiring of a network: which outputs each layer takes, from its ``name`` and ``inputs`` keys.

Any layer may take ``name`` (unique: letters, digits, ``_``) and ``inputs`` (one name or a list;
``input`` is the data, or each data input by its name when the data has several; by default the
layer before it, the first layer the first input); the last layer is the output. A stack is
the wiring where every layer takes the one before it. ``problems`` checks every rule and returns
each broken one as a ``SpecError`` whose field is the key at fault (``layers[4].inputs[1]``).
"""

from __future__ import annotations

import difflib
import heapq
import re
from dataclasses import dataclass
from typing import Any

from nncli.errors import SpecError

INPUT = -1  # the data (its first input), among a layer's inputs given as positions
INPUT_NAME = "input"  # the one input's name when the data has one


def data_position(k: int) -> int:
    """The position of data input ``k`` (0, 1, ...) among a layer's inputs: -1, -2, ..."""
    return -1 - k


KEYS = ("name", "inputs")  # what any layer's mapping may hold beside its own settings
NAME = re.compile(r"[A-Za-z0-9_]+")
# a layer inside one that holds a stack of its own (residual) has no name or inputs
INSIDE = (
    "a layer inside {type} takes the one before it (the first takes the block's input) and is "
    "not seen outside it; expected no {key!r}"
)
# a layer's type and whether it takes several inputs (a merge); None: not known (a misspelt
# type, already an error), so its count of inputs is not checked
Kind = tuple[str, bool | None]


def split(config: Any) -> tuple[Any, dict[str, Any]]:
    """A layer as written -> (its own settings, its wiring keys as written)."""
    if not isinstance(config, dict):
        return config, {}
    own = {k: v for k, v in config.items() if k not in KEYS}
    return own, {k: config[k] for k in KEYS if k in config}


@dataclass(frozen=True)
class Wiring:
    """Each layer's inputs (positions; ``INPUT`` the data) and the order they run in."""

    written: tuple[dict[str, Any], ...]  # each layer's ``name``/``inputs`` as written
    inputs: tuple[tuple[int, ...], ...]
    order: tuple[int, ...]  # each layer after its inputs, ties by position: a stack's 0..n-1
    input_names: tuple[str, ...] = (INPUT_NAME,)  # the data's inputs, at -1, -2, ...

    @property
    def names(self) -> list[str | None]:
        return [keys.get("name") for keys in self.written]

    @property
    def is_stack(self) -> bool:
        return all(taken == (i - 1 if i else INPUT,) for i, taken in enumerate(self.inputs))

    def consumers(self) -> list[list[int]]:
        """For each layer, the layers that take its output, in position order."""
        taking: list[list[int]] = [[] for _ in self.inputs]
        for i, taken in enumerate(self.inputs):
            for source in dict.fromkeys(taken):
                if source >= 0:
                    taking[source].append(i)
        return taking

    def releases(self) -> dict[int, tuple[int, ...]]:
        """For each layer, the outputs (and the input) no layer running after it reads."""
        last: dict[int, int] = {}
        for i in self.order:
            last.update({source: i for source in self.inputs[i]})
        released: dict[int, list[int]] = {i: [] for i in self.order}
        for source, i in last.items():
            released[i].append(source)
        return {i: tuple(sources) for i, sources in released.items()}

    def behind(self, marked: list[bool]) -> list[bool]:
        """For each layer, whether a ``marked`` layer feeds it, directly or through others."""
        fed = {data_position(k): False for k in range(len(self.input_names))}
        behind = [False] * len(self.inputs)
        for i in self.order:
            behind[i] = any(fed[source] for source in self.inputs[i])
            fed[i] = behind[i] or marked[i]
        return behind

    def label(self, i: int, kinds: list[Kind]) -> str:
        """``input``, ``'h' (layers[1], dense)`` for a named layer, else ``layers[2] (dense)``."""
        return _Check(list(self.written), kinds, self.input_names).label(i)


def wire(
    written: list[dict[str, Any]], kinds: list[Kind], input_names: tuple[str, ...] = (INPUT_NAME,)
) -> Wiring:
    """The wiring of layers with ``written`` keys and ``kinds`` on the data's ``input_names``;
    raises the first problem."""
    wiring, found = problems(written, kinds, input_names)
    if found:
        raise found[0]
    assert wiring is not None
    return wiring


def problems(
    written: list[dict[str, Any]], kinds: list[Kind], input_names: tuple[str, ...] = (INPUT_NAME,)
) -> tuple[Wiring | None, list[SpecError]]:
    """The wiring, or None and every problem with it in position order: a bad or repeated name,
    an unknown input, a count of inputs the layer cannot take, a cycle, an unused output or
    data input."""
    check = _Check(written, kinds, input_names)
    inputs = [check.inputs(i, keys) for i, keys in enumerate(written)]
    if check.found:
        return None, check.found
    order = _order(inputs)
    if len(order) < len(inputs):
        return None, [check.cycle(inputs, set(order))]
    written_keys = tuple(dict(keys) for keys in written)
    wiring = Wiring(written_keys, tuple(inputs), tuple(order), tuple(input_names))
    consumers = wiring.consumers()
    unused = [check.unused(i) for i in range(len(inputs) - 1) if not consumers[i]]
    read = {source for taken in inputs for source in taken if source < 0}
    unread = [
        check.unread(name) for k, name in enumerate(input_names) if data_position(k) not in read
    ]
    return (None, unused + unread) if unused or unread else (wiring, [])


class _Check:
    """The names of one network's layers, checked, and the problems found so far."""

    def __init__(
        self,
        written: list[dict[str, Any]],
        kinds: list[Kind],
        input_names: tuple[str, ...] = (INPUT_NAME,),
    ):
        self.kinds, self.found, self.input_names = kinds, [], tuple(input_names)
        self.names: list[str | None] = [None] * len(written)
        self.positions: dict[str, int] = {}
        for i, keys in enumerate(written):
            if "name" in keys:
                self.name(i, keys["name"])

    def name(self, i: int, name: Any) -> None:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            message = f"expected a name of letters, digits and _, got {name!r}"
        elif name == INPUT_NAME or name in self.input_names:
            message = f"{name!r} names the data; expected another name"
        elif name in self.positions:
            first = f"layers[{self.positions[name]}] ({self.kinds[self.positions[name]][0]})"
            message = f"the name {name!r} is used twice: by {first} and layers[{i}]"
        else:
            self.names[i], self.positions[name] = name, i
            return
        self.found.append(SpecError(message, field=f"layers[{i}].name"))

    def label(self, i: int) -> str:
        if i < 0:
            return self.input_names[data_position(i)]
        kind, name = self.kinds[i][0], self.names[i]
        return f"{name!r} (layers[{i}], {kind})" if name else f"layers[{i}] ({kind})"

    def inputs(self, i: int, keys: dict[str, Any]) -> tuple[int, ...]:
        """Layer i's inputs as positions (the layer before it unless ``inputs`` is given)."""
        given, field = keys.get("inputs"), f"layers[{i}].inputs"
        if given is None:
            taken: tuple[int, ...] = (i - 1 if i else INPUT,)
        elif isinstance(given, str):
            taken = (self.position(given, field),)
        elif isinstance(given, list) and given:
            taken = tuple(self.position(e, f"{field}[{k}]") for k, e in enumerate(given))
        else:
            message = f"expected a layer's name or a list of names, got {given!r}"
            self.found.append(SpecError(message, field=field))
            return ()
        kind, several = self.kinds[i]
        if several and len(taken) < 2:
            message = (
                f"{kind} joins two or more outputs, got one ({self.label(taken[0])}); "
                "expected inputs: [a, b, ...]"
            )
            self.found.append(SpecError(message, field=field if given else f"layers[{i}]"))
        elif several is False and len(taken) > 1:
            message = (
                f"{kind} takes one input, got {len(taken)}; expected one name, or these joined "
                "first by an add, multiply or concat layer"
            )
            self.found.append(SpecError(message, field=field))
        return taken

    def position(self, entry: Any, field: str) -> int:
        if entry in self.input_names:
            return data_position(self.input_names.index(entry))
        if isinstance(entry, str) and entry in self.positions:
            return self.positions[entry]
        known = [*self.input_names, *self.positions]  # names: no synonyms from the registry
        close = difflib.get_close_matches(entry, known, n=1) if isinstance(entry, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        data = "'input'" if len(self.input_names) == 1 else "a data input"
        message = f"expected a layer's name or {data} ({', '.join(known)}), got {entry!r}{hint}"
        self.found.append(SpecError(message, field=field))
        return INPUT

    def cycle(self, inputs: list[tuple[int, ...]], ordered: set[int]) -> SpecError:
        """The first cycle among the layers the order left out, walked along their inputs."""
        path = [min(set(range(len(inputs))) - ordered)]
        while True:
            step = next(s for s in inputs[path[-1]] if s >= 0 and s not in ordered)
            if step in path:
                flow = path[path.index(step) :][
                    ::-1
                ]  # each layer feeding the next, the last the first
                break
            path.append(step)
        first = flow.index(min(flow))
        flow = flow[first:] + flow[:first]
        chain = " -> ".join(self.label(i) for i in [*flow, flow[0]])
        data = "'input'" if len(self.input_names) == 1 else "the data"
        message = f"the inputs make a cycle: {chain}; expected every input to lead back to {data}"
        return SpecError(message, field=f"layers[{flow[0]}].inputs")

    def unused(self, i: int) -> SpecError:
        name = self.names[i]
        if name is not None:
            message = (
                f"nothing takes the output of {self.label(i)}; expected {name!r} among a later "
                "layer's inputs (the last layer alone is the network's output)"
            )
            return SpecError(message, field=f"layers[{i}].name")
        message = (
            f"nothing takes the output of {self.label(i)}: the layer after it takes other "
            "inputs; expected it named and among a later layer's inputs, or left out"
        )
        return SpecError(message, field=f"layers[{i}]")

    def unread(self, name: str) -> SpecError:
        message = (
            f"no layer reads the data input {name!r}; expected {name!r} among a layer's inputs "
            "(or the input left out of data.inputs)"
        )
        return SpecError(message, field="layers")


def _order(inputs: list[tuple[int, ...]]) -> list[int]:
    """Kahn's topological order, the lowest position first among the ready, so a stack runs as
    written; the layers on or behind a cycle never become ready and are left out."""
    sources = [{s for s in taken if s >= 0} for taken in inputs]
    waiting = [len(s) for s in sources]
    taking: list[list[int]] = [[] for _ in inputs]
    for i, found in enumerate(sources):
        for source in found:
            taking[source].append(i)
    ready = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for after in taking[i]:
            waiting[after] -= 1
            if waiting[after] == 0:
                heapq.heappush(ready, after)
    return order
