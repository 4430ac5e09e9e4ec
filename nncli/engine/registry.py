"""Name -> class registries with a did-you-mean for unknown names.

``LAYERS``, ``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS`` and ``INITIALIZERS`` are filled by the
``@X.register("name")`` decorators in the engine's modules; importing ``nncli.engine`` fills
them all.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from nncli.errors import SpecError


def did_you_mean(name: object, choices: list[str]) -> str:
    """`` (did you mean 'relu'?)`` for a close match, else an empty string."""
    matches = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


class Registry:
    """Maps names to classes; ``create`` builds one from a name and keyword settings."""

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def add(cls: type) -> type:
            if name in self._classes:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.type_name = name
            self._classes[name] = cls
            return cls

        return add

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def get(self, name: object, field: str | None = "type") -> type:
        if not isinstance(name, str) or name not in self._classes:
            raise SpecError(
                f"expected {'an' if self.kind[0] in 'aeiou' else 'a'} {self.kind} name "
                f"({', '.join(self.names())}), got {name!r}" + did_you_mean(name, self.names()),
                field=field,
            )
        return self._classes[name]

    def settings(self, name: str) -> list[str]:
        """The keyword settings the class's constructor takes."""
        sig = inspect.signature(self.get(name).__init__)
        return [p for p in sig.parameters if p != "self" and not p.startswith("_")]

    def create(self, name: object, settings: dict[str, Any] | None = None) -> Any:
        """Build ``name`` with ``settings``; an unknown setting is a ``SpecError`` naming it."""
        cls = self.get(name)
        settings = dict(settings or {})
        allowed = self.settings(name)  # type: ignore[arg-type]
        for key in settings:
            if key not in allowed:
                raise SpecError(
                    f"{self.kind} {name!r} takes {', '.join(allowed) or 'no settings'}; "
                    f"got unknown setting {key!r}" + did_you_mean(key, allowed),
                    field=key,
                )
        return cls(**settings)


LAYERS = Registry("layer")
ACTIVATIONS = Registry("activation")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
INITIALIZERS = Registry("initializer")
