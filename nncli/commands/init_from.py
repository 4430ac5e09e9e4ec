"""``model.init_from``: a run's network starts from a trained checkpoint's weights.

Each layer of the new network with arrays takes the checkpoint's layer of the same ``name``,
or, unnamed, the one at its place in the stack, when that layer is of the same type and holds
arrays of the same names and shapes (parameters and running statistics); any other layer keeps
the weights the seed drew (a new head when the classes differ). The checkpoint is read with
every check a checkpoint gets (``checkpoint/reader.py``, ``contents.py``); its data encoding
is not used: the new run fits its own, so the task may differ (Keras's ``load_weights(by_name,
skip_mismatch)``, Ludwig's ``--model_load_path``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nncli.checkpoint import model as model_io
from nncli.engine.layer import Layer
from nncli.engine.network import Network
from nncli.errors import SpecError


@dataclass(frozen=True)
class Start:
    """Where one layer's weights came from: ``source`` the checkpoint's layer, or None when
    they were drawn fresh (``why`` says why)."""

    layer: str  # "layers[2] (dense)"
    source: str | None  # "layers[2] (dense)" of the checkpoint
    why: str = ""

    def line(self, path: Path) -> str:
        if self.source is None:
            return f"{self.layer}: drawn fresh ({self.why})"
        return f"{self.layer}: from {path.name} {self.source}"


def _arrays(layer: Layer) -> dict[str, Any]:
    return {**layer.params, **layer.state}


def _label(net: Network, i: int) -> str:
    """``'body' (layers[0], dense)`` for a named layer, else ``layers[1] (dense)``."""
    kinds = [(layer.type_name, layer.several_inputs) for layer in net.layers]
    return net.wiring.label(i, kinds)


def _counterpart(net: Network, i: int, source: Network) -> tuple[int | None, str]:
    """The checkpoint's layer for layer ``i``: by name, else by place -> (its place, why not)."""
    name = net.wiring.names[i]
    if name is not None:
        names = source.wiring.names
        if name not in names:
            return None, f"the checkpoint has no layer named {name!r}"
        return names.index(name), ""
    if i >= len(source.layers):
        return None, f"the checkpoint has {len(source.layers)} layers"
    return i, ""


def _mismatch(layer: Layer, other: Layer) -> str:
    """Why ``other``'s arrays cannot stand in for ``layer``'s; empty when they can."""
    if other.type_name != layer.type_name:
        return f"the checkpoint's {other.label} is of another type"
    mine, theirs = _arrays(layer), _arrays(other)
    for key in [*mine, *(k for k in theirs if k not in mine)]:
        if key not in mine or key not in theirs:
            return f"{key} is only in {'the checkpoint' if key in theirs else 'this network'}"
        here, there = tuple(mine[key].shape), tuple(theirs[key].shape)
        if here != there:
            return f"{key} is {here} here, {there} in the checkpoint"
    return ""


def start_from(net: Network, path: Path, where: str | None = None) -> list[Start]:
    """Copy into ``net`` every layer of the checkpoint at ``path`` that matches (see above) ->
    one ``Start`` per layer with arrays. SpecError when none matches (``where``: the key's
    place in the spec)."""
    source = model_io.load(path).net
    starts = []
    for i, layer in enumerate(net.layers):
        if not _arrays(layer):
            continue
        j, why = _counterpart(net, i, source)
        other = None if j is None else source.layers[j]
        why = why or _mismatch(layer, other)
        if why:
            starts.append(Start(_label(net, i), None, why))
            continue
        for key, array in _arrays(layer).items():
            array[...] = net.backend.asarray(_arrays(other)[key], dtype=array.dtype)
        starts.append(Start(_label(net, i), _label(source, j)))
    if starts and all(start.source is None for start in starts):
        found = "; ".join(f"{s.layer}: {s.why}" for s in starts)
        raise SpecError(
            f"no layer of {path} matches this network by name or place, type and shapes ({found})",
            field="model.init_from",
            where=where,
        )
    return starts
