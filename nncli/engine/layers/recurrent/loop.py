"""The time loop every recurrent layer shares; each kind's step cell is in its own module
(``rnn.py``, ``lstm.py``, ``gru.py``), the reverse direction in ``bidirectional.py``.

h_t = cell(W_ih x_t + b, W_hh h_{t-1}, state_{t-1}); x (N, T, F) -> y (N, units) or (N, T, units).

The base class ``Recurrent`` owns the time loop in both directions: it projects every time step's
input before the loop, runs the cell step by step (only ``W_hh h`` and gate arithmetic inside
the loop), applies the padding mask, and after backpropagation through time forms ``dW_ih`` and
``dW_hh`` with one matmul each. Inside the loop everything is feature-major: a state is (H, N)
and the gates (G*H, N), so each step's slice is contiguous, a gate block is a block of rows, and
BLAS multiplies (G*H, H) @ (H, N) about 1.5x faster than (N, H) @ (H, G*H) for batches of 32.
A kind supplies only its cell's ``step_forward`` / ``step_backward``. Parameter layouts and
gate orders are PyTorch's (ARCHITECTURE.md), so a checkpoint maps 1:1 onto
``nn.RNN/LSTM/GRU(batch_first=True)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.initializers import Orthogonal
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers.dense import bias_sum
from nncli.engine.layers.recurrent.bidirectional import SUFFIX, Reverse
from nncli.errors import ShapeError

State = tuple[Any, ...]


class WorkArrays:
    """Work arrays a layer keeps from batch to batch, by name (zeros when made): allocating
    these few MB afresh costs page faults on every batch."""

    def __init__(self) -> None:
        self.arrays: dict[str, Any] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any, xp: Any) -> Any:
        buffer = self.arrays.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
            buffer = self.arrays[name] = xp.zeros(shape, dtype=dtype)
        return buffer


class Recurrent(Layer):
    """The shared time loop. x (N, T, F) -> (N, H), or (N, T, H) with ``return_sequences``.

    ``self.mask`` (N, T) booleans, True at real steps, set by the network for padded batches:
    a padded step carries the state over unchanged and outputs zeros. The state starts at zero
    for every sequence. T may differ from batch to batch; F may not.
    """

    gates: ClassVar[int] = 1  # gate blocks stacked in weight_ih / weight_hh
    sigmoid_gates: ClassVar[tuple[int, ...]] = ()  # blocks the cell passes through a sigmoid
    states: ClassVar[int] = 1  # arrays in the state: (h,) or (h, c)
    bias_names: ClassVar[tuple[str, ...]] = ("bias",)  # the first is added to W_ih x
    separate_hidden_grad: ClassVar[bool] = False  # dL/d(W_hh h) differs from dL/d(W_ih x + b)

    def __init__(
        self,
        units: int,
        return_sequences: bool = False,
        kernel_initializer: str | dict | None = None,
        recurrent_initializer: str | dict | None = None,
        bidirectional: bool = False,
    ):
        super().__init__(activation=None)
        self.units = checks.positive_int("units", units)
        self.return_sequences = checks.boolean("return_sequences", return_sequences)
        self.bidirectional = checks.boolean("bidirectional", bidirectional)
        self.kernel_initializer = self.initializer("kernel_initializer", kernel_initializer)
        self.recurrent_initializer = self.initializer(
            "recurrent_initializer", recurrent_initializer, Orthogonal()
        )
        self.work = WorkArrays()  # the loop's arrays, kept between batches

    # -- build and shapes --------------------------------------------------------------------
    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        out_shape = self.output_shape(in_shape)  # checks the input is (N, T, F)
        shapes = self.param_shapes(in_shape)
        features = in_shape[1]
        size = self.gates * self.units
        self.params["weight_ih"] = self.kernel_initializer(shapes["weight_ih"], features, size, rng)
        self.params["weight_hh"] = self.recurrent_initializer(
            shapes["weight_hh"], self.units, size, rng
        )
        for name in self.bias_names:
            self.params[name] = np.zeros(size)  # forget gate included, as in PyTorch
        # sigmoid(z) = 0.5 tanh(z / 2) + 0.5: halving the sigmoid blocks' weights once per
        # forward lets the cell take every gate with one tanh, which never overflows
        scale = np.ones(size)
        for block in self.sigmoid_gates:
            scale[block * self.units : (block + 1) * self.units] = 0.5
        self.gate_scale = self.backend.asarray(scale) if self.sigmoid_gates else None
        # the reverse direction's weights are drawn after the forward direction's
        self.reverse = Reverse(self, in_shape, rng) if self.bidirectional else None
        return out_shape

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        size = self.gates * self.units
        shapes = {"weight_ih": (size, in_shape[-1]), "weight_hh": (size, self.units)}
        shapes |= {name: (size,) for name in self.bias_names}
        if self.bidirectional:  # the twin's, under the same names ending in _reverse
            shapes |= {name + SUFFIX: shape for name, shape in shapes.items()}
        return shapes

    def output_shape(self, in_shape: Shape) -> Shape:
        self.require_sequences(in_shape)
        width = self.units * (2 if self.bidirectional else 1)
        return (in_shape[0], width) if self.return_sequences else (width,)

    def check_input(self, x: Any) -> None:
        """Raise ``ShapeError`` unless ``x`` is (N, T, F) with the built F; any T >= 1 is fine."""
        features = self.in_shape[-1]
        if x.ndim != 3 or x.shape[2] != features or x.shape[1] < 1:
            raise ShapeError(f"{self.label} expects (N, T, {features}), got {tuple(x.shape)}")

    def _time_major_mask(self, n: int, steps: int) -> Any:
        """The mask as (T, 1, N) booleans, or None when every step is real."""
        if self.mask is None:
            return None
        if tuple(self.mask.shape) != (n, steps):
            raise ShapeError(
                f"{self.label} expects a padding mask of shape ({n}, {steps}) for its input, "
                f"got {tuple(self.mask.shape)}"
            )
        return self.backend.xp.asarray(self.mask, dtype=bool).T[:, None, :]

    # -- the loop over time ------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        return self._activate(self.run(x) if self.reverse is None else self.reverse.forward(x))

    def run(self, x: Any) -> Any:
        """The forward direction: (N, T, F) -> (N, H) or (N, T, H)."""
        xp = self.backend.xp
        n, steps, features = x.shape
        mask = self._time_major_mask(n, steps)
        p = self.params
        self.x_fm = xp.ascontiguousarray(x.transpose(1, 2, 0))  # (T, F, N)
        w_ih, w_hh = p["weight_ih"], p["weight_hh"]
        b_ih, b_hh = p[self.bias_names[0]], p.get("bias_hh")
        if self.gate_scale is not None:
            s = self.gate_scale
            w_ih, w_hh, b_ih = w_ih * s[:, None], w_hh * s[:, None], b_ih * s
            b_hh = None if b_hh is None else b_hh * s
        gi = xp.matmul(w_ih, self.x_fm)  # (T, G*H, N)
        gi += b_ih[:, None]

        # hs[t] = h before step t; hs[0] is never written, so it stays 0
        hs = self.work.get("hs", (steps + 1, self.units, n), x.dtype, xp)
        # W_hh h of every step, each written in place by its matmul, then the cell's to keep
        hidden = self.work.get("hidden", (steps, w_hh.shape[0], n), x.dtype, xp)
        state: State = tuple(hs[0] for _ in range(self.states))
        self.caches = []
        for t in range(steps):
            gh = xp.matmul(w_hh, state[0], out=hidden[t])
            if b_hh is not None:
                gh += b_hh[:, None]
            # without a mask the cell writes h straight into hs (no copy)
            new, cache = self.step_forward(gi[t], gh, state, hs[t + 1] if mask is None else None)
            if mask is not None:  # padded steps keep the previous state
                new = tuple(xp.where(mask[t], a, b) for a, b in zip(new, state, strict=True))
                hs[t + 1] = new[0]
            state = new
            self.caches.append(cache)
        self.hs, self.time_mask = hs, mask

        # copies (never views, even for N = 1): hs is overwritten by the next batch
        if not self.return_sequences:
            return state[0].T.copy()
        y = hs[1:] if mask is None else hs[1:] * mask
        return y.transpose(2, 0, 1).copy()

    def backward(self, dy: Any) -> Any:
        dy = self._activate_backward(dy)
        return self.run_backward(dy) if self.reverse is None else self.reverse.backward(dy)

    def run_backward(self, dy: Any) -> Any:
        """The forward direction's backpropagation through time: dL/dy -> dL/dx (or None)."""
        xp, p, mask = self.backend.xp, self.params, self.time_mask
        steps, h, n = self.hs.shape[0] - 1, self.units, self.hs.shape[2]
        dgi = self.work.get("dgi", (steps, self.gates * h, n), self.hs.dtype, xp)
        dgh = self.work.get("dgh", dgi.shape, dgi.dtype, xp) if self.separate_hidden_grad else dgi
        w_hh_t = xp.ascontiguousarray(p["weight_hh"].T)  # (H, G*H)

        zeros = xp.zeros((h, n), dtype=dgi.dtype)
        dstate: State = (zeros,) * self.states
        if self.return_sequences:
            dy_t = dy.transpose(1, 2, 0)  # (T, H, N)
        else:
            dstate = (xp.ascontiguousarray(dy.T), *dstate[1:])
        buffers = (xp.empty((h, n), dtype=dgi.dtype), xp.empty((h, n), dtype=dgi.dtype))
        for t in reversed(range(steps)):
            if self.return_sequences:
                dh = dy_t[t] if mask is None else dy_t[t] * mask[t]
                dstate = (dstate[0] + dh, *dstate[1:])
            if mask is not None:  # a padded step passes the gradient straight to the one before
                m = mask[t]
                carried = tuple(xp.where(m, 0, d) for d in dstate)
                dstate = tuple(xp.where(m, d, 0) for d in dstate)
            direct = self.step_backward(dstate, self.caches[t], dgi[t], dgh[t])
            # two buffers in turn: this step's dh_prev must not overwrite the dh just read
            dh_prev = xp.matmul(w_hh_t, dgh[t], out=buffers[t % 2])
            if direct[0] is not None:
                dh_prev += direct[0]
            dstate = (dh_prev, *direct[1:])
            if mask is not None:
                dstate = tuple(a + b for a, b in zip(dstate, carried, strict=True))

        return self.parameter_grads(dgi, dgh)

    def parameter_grads(self, dgi: Any, dgh: Any) -> Any:
        """From every step's dL/d(W_ih x + b) (and dL/d(W_hh h)), (T, G*H, N): fill ``grads``
        and return dL/dx (None when skipped)."""
        xp, p = self.backend.xp, self.params
        steps, h, n = self.hs.shape[0] - 1, self.units, self.hs.shape[2]
        # every (step, sample) as one column: one matmul per weight
        dgi_cols = dgi.transpose(1, 0, 2).reshape(self.gates * h, steps * n)
        dgh_cols = dgh.transpose(1, 0, 2).reshape(dgi_cols.shape) if dgh is not dgi else dgi_cols
        x_rows = self.x_fm.transpose(0, 2, 1).reshape(steps * n, self.x_fm.shape[1])
        h_rows = self.hs[:-1].transpose(0, 2, 1).reshape(steps * n, h)
        xp.matmul(dgi_cols, x_rows, out=self.grads["weight_ih"])
        xp.matmul(dgh_cols, h_rows, out=self.grads["weight_hh"])
        bias_sum(dgi_cols.T, self.grads[self.bias_names[0]], self.backend.name)
        if "bias_hh" in p:
            bias_sum(dgh_cols.T, self.grads["bias_hh"], self.backend.name)
        self.caches = []
        if self.skip_input_grad:
            return None
        dx = xp.matmul(p["weight_ih"].T, dgi)  # (T, F, N)
        return xp.ascontiguousarray(dx.transpose(2, 0, 1))

    # -- what a kind supplies ----------------------------------------------------------------
    def step_forward(self, gi: Any, gh: Any, state: State, out: Any = None) -> tuple[State, Any]:
        """One step: gi = W_ih x_t + b (G*H, N), gh = W_hh h_{t-1} (+ b_hh) (G*H, N), an array
        the cell may overwrite and keep -> (new state, cache for ``step_backward``). The new h
        goes into ``out`` when one is given.

        The blocks listed in ``sigmoid_gates`` arrive halved, so the gate is
        sigmoid(z) = 0.5 tanh(gi + gh) + 0.5.
        """
        raise NotImplementedError

    def step_backward(self, dstate: State, cache: Any, dgi: Any, dgh: Any) -> State:
        """dstate = dL/d(new state) -> fill dgi = dL/d(W_ih x_t + b) and dgh = dL/d(W_hh h_{t-1})
        (G*H, N), with respect to the unhalved sums, in place (one array unless
        ``separate_hidden_grad``); return the gradients that reach the previous state other
        than through W_hh h_{t-1} (None for h when there is none)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["units"] = self.units
        cfg["return_sequences"] = self.return_sequences
        cfg.update({"bidirectional": True} if self.bidirectional else {})  # as before it: absent
        return {**cfg, **self.initializer_config()}
