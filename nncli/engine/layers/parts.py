"""A composed layer's parts (transformer, residual): their arrays live in the whole's dicts
under qualified names, and each part reads and writes them through a live view."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any


class Qualified(MutableMapping):
    """A part's parameters (or gradients) as a live view of the block's, under their qualified
    names (``linear1.weight``): the network moves every parameter into its flat buffer and
    ``set_weights`` writes there, and the parts always see what the block holds."""

    def __init__(self, held: Callable[[], dict[str, Any]], names: dict[str, str]):
        self.held, self.names = held, names  # the block's dict (Layer.build replaces it)

    def __getitem__(self, key: str) -> Any:
        return self.held()[self.names[key]]

    def __setitem__(self, key: str, value: Any) -> None:
        self.held()[self.names[key]] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"a part's parameters are fixed; cannot remove {key!r}")

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)
