"""Training augmentation: each change exact, deterministic per (seed, epoch), different across
epochs, applied by fit to training batches only, never at validation, evaluate or predict, and
a resumed run sees the same changes as an uninterrupted one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import assert_close_float32, invoke
from PIL import Image

from nncli.checkpoint import model as model_io
from nncli.commands.evaluate import evaluate_file
from nncli.commands.predict import predict_files
from nncli.data import images
from nncli.data.augment import Augmenter
from nncli.data.image_encoder import ImageEncoder
from nncli.data.streams import STREAM_AUGMENT, rng_for


def batch(n: int = 16, c: int = 2, h: int = 7, w: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


def epoch_rng(epoch: int, seed: int = 0) -> np.random.Generator:
    return rng_for(seed, STREAM_AUGMENT, epoch)


def test_shape_and_dtype_kept_and_input_untouched():
    x = batch()
    before = x.copy()
    aug = Augmenter(True, True, 2, 15.0, 0.1, fill=(0.0, 0.0), scale=(1.0, 1.0))
    out = aug(x, epoch_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    assert Augmenter().active is False and aug.active


def test_deterministic_per_seed_and_epoch_and_different_across_epochs():
    x = batch()
    aug = Augmenter(True, False, 1, 10.0, 0.05, fill=(0.0, 0.0), scale=(1.0, 1.0))
    first = aug(x, epoch_rng(1))
    np.testing.assert_array_equal(aug(x, epoch_rng(1)), first)
    assert not np.array_equal(aug(x, epoch_rng(2)), first)
    assert not np.array_equal(aug(x, epoch_rng(1, seed=1)), first)


@pytest.mark.parametrize("axis", ["horizontal", "vertical"])
def test_flip_exactly_mirrors_about_half_the_batch(axis: str):
    x = batch(n=64)
    aug = Augmenter(flip_horizontal=axis == "horizontal", flip_vertical=axis == "vertical")
    out = aug(x, epoch_rng(3))
    mirrored = x[..., ::-1] if axis == "horizontal" else x[:, :, ::-1, :]
    same = np.all(out == x, axis=(1, 2, 3))
    flipped = np.all(out == mirrored, axis=(1, 2, 3))
    assert np.all(same ^ flipped)  # each sample exactly one of the two
    assert 16 < flipped.sum() < 48


def test_shift_moves_whole_pixels_and_fills_the_border():
    x = batch(n=32, c=2)
    fill = (-1.5, 2.5)
    out = Augmenter(shift=2, fill=fill)(x, epoch_rng(1))
    n, _, h, w = x.shape
    seen = set()
    for k in range(n):  # the test may loop: find each sample's shift by trying all 25
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                expected = np.empty_like(x[k])
                expected[0], expected[1] = fill
                ys, xs = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
                src = x[k, :, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
                expected[:, ys, xs] = src
                if np.array_equal(out[k], expected):
                    matches.append((dy, dx))
        assert len(matches) == 1, k
        seen.add(matches[0])
    assert len(seen) > 8  # the shifts vary per sample


def test_rotation_turns_about_the_centre():
    x = batch(n=20, c=1, h=9, w=9)
    out = Augmenter(rotate=40.0)(x, epoch_rng(1))
    # the centre stays: bilinear weights (float32, each a product of two) over 4 pixels in [0, 1)
    assert_close_float32(out[:, :, 4, 4], x[:, :, 4, 4], terms=12, magnitude=1.0)
    assert np.abs(out - x).max(axis=(1, 2, 3)).min() > 1e-3  # every sample turned a little
    # a constant image on a background of the same value stays constant (bilinear weights sum 1)
    flat = np.full((5, 1, 9, 9), 0.25, dtype=np.float32)
    turned = Augmenter(rotate=90.0, fill=(0.25,))(flat, epoch_rng(2))
    assert_close_float32(turned, flat, terms=12)


def test_rotation_of_a_point_lands_where_the_angle_says():
    x = np.zeros((200, 1, 21, 21), dtype=np.float32)
    x[:, 0, 10, 18] = 1.0  # 8 pixels right of the centre
    out = Augmenter(rotate=30.0)(x, epoch_rng(4))
    ys, xs = np.indices((21, 21))
    mass = out[:, 0].sum(axis=(1, 2))
    cy = (out[:, 0] * ys).sum(axis=(1, 2)) / mass - 10
    cx = (out[:, 0] * xs).sum(axis=(1, 2)) / mass - 10
    np.testing.assert_allclose(np.hypot(cy, cx), 8, atol=0.6)  # same distance from the centre
    angles = np.degrees(np.arctan2(cy, cx))
    assert np.abs(angles).max() <= 31 and angles.min() < -15 and angles.max() > 15


def test_noise_is_in_pixel_units_scaled_like_the_data():
    x = np.zeros((50, 2, 16, 16), dtype=np.float32)
    out = Augmenter(noise=0.1, scale=(1.0, 4.0))(x, epoch_rng(1))
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [0.1, 0.4], rtol=0.05)
    np.testing.assert_allclose(out.mean(), 0, atol=0.01)


def test_augmenter_from_the_spec_uses_the_encoder_scaling():
    mean, std = np.array([0.5, 0.2, 0.1]), np.array([0.25, 0.1, 0.5])
    encoder = ImageEncoder(["a", "b"], "cross_entropy", (4, 4), "rgb", "standard", mean, std)
    off = SimpleNamespace(flip_horizontal=False, flip_vertical=False, shift=0, rotate=0, noise=0)
    assert images.augmenter(off, encoder) is None
    on = SimpleNamespace(**{**vars(off), "shift": 1})
    aug = images.augmenter(on, encoder)
    np.testing.assert_allclose(aug.fill, [-2.0, -2.0, -0.2])  # a black pixel, scaled
    np.testing.assert_allclose(aug.scale, [4.0, 10.0, 2.0])


# -- inside training -----------------------------------------------------------------------------
SPEC = """\
version: 1
seed: 3
data:
  kind: images
  path: d
  normalize: standard
  validation_split: 0.25
  augment: {flip_horizontal: true, shift: 1, rotate: 20, noise: 0.05}
