"""nncli's neural-network engine: layers, losses, optimizers and the Sequential network.

Importing this package registers every layer, activation, loss, optimizer and initialiser. A new
layer module is named once, in ``LAYER_MODULES``; tests/engine/test_network.py fails for an engine
module that defines a layer without being listed here.
"""

from importlib import import_module

from nncli.engine.network import Sequential
from nncli.engine.registry import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS

# the modules whose import registers layers (activations are layers too), in any order
LAYER_MODULES = (
    "activations",
    "attention",
    "conv",
    "conv1d",
    "dense",
    "dropout",
    "embedding",
    "global_pool",
    "gru",
    "normalization",
    "pool",
    "pool1d",
    "positional",
    "recurrent",
    "shape",
    "transformer",
)
# the modules whose import registers the other registries' entries
OTHER_MODULES = ("initializers", "losses", "optimizers", "schedules")

for _module in (*LAYER_MODULES, *OTHER_MODULES):
    import_module(f"{__name__}.{_module}")

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LAYERS",
    "LAYER_MODULES",
    "LOSSES",
    "OPTIMIZERS",
    "OTHER_MODULES",
    "Sequential",
]
