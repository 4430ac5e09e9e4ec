"""The CPU backend's malloc settings (``backend.keep_freed_memory``): a training step's arrays
of a few MB reuse freed memory instead of fresh pages every batch, counted in page faults."""

from __future__ import annotations

import platform
import resource

import numpy as np
import pytest

from nncli import backend
from nncli.backend import get_backend
from nncli.engine.network import Sequential

glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_nncli_malloc_default_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv("NNCLI_MALLOC", "default")
    assert backend.keep_freed_memory.__wrapped__() is False


@pytest.mark.skipif(not glibc, reason="glibc's mallopt only")
def test_a_training_step_reuses_freed_memory_instead_of_fresh_pages():
    """After the first CPU backend, repeated steps of a conv1d network (W5's arrays: several MB
    freed and made again each batch) take few page faults: glibc's default gave ~1,000 a step."""
    assert get_backend("cpu") and backend.keep_freed_memory() is True
    layers = [
        {"type": "conv1d", "filters": 32, "kernel_size": 3, "padding": "same"},
        {"type": "batchnorm"},
        {"type": "conv1d", "filters": 64, "kernel_size": 3, "padding": "same"},
        {"type": "global_avgpool"},
        {"type": "dense", "units": 10},
    ]
    net = Sequential(layers, (128, 8), seed=0)
    x = np.random.default_rng(0).random((64, 128, 8), dtype=np.float32)
    dy = np.ones((64, 10), np.float32)
    for _ in range(3):  # the heap grows to its size
        net.forward(x, training=True)
        net.backward(dy)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        net.forward(x, training=True)
        net.backward(dy)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 10 * 100, faults
