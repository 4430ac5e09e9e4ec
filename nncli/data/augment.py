"""Random changes to training images, a whole batch at once: flips, shifts, rotations, noise.

x (N, C, H, W) -> x' (N, C, H, W), same dtype. Every random number comes from the generator
passed in; ``fit`` makes one per epoch from (seed, STREAM_AUGMENT, epoch), so a run resumed at an
epoch boundary sees exactly the changes an uninterrupted run would. Training only: validation,
evaluate and predict never see them.

Shifts and rotations move each output pixel's sampling point: for output pixel (i, j), centre
(cy, cx), angle t and shift (dy, dx) the source is
    y = cos t (i - cy) - sin t (j - cx) + cy - dy,   x = sin t (i - cy) + cos t (j - cx) + cx - dx,
read by one gather per corner with per-sample coordinates (nearest for whole-pixel shifts alone,
bilinear when rotating). Points outside the image read ``fill``: the value a black pixel has
after scaling, so the border looks like an empty background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Augmenter:
    """``data.augment`` settings plus the per-channel scaling the images went through.

    fill: (C,) the scaled value of a 0 pixel, -mean / std. scale: (C,) 1 / std, so ``noise``
    (a standard deviation in [0, 1] pixel units) is added in the same units as the data.
    """

    flip_horizontal: bool = False
    flip_vertical: bool = False
    shift: int = 0  # pixels: dy and dx uniform integers in [-shift, shift]
    rotate: float = 0.0  # degrees: uniform in [-rotate, rotate]
    noise: float = 0.0  # standard deviation of Gaussian noise, in [0, 1] pixel units
    fill: tuple[float, ...] = (0.0,)
    scale: tuple[float, ...] = (1.0,)

    @property
    def active(self) -> bool:
        """True when any change is switched on."""
        return bool(
            self.flip_horizontal or self.flip_vertical or self.shift or self.rotate or self.noise
        )

    def __call__(
        self, x: np.ndarray, rng: np.random.Generator, share: slice | None = None, rows: int = 0
    ) -> np.ndarray:
        """A changed copy of the batch x (N, C, H, W), drawing from ``rng`` in a fixed order.

        ``share``: x is only these rows of a batch of ``rows`` (one process's part of it): the
        numbers are drawn for the whole batch and the share's are used, so each row changes as
        it would in one process."""
        x = np.array(x, copy=True)
        n, part = (len(x), slice(None)) if share is None else (rows, share)
        if self.flip_horizontal:
            flip = (rng.random(n) < 0.5)[part]
            x[flip] = x[flip][..., ::-1]
        if self.flip_vertical:
            flip = (rng.random(n) < 0.5)[part]
            x[flip] = x[flip][:, :, ::-1, :]
        if self.shift or self.rotate:
            x = self._warp(x, rng, n, part)
        if self.noise:
            sigma = self.noise * np.asarray(self.scale, dtype=x.dtype)[:, None, None]
            x += rng.standard_normal((n, *x.shape[1:]))[part].astype(x.dtype) * sigma
        return x

    def _warp(self, x: np.ndarray, rng: np.random.Generator, n: int, part: slice) -> np.ndarray:
        _, _, h, w = x.shape
        dy, dx = np.zeros((2, len(x), 1, 1), dtype=np.int64)
        if self.shift:
            dy, dx = rng.integers(-self.shift, self.shift + 1, size=(2, n, 1, 1))[:, part]
        i = np.arange(h, dtype=np.float64)[None, :, None]
        j = np.arange(w, dtype=np.float64)[None, None, :]
        fill = np.asarray(self.fill, dtype=x.dtype)
        pixels = x.transpose(0, 2, 3, 1)  # (N, H, W, C): a gather then yields channels last
        if not self.rotate:  # whole-pixel moves: one exact gather
            return _gather(pixels, i - dy, j - dx, fill).transpose(0, 3, 1, 2).copy()
        t = np.deg2rad(rng.uniform(-self.rotate, self.rotate, size=(n, 1, 1))[part])
        cy, cx = (h - 1) / 2, (w - 1) / 2
        ys = np.cos(t) * (i - cy) - np.sin(t) * (j - cx) + cy - dy
        xs = np.sin(t) * (i - cy) + np.cos(t) * (j - cx) + cx - dx
        y0, x0 = np.floor(ys), np.floor(xs)
        wy, wx = (ys - y0)[..., None].astype(x.dtype), (xs - x0)[..., None].astype(x.dtype)
        out = (
            _gather(pixels, y0, x0, fill) * (1 - wy) * (1 - wx)
            + _gather(pixels, y0, x0 + 1, fill) * (1 - wy) * wx
            + _gather(pixels, y0 + 1, x0, fill) * wy * (1 - wx)
            + _gather(pixels, y0 + 1, x0 + 1, fill) * wy * wx
        )
        return out.transpose(0, 3, 1, 2).astype(x.dtype, copy=True)


def _gather(pixels: np.ndarray, ys: np.ndarray, xs: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """pixels (N, H, W, C) read at per-sample integer points ys, xs (N, H, W) -> (N, H, W, C);
    points outside the image give ``fill`` (C,)."""
    n, h, w, _ = pixels.shape
    ys, xs = np.broadcast_arrays(ys, xs)
    ys, xs = ys.astype(np.int64), xs.astype(np.int64)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    batch = np.arange(n)[:, None, None]
    values = pixels[batch, np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]
    return np.where(inside[..., None], values, fill)
