"""What a network is fed: one array (N, ...) for a network of one input, or a dict
{input name: (N, ...) array} in the spec's input order for a network of several; a mask is None,
one (N, T) array, or a dict {input name: (N, T) bool} for the inputs that have padding.

The one place that knows both forms: every caller (training's batches, evaluate, predict,
gradcheck, a shared run) takes rows, counts them and moves them through these.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from nncli.backend import Backend

Feed = Any  # an array, or a dict {input name: array}


def rows(x: Feed) -> int:
    """The examples of ``x``: len of the array, or of every (equally long) array of the dict."""
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    return len(x)


def take(x: Feed, index: Any) -> Feed:
    """Rows ``index`` (a slice or an index array) of an array, or of each array of a dict;
    None stays None."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {name: None if a is None else a[index] for name, a in x.items()}
    return x[index]


def shapes(x: Feed) -> Any:
    """One sample's shape (without the batch): a tuple, or a dict of them."""
    if isinstance(x, dict):
        return {name: tuple(int(d) for d in a.shape[1:]) for name, a in x.items()}
    return tuple(int(d) for d in x.shape[1:])


def concatenate(parts: list[Feed]) -> Feed:
    """Feeds of the same form, their rows one after the other."""
    if parts and isinstance(parts[0], dict):
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return np.concatenate(parts)


def _flat(batch: tuple) -> tuple[list[Any], list[Any], list[Any]]:
    """(x, y, mask) -> the arrays in one list, their dtypes (None: the float one, the masks
    bool), and the layout that puts them back together."""
    arrays, dtypes, layout = [], [], []
    for position, value in enumerate(batch):
        kind = bool if position == 2 else None
        if isinstance(value, dict):
            layout.append(tuple(value))
            arrays += list(value.values())
            dtypes += [kind] * len(value)
        else:
            layout.append(None)
            arrays.append(value)
            dtypes.append(kind)
    return arrays, dtypes, layout


def _rebuilt(moved: tuple, layout: list[Any]) -> tuple:
    values, at = [], 0
    for names in layout:
        if names is None:
            values.append(moved[at])
            at += 1
        else:
            values.append(dict(zip(names, moved[at : at + len(names)], strict=True)))
            at += len(names)
    return tuple(values)


def to_device(backend: Backend, x: Feed, y: Any, mask: Any) -> tuple[Any, Any, Any]:
    """A batch's host x, y and mask -> device arrays in one transfer: x and y in the network's
    float dtype, the masks bool."""
    arrays, dtypes, layout = _flat((x, y, mask))
    return _rebuilt(backend.to_device(*arrays, dtypes=tuple(dtypes)), layout)


def prefetched(backend: Backend, items: Iterable[tuple[Any, tuple]]) -> Iterator[tuple[Any, tuple]]:
    """(tag, (x, y, mask)) host batches -> (tag, device batch), the next one's copy started
    before the current one is used (``Backend.prefetched``); every batch has the first's form."""
    items = iter(items)
    first = next(items, None)
    if first is None:
        return
    _, dtypes, layout = _flat(first[1])
    flat = ((tag, tuple(_flat(batch)[0])) for tag, batch in itertools.chain([first], items))
    for tag, moved in backend.prefetched(flat, tuple(dtypes)):
        yield tag, _rebuilt(moved, layout)
