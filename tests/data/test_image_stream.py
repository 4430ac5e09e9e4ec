"""``data.streaming`` for an image folder (nncli/data/image_stream.py): the split and the
per-channel statistics are the in-memory ones (statistics within float64 rounding), and ``fit``
decodes one batch's images at a time, counted rather than measured."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
from helpers import image_folder
from test_images import cfg as image_cfg

from nncli.data import images
from nncli.data.image_stream import LazyImages


def cfg(streaming: bool, **more) -> types.SimpleNamespace:
    more = dict(normalize="standard", validation_split=0.25, streaming=streaming, **more)
    return image_cfg("d", chunk_rows=5, **more)


def test_the_split_and_statistics_are_the_in_memory_ones(tmp_path: Path):
    image_folder(tmp_path / "d")
    held = images.load(cfg(False), tmp_path, 3, "cross_entropy")
    streamed = images.load(cfg(True), tmp_path, 3, "cross_entropy")
    x = streamed.parts["train"].x
    assert isinstance(x, LazyImages) and x.shape == held.parts["train"].x.shape
    eps = np.finfo(np.float64).eps * 64 * len(x)  # sums over every pixel of the part
    np.testing.assert_allclose(streamed.encoder.mean, held.encoder.mean, rtol=eps)
    np.testing.assert_allclose(streamed.encoder.std, held.encoder.std, rtol=eps)
    for name in ("train", "validation"):
        np.testing.assert_array_equal(streamed.parts[name].y, held.parts[name].y)
        got, expected = streamed.parts[name].x[:], held.parts[name].x
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got, expected, atol=8 * np.finfo(np.float32).eps * scale)
    assert x.held_peak == len(x)  # the [:] above decoded the whole part, and nothing else did
