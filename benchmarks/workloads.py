"""The benchmark workloads: seeded data, the network as nncli layer configs, and batch orders.

Only numpy is imported here, so a PyTorch child process carries nothing of nncli's. Both
engines build their networks from the same description and take the same initial weights (a
``.npz`` the parent writes from nncli's initialisers) and the same batch order per epoch
(nncli's: ``default_rng([seed, 2, epoch]).permutation(n)``, see ``nncli/data/batches.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "datasets" / "digits.csv"
SEED = 0
SHUFFLE_STREAM = 2  # nncli.data.streams.STREAM_SHUFFLE


@dataclass(frozen=True)
class Workload:
    """One benchmark: what to train, on how much data, and how it is timed."""

    id: str
    title: str
    layers: list[Any]
    input_shape: tuple[int, ...]
    samples: int
    batch: int
    classes: int = 10
    kind: str = "train"  # train | infer
    epochs: int = 1  # epochs in one timed run (W4 times its whole 20-epoch fit)
    infer_batch: int = 1024
    quick_samples: int = 256
    extra: dict[str, Any] = field(default_factory=dict)


MLP = [
    {"type": "dense", "units": 256, "activation": "relu"},
    {"type": "dense", "units": 128, "activation": "relu"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]
CNN = [
    {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 128, "activation": "relu"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]
SEQ_CNN = [
    {"type": "conv1d", "filters": 32, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "batchnorm"},
    {"type": "conv1d", "filters": 64, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "batchnorm"},
    {"type": "global_avgpool"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]
RNN = [{"type": "lstm", "units": 128}, {"type": "dense", "units": 10, "activation": "softmax"}]
TRANSFORMER = [  # issue 26's W6: two pre-norm encoder blocks, mean over time, a linear head
    {"type": "transformer", "heads": 4, "feedforward": 128, "dropout": 0.0},
    {"type": "transformer", "heads": 4, "feedforward": 128, "dropout": 0.0},
    {"type": "global_avgpool"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]


def residual_block(filters: int, strides: int, projection: bool) -> dict[str, Any]:
    """ResNet's basic block: conv 3x3, batchnorm, relu, conv 3x3, batchnorm, + shortcut, relu."""
    conv = {"type": "conv2d", "filters": filters, "kernel_size": 3, "padding": 1}
    return {
        "type": "residual",
        "projection": projection,
        "activation": "relu",
        "layers": [
            {**conv, "strides": strides},
            {"type": "batchnorm"},
            {"type": "relu"},
            conv,
            {"type": "batchnorm"},
        ],
    }


RESNET = [  # issue 26's W7: 16 channels at 28x28, then 32 at 14x14 (a strided block), then 32
    residual_block(16, 1, True),
    residual_block(32, 2, True),
    residual_block(32, 1, False),
    {"type": "global_avgpool"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]
SMALL = [
    {"type": "dense", "units": 32, "activation": "relu"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]

WORKLOADS = {
    w.id: w
    for w in [
        Workload("W1", "MLP 784-256-128-10, Adam, batch 64", MLP, (784,), 10_000, 64),
        Workload("W2", "CNN 2 conv + 2 maxpool + 2 dense, batch 64", CNN, (1, 28, 28), 4096, 64),
        Workload("W3", "LSTM 50 steps x 16 features, 128 units, batch 32", RNN, (50, 16), 2048, 32),
        Workload(
            "W4", "MLP 64-32-10 on digits.csv, batch 32, 20 epochs", SMALL, (64,), 1797, 32,
            epochs=20, quick_samples=1797,
        ),
        Workload("W5", "conv1d 32 + batchnorm + conv1d 64 + batchnorm + global avgpool, "
                 "128 steps x 8 features, batch 64", SEQ_CNN, (128, 8), 2048, 64),
        Workload("W6", "transformer classifier: 2 blocks, F 64, 4 heads, feed-forward 128, "
                 "64 steps, batch 32", TRANSFORMER, (64, 64), 1024, 32),
        Workload("W7", "residual CNN: 3 blocks of two 3x3 conv + batchnorm, 16 then 32 channels, "
                 "1x28x28, batch 64", RESNET, (1, 28, 28), 2048, 64),
        Workload("I1", "W1's MLP, inference at batch 1024", MLP, (784,), 10_240, 64, kind="infer"),
        Workload("I2", "W2's CNN, inference at batch 1024", CNN, (1, 28, 28), 4096, 64,
                 kind="infer"),
    ]
}  # fmt: skip


def samples(w: Workload, quick: bool) -> int:
    return min(w.samples, w.quick_samples) if quick else w.samples


def make_data(w: Workload, quick: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, *input_shape) float32 and class indices (N,) int64, the same in every process.

    Synthetic sets take their labels from a fixed random linear 'teacher', so there is something
    to learn; W4 reads the shipped digits (pixels / 16).
    """
    n = samples(w, quick)
    if w.id == "W4":
        table = np.loadtxt(DIGITS, delimiter=",", skiprows=1, dtype=np.float32)
        return np.ascontiguousarray(table[:n, :-1] / 16.0), table[:n, -1].astype(np.int64)
    rng = np.random.default_rng([SEED, 7, sum(map(ord, w.id))])
    if len(w.input_shape) == 2:  # sequences
        x = rng.standard_normal((n, *w.input_shape), dtype=np.float32)
        summary = x.mean(axis=1)
    else:
        x = rng.random((n, *w.input_shape), dtype=np.float32)
        summary = x.reshape(n, -1) - 0.5
    teacher = rng.standard_normal((summary.shape[1], w.classes), dtype=np.float32)
    return x, (summary @ teacher).argmax(axis=1).astype(np.int64)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels]


def batch_order(n: int, epoch: int, seed: int = SEED) -> np.ndarray:
    """The sample order of one epoch, exactly as ``nncli.train.fit`` draws it."""
    return np.random.default_rng([seed, SHUFFLE_STREAM, epoch]).permutation(n)


def batches(n: int, size: int, epoch: int) -> list[np.ndarray]:
    order = batch_order(n, epoch)
    return [order[i : i + size] for i in range(0, n, size)]


def gemm_flops(w: Workload) -> float:
    """Multiply-adds x 2 of one training epoch's matrix products (forward + 2 backward)."""
    n = w.samples
    if w.id in ("W1", "I1"):
        macs = 784 * 256 + 256 * 128 + 128 * 10
    elif w.id in ("W2", "I2"):
        macs = 28 * 28 * 16 * 9 + 14 * 14 * 32 * 16 * 9 + 32 * 7 * 7 * 128 + 128 * 10
    elif w.id == "W3":
        macs = 50 * (16 * 512 + 128 * 512) + 128 * 10
    elif w.id == "W5":
        macs = 128 * (8 * 3 * 32 + 32 * 3 * 64) + 64 * 10
    elif w.id == "W7":  # two 3x3 convs a block and the 1x1 projections
        macs = (
            28 * 28 * (16 * 1 * 9 + 16 * 16 * 9 + 16)
            + 14 * 14 * (32 * 16 * 9 + 32 * 32 * 9 + 32 * 16)
            + 14 * 14 * (2 * 32 * 32 * 9)
            + 32 * 10
        )
    elif w.id == "W6":  # per block: projections in and out, the feed-forward, scores and mixing
        macs = 2 * (64 * (3 * 64 * 64 + 64 * 64 + 2 * 64 * 128) + 2 * 64 * 64 * 64) + 64 * 10
    else:
        macs = 64 * 32 + 32 * 10
    factor = 2 if w.kind == "infer" else 6
    return float(factor * macs * n)