model:
  layers:
    - {type: conv2d, filters: 3, kernel_size: 3, padding: same, activation: relu}
    - {type: maxpool2d, pool_size: 2}
    - flatten
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 4, batch_size: 5}
output: out/model.h5
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    for label in ("a", "b", "c"):
        for k in range(8):
            pixels = rng.integers(0, 256, (6, 6)).astype(np.uint8)
            (tmp_path / "d" / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(tmp_path / "d" / label / f"{k}.png")
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


class Counting:
    """Wraps Augmenter.__call__ to count calls and the rows they changed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.rows: list[int] = []
        original = Augmenter.__call__

        def call(aug: Augmenter, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            self.rows.append(len(x))
            return original(aug, x, rng)

        monkeypatch.setattr(Augmenter, "__call__", call)


def test_fit_augments_training_batches_only(work: Path, monkeypatch: pytest.MonkeyPatch):
    counting = Counting(monkeypatch)
    result = invoke("train", work / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    # 18 training images in batches of 5 (5, 5, 5, 3), 4 epochs; validation never
    assert counting.rows == [5, 5, 5, 3] * 4
    counting.rows.clear()
    ckpt = work / "out" / "model.h5"
    first = predict_files(ckpt, [work / "d"], proba=True)
    second = predict_files(ckpt, [work / "d"], proba=True)
    evaluate_file(ckpt, work / "d")
    assert counting.rows == []  # predict and evaluate never augment
    assert first.equals(second)


def test_resume_with_augmentation_is_exact(work: Path):
    spec = work / "spec.yaml"
    assert invoke("train", spec, "--quiet", "--output", work / "straight.h5").exit_code == 0
    half = work / "half.h5"
    assert invoke("train", spec, "--quiet", "--epochs", "2", "--output", half).exit_code == 0
    result = invoke("train", spec, "--quiet", "--resume", half, "--output", work / "resumed.h5")
    assert result.exit_code == 0, result.stderr
    straight = model_io.load(work / "straight.h5").net.get_weights()
    resumed = model_io.load(work / "resumed.h5").net.get_weights()
    for name, value in straight.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    # and augmentation did change the run: without it the weights differ
    plain_out = work / "plain.h5"
    result = invoke(
        "train", spec, "--quiet", "--output", plain_out, "--set", "data.augment.rotate=0"
    )
    assert result.exit_code == 0, result.stderr
    plain = model_io.load(plain_out).net.get_weights()
    assert any(not np.array_equal(plain[k], v) for k, v in straight.items())
