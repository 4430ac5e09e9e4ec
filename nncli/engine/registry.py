"""Name -> class registries with a did-you-mean for unknown names.

``LAYERS``, ``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS`` and ``INITIALIZERS`` are filled by the
``@X.register("name")`` decorators in the engine's modules; importing ``nncli.engine`` fills
them all. Names are matched regardless of case (``Dense``, ``ReLU``, ``MSE``) and stored in
their registered lower-case form.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from nncli.errors import SpecError

# The one table of names other libraries use (Keras, PyTorch) -> ours, for values and keys,
# looked up before string distance. Keys are folded (see ``fold``). A synonym is a suggestion,
# never accepted silently: the spec keeps one spelling of each idea. A target with a dot is a
# key that lives in another section and is suggested by its full path.
SYNONYMS = {
    # losses
    "categoricalcrossentropy": "cross_entropy",
    "sparsecategoricalcrossentropy": "cross_entropy",
    "crossentropy": "cross_entropy",
    "crossentropyloss": "cross_entropy",
    "binarycrossentropy": "binary_cross_entropy",
    "bceloss": "binary_cross_entropy",
    "meansquarederror": "mse",
    "mseloss": "mse",
    "meanabsoluteerror": "mae",
    "l1loss": "mae",
    # layers
    "maxpooling2d": "maxpool2d",
    "averagepooling2d": "avgpool2d",
    "avgpooling2d": "avgpool2d",
    "maxpooling1d": "maxpool1d",
    "averagepooling1d": "avgpool1d",
    "avgpooling1d": "avgpool1d",
    "globalaveragepooling1d": "global_avgpool",
    "globalaveragepooling2d": "global_avgpool",
    "globalavgpool1d": "global_avgpool",
    "globalavgpool2d": "global_avgpool",
    "globalmaxpooling1d": "global_maxpool",
    "globalmaxpooling2d": "global_maxpool",
    "globalmaxpool1d": "global_maxpool",
    "globalmaxpool2d": "global_maxpool",
    "batchnormalization": "batchnorm",
    "batchnorm1d": "batchnorm",
    "batchnorm2d": "batchnorm",
    "layernormalization": "layernorm",
    "simplernn": "rnn",
    # initialisers
    "kaimingnormal": "he_normal",
    "kaiminguniform": "he_uniform",
    "xaviernormal": "glorot_normal",
    "xavieruniform": "glorot_uniform",
    "randomnormal": "normal",
    "randomuniform": "uniform",
    # keys
    "lr": "learning_rate",
    "restorebestweights": "restore_best",
    "mindelta": "min_delta",
    "nbepoch": "epochs",
    "maxepochs": "epochs",
    "numepochs": "epochs",
    "outfeatures": "units",
    "outchannels": "filters",
    "hiddensize": "units",
    "numembeddings": "input_dim",
    "embeddingdim": "output_dim",
    "stride": "strides",
    "inputshape": "model.input",
    "inputdim": "model.input",
    "gradientclipval": "optimizer.clip_norm",
    # metrics (early_stopping.monitor)
    "acc": "accuracy",
    "valacc": "val_accuracy",
}

# Other libraries' names with no one counterpart here: folded name -> (a name that must be among
# the choices, so the line is said only where it applies, e.g. among layer types; what to write).
SPATIAL = ("dropout", "nearest: 'dropout', which drops single values rather than whole channels")
USE_INSTEAD = {
    "bidirectional": ("lstm", "here a setting: rnn, lstm and gru take bidirectional: true"),
    "spatialdropout": SPATIAL,
    "spatialdropout1d": SPATIAL,
    "spatialdropout2d": SPATIAL,
    "spatialdropout3d": SPATIAL,
    "activation": ("relu", "an activation is a layer: type: relu, or activation: relu on dense"),
    "timedistributed": ("dense", "a dense layer after return_sequences: true acts on each step"),
}


# Other libraries' names that look like ours but mean something else: the name as written, in
# lower case (not folded: ``clipnorm`` must not match our ``clip_norm``) -> the line that says
# the difference, said wherever the name is unknown, before any spelling match.
_GLOBAL = "optimizer.clip_norm (all gradients rescaled together by their global norm)"
DIFFERS = {
    "clipnorm": "Keras's clipnorm rescales each weight's gradient by its own norm; nncli has no "
    f"per-weight clipping: {_GLOBAL} is Keras's global_clipnorm, optimizer.clip_value clamps "
    "each element",
    "global_clipnorm": f"Keras's global_clipnorm is {_GLOBAL}",
    "clipvalue": "Keras's clipvalue is optimizer.clip_value (each gradient element clamped to "
    "[-c, c], PyTorch's clip_grad_value_); optimizer.clip_norm is the global norm instead",
    "kernel_regularizer": "Keras's kernel_regularizer=l2(c) adds c * sum(w^2) to the loss, a "
    "gradient of 2 c w on the layer's kernel; the same is optimizer.weight_decay: 2c (with "
    "decoupled_weight_decay: false, the default), which applies to every parameter, biases "
    "and normalisation scales included: there is no regularizer per layer",
}


def fold(name: object) -> str:
    """``Mean_Squared-Error`` -> ``meansquarederror``: how synonyms are looked up."""
    return str(name).lower().replace("_", "").replace("-", "")


def did_you_mean(name: object, choices: list[str]) -> str:
    """`` (did you mean 'cross_entropy'?)`` from the synonym table (after the line of a name
    that means something else here, ``DIFFERS``), a spelling that differs only
    in case and underscores, what to write instead (``USE_INSTEAD``), or a close match; else an
    empty string."""
    differs = DIFFERS.get(str(name).lower())
    if differs is not None:
        return f" ({differs})"
    folded = fold(name)
    target = SYNONYMS.get(folded)
    if target is not None and (target in choices or "." in target):
        return f" (did you mean {target!r}?)"
    same = [c for c in choices if fold(c) == folded]
    needed, instead = USE_INSTEAD.get(folded, (None, ""))
    if not same and needed in choices:
        return f" ({instead})"
    matches = same or difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


class Registry:
    """Maps names to classes; ``create`` builds one from a name and keyword settings."""

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}
        self._by_lower: dict[str, str] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def add(cls: type) -> type:
            if name.lower() in self._by_lower or name != name.lower():
                raise ValueError(f"{self.kind} {name!r} is registered twice or not lower-case")
            cls.type_name = name
            self._classes[name] = cls
            self._by_lower[name] = name
            return cls

        return add

    def names(self) -> list[str]:
        return sorted(self._classes)

    def canonical(self, name: object) -> str | None:
        """The registered name ``name`` spells in any case (``ReLU`` -> ``relu``), else None."""
        return self._by_lower.get(name.lower()) if isinstance(name, str) else None

    def canonical_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """``{type: Dense, activation: ReLU, kernel_initializer: He_Normal}`` with every name
        in its registered spelling, so a resolved spec stores one form."""
        out = dict(entry)
        for key, value in entry.items():
            registry = {"type": self, "activation": ACTIVATIONS}.get(key)
            if key.endswith("_initializer"):
                registry = INITIALIZERS
            if registry is not None and isinstance(value, dict):
                out[key] = registry.canonical_entry(value)
            elif registry is not None:
                out[key] = registry.canonical(value) or value
        return out

    def __contains__(self, name: object) -> bool:
        return self.canonical(name) is not None

    def get(self, name: object, field: str | None = "type") -> type:
        found = self.canonical(name)
        if found is None:
            raise SpecError(
                f"expected {'an' if self.kind[0] in 'aeiou' else 'a'} {self.kind} name "
                f"({', '.join(self.names())}), got {name!r}" + did_you_mean(name, self.names()),
                field=field,
            )
        return self._classes[found]

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
