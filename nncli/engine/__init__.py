"""nncli's neural-network engine: layers, losses, optimizers and the Sequential network.

Importing this package registers every layer, activation, loss, optimizer and initialiser.
"""

from nncli.engine import (  # noqa: F401  (convolution and pooling layers)
    activations,
    conv,
    conv1d,
    dense,
    dropout,
    embedding,
    global_pool,
    initializers,
    losses,
    normalization,
    optimizers,
    pool,
    pool1d,
    recurrent,  # noqa: F401  (rnn, lstm, gru)
    shape,
)
from nncli.engine.network import Sequential
from nncli.engine.registry import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LAYERS",
    "LOSSES",
    "OPTIMIZERS",
    "Sequential",
    "activations",
    "dense",
    "dropout",
    "initializers",
    "losses",
    "optimizers",
    "shape",
]
