"""Sliding windows shared by conv2d and the pools: padding, output size, im2col view, col2im.

Per spatial dimension, input size I, window F, stride S, padding P on each side:
    O = 1 + (I + 2P - F) / S, floored when not whole (as PyTorch and Keras do).
``same`` padding takes O = ceil(I / S) and P = ((O - 1) S - I + F) / 2; when the total is odd the
extra row / column goes on the bottom / right (as Keras and TensorFlow do).

Channels first: x (N, C, H, W). The window view of the padded input is (N, C, kh, kw, Oh, Ow):
``view[:, :, i, j]`` holds, for every window, the cell at kernel offset (i, j).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nncli.backend import array_module
from nncli.engine import checks
from nncli.errors import ShapeError, SpecError

PADDINGS = ["valid", "same"]
Pair = tuple[int, int]
_DIMS = (("H", "row"), ("W", "column"))


def padding_arg(value: Any, field: str = "padding") -> str | Pair:
    """``valid``, ``same``, an integer >= 0 or a pair ``[ph, pw]`` of them."""
    if isinstance(value, str):
        return checks.choice(field, value, PADDINGS)
    try:
        return checks.int_pair(field, value, minimum=0)
    except SpecError:
        raise SpecError(
            f"expected valid, same, an integer >= 0 or a pair of them, got {value!r}", field=field
        ) from None


def compact(value: str | Pair) -> str | int | list[int]:
    """A hyperparameter as a spec writes it: ``3`` for (3, 3), ``[2, 3]`` otherwise."""
    if isinstance(value, str):
        return value
    return value[0] if value[0] == value[1] else list(value)


@dataclass(frozen=True)
class Windows:
    """Where the windows of one layer fall on its input; made by :func:`plan` at build time."""

    in_size: Pair
    kernel: Pair
    strides: Pair
    pads: tuple[Pair, Pair]  # (top, bottom), (left, right)
    out_size: Pair
    notes: tuple[str, ...]  # the output-size formula with its numbers, per dimension
    warnings: tuple[str, ...]  # rows / columns the windows never reach

    @property
    def padded(self) -> bool:
        return any(p for side in self.pads for p in side)

    @property
    def overlapping(self) -> bool:
        return any(s < k for s, k in zip(self.strides, self.kernel, strict=True))

    def offsets(self) -> list[Pair]:
        """Kernel offsets (i, j) in row-major order (the order max-pool ties are broken in)."""
        return [(i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1])]

    def padded_shape(self, n: int, c: int) -> tuple[int, int, int, int]:
        (top, bottom), (left, right) = self.pads
        return (n, c, self.in_size[0] + top + bottom, self.in_size[1] + left + right)

    def cells(self, i: int, j: int) -> tuple[slice, ...]:
        """Index of the padded-input cells read at offset (i, j), one per window: (N, C, Oh, Ow)."""
        (sh, sw), (oh, ow) = self.strides, self.out_size
        return (
            slice(None),
            slice(None),
            slice(i, i + sh * (oh - 1) + 1, sh),
            slice(j, j + sw * (ow - 1) + 1, sw),
        )


def plan(
    label: str,
    in_shape: tuple[int, ...],
    kernel: Pair,
    strides: Pair,
    padding: str | Pair,
    kernel_field: str = "kernel_size",
) -> Windows:
    """Padding, output size, notes and warnings for windows over an input (C, H, W).

    Raises ``ShapeError`` for an input that is not an image and ``SpecError`` (naming the layer
    and the input) when the output would be empty.
    """
    if len(in_shape) != 3:
        got = ", ".join(["N", *map(str, in_shape)])
        raise ShapeError(f"{label} expects images (N, C, H, W), got ({got})")
    pads, out_size, notes, warnings = [], [], [], []
    for d, (name, unit) in enumerate(_DIMS):
        size, f, s = in_shape[1 + d], kernel[d], strides[d]
        before, after = _pads(padding, d, size, f, s)
        span = size + before + after - f
        out = 1 + span // s
        note = (
            f"{name}: O = 1 + ({size} + {_pad_text(before, after)} - {f})/{s} = {_value(span, s)}"
        )
        if out < 1:
            raise SpecError(
                f"{label}: input (C, H, W) = {tuple(in_shape)} is too small for a "
                f"{kernel[0]}x{kernel[1]} window, the output would be empty ({note}); use a "
                f"smaller {kernel_field}, more padding or padding: same",
                field=kernel_field,
            )
        if span % s:
            unused = span % s
            warnings.append(
                f"{label}: {name}: {size} + {_pad_text(before, after)} - {f} = {span} is not a "
                f"multiple of stride {s}, so the last {unused} {unit}{'s' * (unused > 1)} of the "
                f"padded input {'are' if unused > 1 else 'is'} never used; padding "
                f"{_fitting_padding(size, f, s, before, after)} would fit exactly"
            )
        pads.append((before, after))
        out_size.append(out)
        notes.append(note)
    return Windows(
        in_size=(in_shape[1], in_shape[2]),
        kernel=kernel,
        strides=strides,
        pads=(pads[0], pads[1]),
        out_size=(out_size[0], out_size[1]),
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


def _pads(padding: str | Pair, d: int, size: int, f: int, s: int) -> Pair:
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s - size + f, 0)
        return total // 2, total - total // 2
    return padding[d], padding[d]


def _pad_text(before: int, after: int) -> str:
    return f"2*{before}" if before == after else f"{before}+{after}"


def _value(span: int, s: int) -> str:
    whole = 1 + span // s
    return str(whole) if span % s == 0 else f"{1 + span / s:.4g}, floored to {whole}"


def _fitting_padding(size: int, f: int, s: int, before: int, after: int) -> str:
    """The symmetric padding nearest the current one that leaves nothing unused, else uneven."""
    current = (before + after) / 2
    fits = [
        p
        for p in range(max(before, after) + s + 1)
        if size + 2 * p >= f and (size + 2 * p - f) % s == 0
    ]
    if fits:
        return str(min(fits, key=lambda p: (abs(p - current), -p)))
    # stride even and I - F odd: only an odd total fits, which needs padding: same
    total = before + after + s - (size + before + after - f) % s
    same_total = (-(-size // s) - 1) * s - size + f
    hint = " (as padding: same gives)" if total == same_total else ""
    return f"{total // 2}+{total - total // 2}{hint}"


# -- arrays --------------------------------------------------------------------------------------
def pad(x: Any, win: Windows, fill: float, buffer: Any = None) -> Any:
    """x (N, C, H, W) -> padded (N, C, Hp, Wp) with ``fill`` on the border.

    Reuses ``buffer`` (a previous result) when it fits: its border already holds ``fill``, so
    only the interior is written. Without padding, ``x`` itself comes back.
    """
    if not win.padded:
        return x
    return _bordered(x, win, win.padded_shape(*x.shape[:2]), fill, buffer)


def _bordered(x: Any, win: Windows, shape: tuple[int, ...], fill: float, buffer: Any) -> Any:
    """x written inside a ``shape`` array bordered with ``fill`` (``buffer`` when it fits)."""
    if (
        buffer is None
        or buffer.shape != shape
        or buffer.dtype != x.dtype
        or type(buffer) is not type(x)
    ):
        buffer = array_module(x).full(shape, fill, dtype=x.dtype)
    (top, _), (left, _) = win.pads
    buffer[:, :, top : top + x.shape[2], left : left + x.shape[3]] = x
    return buffer


def unpad(dx: Any, win: Windows) -> Any:
    """The interior (N, C, H, W) of a padded (N, C, Hp, Wp) array (a view)."""
    if not win.padded:
        return dx
    (top, _), (left, _) = win.pads
    return dx[:, :, top : top + win.in_size[0], left : left + win.in_size[1]]


def window_view(xpad: Any, win: Windows) -> Any:
    """Padded x (N, C, Hp, Wp) -> windows (N, C, kh, kw, Oh, Ow), a strided view (no copy)."""
    n, c = xpad.shape[:2]
    stride_n, stride_c, stride_h, stride_w = xpad.strides
    (kh, kw), (sh, sw), (oh, ow) = win.kernel, win.strides, win.out_size
    return array_module(xpad).lib.stride_tricks.as_strided(
        xpad,
        shape=(n, c, kh, kw, oh, ow),
        strides=(stride_n, stride_c, stride_h, stride_w, stride_h * sh, stride_w * sw),
    )


def add_at(dx: Any, win: Windows, i: int, j: int, values: Any) -> None:
    """dx[cells read at offset (i, j)] += values (N, C, Oh, Ow); a plain write when windows are
    disjoint, as then no two windows share a cell."""
    if win.overlapping:
        dx[win.cells(i, j)] += values
    else:
        dx[win.cells(i, j)] = values


def fold(parts: Any, win: Windows) -> Any:
    """col2im: window gradients (N, C, kh, kw, Oh, Ow) -> dx (N, C, H, W).

    Each window's gradient goes back onto the cells it read (overlaps add up); the gradient that
    lands on the padding is dropped. One pass per kernel offset.
    """
    n, c = parts.shape[:2]
    dx = array_module(parts).zeros(win.padded_shape(n, c), dtype=parts.dtype)
    for i, j in win.offsets():
        add_at(dx, win, i, j, parts[:, :, i, j])
    return unpad(dx, win)


# -- im2col for convolution: one matrix product per batch --------------------------------------
def padded_input(x: Any, win: Windows, buffer: Any = None) -> tuple[Any, int]:
    """x (N, C, H, W) -> (the padded input that :func:`columns` reads, Wx).

    Stride 1 ("shifted rows"): the padded input gets one spare zero row and is read as flat
    rows; offset (i, j) is then the contiguous run starting at i*Wp + j, so each offset is one
    block copy with long inner loops. The price: every output row runs the full padded width
    Wx = Wp (columns q >= Ow are garbage the caller drops). Other strides read the strided
    window view, Wx = Ow (and without padding the input is x itself). ``buffer`` is a previous
    padded input to reuse (its border already holds zeros).
    """
    if win.strides != (1, 1):
        return pad(x, win, 0.0, buffer), win.out_size[1]
    n, c, hp, wp = win.padded_shape(*x.shape[:2])
    return _bordered(x, win, (n, c, hp + 1, wp), 0.0, buffer), wp


def columns(padded: Any, win: Windows, out: Any = None) -> Any:
    """im2col: samples of a :func:`padded_input` (n, C, ., .) -> cols (C*kh*kw, n*Oh*Wx).

    Row (c, i, j) of ``cols`` holds, for every output position (s, p, q), the padded input cell
    at kernel offset (i, j): x_pad[s, c, p*sh + i, q*sw + j]. ``out`` is a previous result whose
    memory may be reused (fresh arrays of several MB cost page faults on every batch).
    """
    n, c = padded.shape[:2]
    (kh, kw), (oh, ow) = win.kernel, win.out_size
    xp = array_module(padded)
    if win.strides == (1, 1):
        wx = padded.shape[3]
        flat = padded.reshape(n, c, padded.shape[2] * wx)
        cols = _reuse(out, (c, kh, kw, n, oh * wx), padded.dtype, xp)
        for i, j in win.offsets():
            start = i * wx + j
            cols[:, i, j] = flat[:, :, start : start + oh * wx].transpose(1, 0, 2)
        return cols.reshape(c * kh * kw, -1)
    cols = _reuse(out, (c, kh, kw, n, oh, ow), padded.dtype, xp)
    cols[...] = window_view(padded, win).transpose(1, 2, 3, 0, 4, 5)
    return cols.reshape(c * kh * kw, -1)


def fold_columns(dcols: Any, win: Windows, n: int, wx: int) -> Any:
    """col2im, the adjoint of :func:`columns`: dcols (C*kh*kw, N*Oh*Wx) -> dx (N, C, H, W).

    Each column goes back onto the cells its window read (overlaps add up), one pass per kernel
    offset in a (C, N, Hp, Wp) buffer, whose interior is copied out as (N, C, H, W); gradient on
    the padding (and, with shifted rows, on the spare row) is dropped.
    """
    (kh, kw), (oh, ow) = win.kernel, win.out_size
    c = dcols.shape[0] // (kh * kw)
    (top, _), (left, _) = win.pads
    h, w = win.in_size
    xp = array_module(dcols)
    _, _, hp, wp = win.padded_shape(n, c)
    if win.strides == (1, 1):
        parts = dcols.reshape(c, kh, kw, n, oh * wx)
        dx = xp.zeros((c, n, (hp + 1) * wp), dtype=dcols.dtype)
        for i, j in win.offsets():
            start = i * wp + j
            dx[:, :, start : start + oh * wp] += parts[:, i, j]
        dx = dx.reshape(c, n, hp + 1, wp)
    else:
        parts = dcols.reshape(c, kh, kw, n, oh, ow)
        dx = xp.zeros((c, n, hp, wp), dtype=dcols.dtype)
        for i, j in win.offsets():
            add_at(dx, win, i, j, parts[:, i, j])
    return xp.ascontiguousarray(dx[:, :, top : top + h, left : left + w].transpose(1, 0, 2, 3))


def _reuse(out: Any, shape: tuple[int, ...], dtype: Any, xp: Any) -> Any:
    """``out`` reshaped to ``shape`` when it holds exactly that many values, else a new array."""
    size = 1
    for d in shape:
        size *= d
    if out is not None and out.size == size and out.dtype == dtype and type(out) is xp.ndarray:
        return out.reshape(shape)
    return xp.empty(shape, dtype=dtype)
