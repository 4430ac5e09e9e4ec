"""nncli's neural-network engine: layers, losses, optimizers and the network.

Importing this package registers every layer, activation, loss, optimizer and initialiser. The
layers live in ``layers/``, one module (or folder) per operation; a new layer module is named once,
in ``LAYER_MODULES``; tests/engine/test_network.py fails for an engine module that defines a
layer without being listed here.
"""

from importlib import import_module

from nncli.engine.network import Network, Sequential
from nncli.engine.registry import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS

# every module that defines a layer class (importing them registers the layers; activations
# are layers too), in any order
LAYER_MODULES = (
    "layers.activation",
    "layers.attention",
    "layers.conv1d",
    "layers.conv2d",
    "layers.dense",
    "layers.dropout",
    "layers.embedding",
    "layers.global_pool",
    "layers.layernorm",
    "layers.merge",
    "layers.normalization",
    "layers.pool1d",
    "layers.pool2d",
    "layers.positional",
    "layers.recurrent.gru",
    "layers.recurrent.loop",
    "layers.recurrent.lstm",
    "layers.recurrent.rnn",
    "layers.residual",
    "layers.shape",
    "layers.transformer",
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
    "Network",
    "OPTIMIZERS",
    "OTHER_MODULES",
    "Sequential",
]
