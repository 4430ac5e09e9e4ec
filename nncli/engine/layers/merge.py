"""The merges: layers that join the outputs of two or more layers (``inputs: [a, b, ...]``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError, SpecError


def shown(shape: Shape) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


class Merge(Layer):
    """Outputs of one shape in, one out: the shape checks every merge shares."""

    several_inputs = True
    any_steps = True  # sequences of a batch may be shorter than the longest the build saw

    def __init__(self) -> None:
        super().__init__(None)

    def named(self, k: int) -> str:
        return self.input_labels[k] if k < len(self.input_labels) else f"input {k + 1}"

    def mismatch(self, shapes: list[Shape], expected: str) -> SpecError:
        listed = [f"{self.named(k)} {shown(s)}" for k, s in enumerate(shapes)]
        listed = ", ".join(listed[:-1]) + " and " + listed[-1]
        return SpecError(
            f"{self.label} joins outputs {expected}, got {listed}", field=f"{self.place}.inputs"
        )

    def _build(self, in_shape: Any, rng: np.random.Generator) -> Shape:
        return self.output_shape(in_shape)

    def output_shape(self, in_shape: Any) -> Shape:
        shapes = [tuple(int(d) for d in shape) for shape in in_shape]
        if len(shapes) < 2:
            raise SpecError(f"{self.label} joins two or more outputs, got {len(shapes)}")
        if any(s != shapes[0] for s in shapes):
            raise self.mismatch(shapes, "of one shape")
        return shapes[0]

    def check_inputs(self, xs: list[Any], same: bool = True) -> None:
        """ShapeError unless each input is of its built shape (on a sequence, its steps may be
        fewer) and, when ``same``, all of one shape."""
        if len(xs) != len(self.in_shape):
            raise ShapeError(f"{self.label} expects {len(self.in_shape)} inputs, got {len(xs)}")
        for x, shape in zip(xs, self.in_shape, strict=True):
            self.check_input(x, shape)
        if same and any(tuple(x.shape) != tuple(xs[0].shape) for x in xs[1:]):
            got = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ShapeError(f"{self.label} expects inputs of one shape, got {got}")


@LAYERS.register("add")
class Add(Merge):
    """y = x_1 + x_2 + ...; dL/dx_k = dy. Inputs (N, ...) of one shape -> (N, ...)."""

    examples: ClassVar = [({}, [(4,), (4,)]), ({}, [(2, 3), (2, 3), (2, 3)])]

    def forward(self, xs: list[Any], training: bool = False) -> Any:
        self.check_inputs(xs)
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x  # y is this layer's own array
        self.count = len(xs)
        return y

    def backward(self, dy: Any) -> list[Any]:
        return [dy] * self.count  # no layer changes the gradient it is given in place


@LAYERS.register("multiply")
class Multiply(Merge):
    """y = x_1 * x_2 * ... elementwise; dL/dx_k = dy * (the product of the others).
    Inputs (N, ...) of one shape -> (N, ...)."""

    examples: ClassVar = [({}, [(4,), (4,)]), ({}, [(3, 2), (3, 2), (3, 2)])]

    def forward(self, xs: list[Any], training: bool = False) -> Any:
        self.check_inputs(xs)
        self.xs = xs
        y = xs[0] * xs[1]
        for x in xs[2:]:
            y *= x
        return y

    def backward(self, dy: Any) -> list[Any]:
        """The product of the others by a pass from each end (no division by a zero input)."""
        before = [dy]
        for x in self.xs[:-1]:
            before.append(before[-1] * x)
        dxs, after = [], None
        for k in range(len(self.xs) - 1, -1, -1):
            dxs.append(before[k] if after is None else before[k] * after)
            after = self.xs[k] if after is None else after * self.xs[k]
        return dxs[::-1]


@LAYERS.register("concat")
class Concat(Merge):
    """y = [x_1, x_2, ...] along ``axis``; dL/dx_k = dy's slice of x_k. Inputs of one shape but
    on the axis -> the sum of their sizes there. Axes count the batch as 0, as in Keras and
    PyTorch: -1 (the default) the last, 1 an image's channels (N, C, H, W)."""

    examples: ClassVar = [({}, [(3,), (2,)]), ({"axis": 1}, [(2, 3, 3), (1, 3, 3), (2, 3, 3)])]

    def __init__(self, axis: int = -1):
        super().__init__()
        if not checks.is_int(axis) or axis == 0:
            message = "an integer other than 0 (the batch's axis)"
            raise SpecError(f"expected {message}, got {axis!r}", field="axis")
        self.axis = int(axis)

    def sample_axis(self, rank: int) -> int:
        """The axis within one sample's shape of ``rank`` axes (the batch left out)."""
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise SpecError(
                f"{self.label} joins outputs of {rank} axes after the batch's: expected an axis "
                f"1 to {rank} or -{rank} to -1, got {self.axis}",
                field=f"{self.place}.axis",
            )
        return axis

    def output_shape(self, in_shape: Any) -> Shape:
        shapes = [tuple(int(d) for d in shape) for shape in in_shape]
        if len(shapes) < 2:
            raise SpecError(f"{self.label} joins two or more outputs, got {len(shapes)}")
        if len({len(s) for s in shapes}) > 1:
            raise self.mismatch(shapes, "with one number of axes")
        axis = self.sample_axis(len(shapes[0]))
        rest = [s[:axis] + s[axis + 1 :] for s in shapes]
        if any(r != rest[0] for r in rest):
            raise self.mismatch(shapes, f"of one shape but on axis {self.axis}")
        return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1 :])

    def forward(self, xs: list[Any], training: bool = False) -> Any:
        self.check_inputs(xs, same=False)
        axis = self.sample_axis(len(self.in_shape[0])) + 1
        self.cuts = np.cumsum([x.shape[axis] for x in xs])[:-1].tolist()
        self.at = axis
        return self.backend.xp.concatenate(xs, axis=axis)

    def backward(self, dy: Any) -> list[Any]:
        return self.backend.xp.split(dy, self.cuts, axis=self.at)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "axis": self.axis}
