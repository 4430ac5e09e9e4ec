"""``nncli import``: a PyTorch ``state_dict`` saved with safetensors -> an nncli checkpoint of a
spec whose layers match it, which predict, evaluate, serve and ``model.init_from`` read.

nncli's parameter layouts are PyTorch's (ARCHITECTURE.md's table), so each array is copied as
it is. Which tensor goes where: the tensors are grouped by their module, the first part of the
name (``0`` of ``0.weight``, ``lstm`` of ``lstm.weight_ih_l0``; a prefix every name shares, such
as ``model.``, is left out), and the groups are dealt to the spec's layers with arrays in order:
numbered modules (``nn.Sequential``) by number, named ones by name, each layer taking the first
group left whose names and shapes are its own (so ``self.lstm`` and ``self.head`` find their
layers though the file keeps no module order). Inside a group a tensor goes to the array of its
name (an rnn's ``weight_ih_l0`` to ``weight_ih``, ``_reverse`` to ``weight_ih_reverse``);
``num_batches_tracked`` is left out. A layer with no group of its shapes is refused with both
shapes named.

The encoder: predict applies the encoder a checkpoint stores, so the spec's data is read and
the encoder fitted on it exactly as ``train`` would (scaling statistics, classes, vocabulary);
the PyTorch model must have been trained on inputs encoded that way (``normalize: none`` for
raw features).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.checkpoint import model as model_io
from nncli.checkpoint.outputs import check_output
from nncli.checkpoint.tensors import read_tensors
from nncli.commands.train import data_state
from nncli.engine.history import History
from nncli.engine.layer import Layer
from nncli.errors import SpecError
from nncli.spec.resolve import resolve

if TYPE_CHECKING:
    from nncli.spec import Spec

SKIPPED = ("num_batches_tracked",)  # PyTorch's batchnorm counter: no nncli array
RNN_LAYER = re.compile(r"^(weight|bias)_(ih|hh)_l0(_reverse)?$")


@dataclass(frozen=True)
class Mapped:
    """One array of the checkpoint and the tensor it came from."""

    array: str  # "0.dense.weight"
    shape: tuple[int, ...]
    tensor: str  # "0.weight"


@dataclass
class ImportResult:
    output: Path
    table: list[Mapped]
    skipped: list[str]  # tensors left out (num_batches_tracked)


def _local(name: str) -> str:
    """A tensor's name inside its module as nncli names the array (``weight_ih_l0`` ->
    ``weight_ih``); a deeper rnn layer (``_l1``) stays as it is and so matches nothing."""
    match = RNN_LAYER.match(name)
    return f"{match[1]}_{match[2]}{match[3] or ''}" if match else name


def _groups(tensors: dict[str, np.ndarray]) -> list[tuple[str, dict[str, str]]]:
    """(module, {nncli array name: tensor name}) in module order (numbers as numbers)."""
    names = [n for n in tensors if n.rsplit(".", 1)[-1] not in SKIPPED]
    parts = [n.split(".") for n in names]
    shared = 0
    while all(len(p) > shared + 2 for p in parts) and len({p[shared] for p in parts}) == 1:
        shared += 1  # a prefix every name has (model.): not a module
    groups: dict[str, dict[str, str]] = {}
    for name, p in zip(names, parts, strict=True):
        module = ".".join(p[: shared + 1])
        groups.setdefault(module, {})[_local(".".join(p[shared + 1 :]))] = name

    def order(item: tuple[str, dict[str, str]]) -> tuple[int, int, str]:
        last = item[0].rsplit(".", 1)[-1]
        return (0, int(last), "") if last.isdigit() else (1, 0, item[0])

    return sorted(groups.items(), key=order)


def _arrays(layer: Layer) -> dict[str, Any]:
    return {**layer.params, **layer.state}


def _sources(layer: Layer, group: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """The group's tensors by the layer's array names: each its own, and PyTorch's two rnn and
    lstm biases summed into nncli's one (``bias = bias_ih + bias_hh``: the same sum)."""
    sources = {local: (name,) for local, name in group.items()}
    for end in ("", "_reverse"):
        pair = (f"bias_ih{end}", f"bias_hh{end}")
        if f"bias{end}" in _arrays(layer) and all(b in sources for b in pair):
            sources[f"bias{end}"] = sources.pop(pair[0]) + sources.pop(pair[1])
    return sources


def _fits(layer: Layer, group: dict[str, str], tensors: dict[str, np.ndarray]) -> str:
    """Why the group's tensors are not the layer's arrays (names, then shapes); "" if they are."""
    mine, sources = _arrays(layer), _sources(layer, group)
    if set(sources) != set(mine):
        return (
            f"{layer.label} holds {', '.join(mine)}; the module holds {', '.join(group.values())}"
        )
    for key, a in mine.items():
        found = tuple(tensors[sources[key][0]].shape)
        if found != tuple(a.shape):
            there = f"the file's {sources[key][0]!r} is {found}"
            return f"{layer.label} {key} is {tuple(a.shape)}, {there}"
    return ""


def _deal(layers: list[Layer], tensors: dict[str, np.ndarray]) -> list[tuple[Layer, dict]]:
    """Each layer with arrays and its tensors by array name (see the module's docstring)."""
    groups = _groups(tensors)
    wanting = [layer for layer in layers if _arrays(layer)]
    if len(groups) != len(wanting):
        modules = ", ".join(m for m, _ in groups)
        raise SpecError(
            f"the spec's network has {len(wanting)} layers with weights, the file "
            f"{len(groups)} modules ({modules}); expected one module per layer",
            field="model.layers",
        )
    dealt, left = [], list(groups)
    for layer in wanting:
        fitting = [g for g in left if not _fits(layer, g[1], tensors)]
        if not fitting:
            raise SpecError(
                f"no module of the file fits: {_fits(layer, left[0][1], tensors)}",
                field=f"model.{layer.place}",
            )
        left.remove(fitting[0])
        dealt.append((layer, _sources(layer, fitting[0][1])))
    return dealt


def import_weights(weights: Path, spec: Spec, output: Path, *, force: bool = False) -> ImportResult:
    """Read ``weights`` (safetensors), build the spec's network (its data read and encoded as
    train would), copy each tensor into its array and save the checkpoint at ``output``."""
    weights, output = Path(weights), Path(output)
    data_paths = [getattr(spec.data, key, None) for key in ("path", "validation", "test")]
    check_output(output, [weights, spec.source, *data_paths], force=force)
    tensors = read_tensors(weights)
    ready = resolve(spec)
    net, table = ready.net, []
    for layer, sources in _deal(net.layers, tensors):
        for key, array in _arrays(layer).items():
            value = sum(tensors[name].astype(np.float64) for name in sources[key])
            array[...] = net.backend.asarray(value, dtype=array.dtype)
            name = f"{layer.index}.{layer.type_name}.{key}"
            table.append(Mapped(name, tuple(array.shape), " + ".join(sources[key])))
    from nncli.spec import resolved_yaml

    model_io.save(
        output,
        net=net,
        loss=ready.loss,
        data=data_state(spec, ready.ds),
        spec_yaml=resolved_yaml(spec),
        optimizer=None,
        history=History(),
        seed=spec.seed,
    )
    skipped = [n for n in tensors if n.rsplit(".", 1)[-1] in SKIPPED]
    return ImportResult(output, table, skipped)
