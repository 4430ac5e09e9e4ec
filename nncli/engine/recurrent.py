"""Recurrent layers: one step cell per kind (rnn, lstm, gru) and one loop over time for all.

h_t = cell(W_ih x_t + b, W_hh h_{t-1}, state_{t-1}); x (N, T, F) -> y (N, units) or (N, T, units).

The base class ``Recurrent`` owns the time loop in both directions: it projects every time step's
input with one matmul before the loop, runs the cell step by step (only ``h @ W_hh^T`` and gate
arithmetic inside the loop), applies the padding mask, and after backpropagation through time
forms ``dW_ih`` and ``dW_hh`` with one matmul each. A kind supplies only its cell's
``step_forward`` / ``step_backward``. Parameter layouts and gate orders are PyTorch's
(ARCHITECTURE.md), so a checkpoint maps 1:1 onto ``nn.RNN/LSTM/GRU(batch_first=True)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.engine import checks
from nncli.engine.initializers import Initializer, make_initializer
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS
from nncli.errors import ShapeError

State = tuple[Any, ...]


class Orthogonal(Initializer):
    """Each (H, H) gate block of W_hh an orthogonal matrix (QR of a Gaussian, signs fixed), so
    repeated multiplication by W_hh neither grows nor shrinks the state at the start."""

    type_name = "orthogonal"

    def __call__(self, shape, fan_in, fan_out, rng):
        rows, cols = shape
        blocks = []
        for _ in range(-(-rows // cols)):  # one square block per gate
            q, r = np.linalg.qr(rng.normal(size=(cols, cols)))
            blocks.append(q * np.sign(np.diag(r)))  # sign fix makes q uniformly distributed
        return np.concatenate(blocks, axis=0)[:rows]


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
    ):
        super().__init__(activation=None)
        self.units = checks.positive_int("units", units)
        self.return_sequences = checks.boolean("return_sequences", return_sequences)
        self.kernel_spec = kernel_initializer
        self.recurrent_spec = recurrent_initializer
        self.kernel_initializer = make_initializer(kernel_initializer, None)
        self.recurrent_initializer = (
            Orthogonal()
            if recurrent_initializer is None
            else make_initializer(recurrent_initializer, None, "recurrent_initializer")
        )

    # -- build and shapes --------------------------------------------------------------------
    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(in_shape) != 2:
            got = ", ".join(["N", *map(str, in_shape)])
            raise ShapeError(f"{self.label} expects sequences (N, T, F), got ({got})")
        steps, features = in_shape
        size = self.gates * self.units
        self.params["weight_ih"] = self.kernel_initializer((size, features), features, size, rng)
        self.params["weight_hh"] = self.recurrent_initializer(
            (size, self.units), self.units, size, rng
        )
        for name in self.bias_names:
            self.params[name] = np.zeros(size)  # forget gate included, as in PyTorch
        # sigmoid(z) = 0.5 tanh(z / 2) + 0.5: halving the sigmoid blocks' weights once per
        # forward lets the cell take every gate with one tanh, which never overflows
        scale = np.ones(size)
        for block in self.sigmoid_gates:
            scale[block * self.units : (block + 1) * self.units] = 0.5
        self.gate_scale = self.backend.asarray(scale) if self.sigmoid_gates else None
        self.gate_shift = self.backend.asarray(np.where(scale == 0.5, 0.5, 0.0))
        return (steps, self.units) if self.return_sequences else (self.units,)

    def check_input(self, x: Any) -> None:
        """Raise ``ShapeError`` unless ``x`` is (N, T, F) with the built F; any T >= 1 is fine."""
        features = self.in_shape[-1]
        if x.ndim != 3 or x.shape[2] != features or x.shape[1] < 1:
            raise ShapeError(f"{self.label} expects (N, T, {features}), got {tuple(x.shape)}")

    def _time_major_mask(self, n: int, steps: int) -> Any:
        """The mask as (T, N, 1) booleans, or None when every step is real."""
        if self.mask is None:
            return None
        if tuple(self.mask.shape) != (n, steps):
            raise ShapeError(
                f"{self.label} expects a padding mask of shape ({n}, {steps}) for its input, "
                f"got {tuple(self.mask.shape)}"
            )
        return self.backend.xp.asarray(self.mask, dtype=bool).T[:, :, None]

    # -- the loop over time ------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        xp = self.backend.xp
        n, steps, features = x.shape
        mask = self._time_major_mask(n, steps)
        p = self.params
        # time-major so that each step's slice is contiguous
        self.x_flat = x.transpose(1, 0, 2).reshape(steps * n, features)
        w_ih_t, w_hh_t = p["weight_ih"].T, p["weight_hh"].T
        b_ih, b_hh = p[self.bias_names[0]], p.get("bias_hh")
        if self.gate_scale is not None:
            s = self.gate_scale
            w_ih_t, w_hh_t, b_ih = w_ih_t * s, w_hh_t * s, b_ih * s
            b_hh = None if b_hh is None else b_hh * s
        # a contiguous W_hh^T: BLAS multiplies by it faster than by a transposed view
        w_hh_t = xp.ascontiguousarray(w_hh_t)
        gi = (self.x_flat @ w_ih_t).reshape(steps, n, -1)
        gi += b_ih

        hs = xp.zeros((steps + 1, n, self.units), dtype=x.dtype)  # hs[t] = h before step t
        state: State = tuple(hs[0] for _ in range(self.states))
        self.caches = []
        for t in range(steps):
            gh = state[0] @ w_hh_t
            if b_hh is not None:
                gh += b_hh
            new, cache = self.step_forward(gi[t], gh, state)
            if mask is not None:  # padded steps keep the previous state
                new = tuple(xp.where(mask[t], a, b) for a, b in zip(new, state, strict=True))
            hs[t + 1] = new[0]
            state = new
            self.caches.append(cache)
        self.hs, self.time_mask = hs, mask

        if not self.return_sequences:
            return self._activate(state[0])
        y = hs[1:] if mask is None else hs[1:] * mask
        return self._activate(xp.ascontiguousarray(y.transpose(1, 0, 2)))

    def backward(self, dy: Any) -> Any:
        dy = self._activate_backward(dy)
        xp, p, mask = self.backend.xp, self.params, self.time_mask
        steps, n, h = self.hs.shape[0] - 1, self.hs.shape[1], self.units
        dgi = xp.empty((steps, n, self.gates * h), dtype=self.hs.dtype)
        dgh = xp.empty_like(dgi) if self.separate_hidden_grad else dgi
        w_hh = p["weight_hh"]

        zeros = xp.zeros((n, h), dtype=dgi.dtype)
        dstate: State = (zeros,) * self.states
        if self.return_sequences:
            dy_t = dy.transpose(1, 0, 2)
        else:
            dstate = (dy, *dstate[1:])
        for t in reversed(range(steps)):
            if self.return_sequences:
                dh = dy_t[t] if mask is None else dy_t[t] * mask[t]
                dstate = (dstate[0] + dh, *dstate[1:])
            if mask is not None:  # a padded step passes the gradient straight to the one before
                m = mask[t]
                carried = tuple(xp.where(m, 0, d) for d in dstate)
                dstate = tuple(xp.where(m, d, 0) for d in dstate)
            direct = self.step_backward(dstate, self.caches[t], dgi[t], dgh[t])
            dh_prev = dgh[t] @ w_hh
            if direct[0] is not None:
                dh_prev += direct[0]
            dstate = (dh_prev, *direct[1:])
            if mask is not None:
                dstate = tuple(a + b for a, b in zip(dstate, carried, strict=True))

        dgi_flat = dgi.reshape(steps * n, -1)
        dgh_flat = dgh.reshape(steps * n, -1)
        self.grads["weight_ih"] = dgi_flat.T @ self.x_flat
        self.grads["weight_hh"] = dgh_flat.T @ self.hs[:-1].reshape(steps * n, h)
        self.grads[self.bias_names[0]] = dgi_flat.sum(axis=0)
        if "bias_hh" in p:
            self.grads["bias_hh"] = dgh_flat.sum(axis=0)
        self.caches = []
        dx = (dgi_flat @ p["weight_ih"]).reshape(steps, n, -1)
        return xp.ascontiguousarray(dx.transpose(1, 0, 2))

    # -- what a kind supplies ----------------------------------------------------------------
    def step_forward(self, gi: Any, gh: Any, state: State) -> tuple[State, Any]:
        """One step: gi = W_ih x_t + b (N, G*H), gh = W_hh h_{t-1} (+ b_hh) (N, G*H), a fresh
        array the cell may overwrite -> (new state, cache for ``step_backward``).

        The blocks listed in ``sigmoid_gates`` arrive halved, so the gate is
        sigmoid(z) = 0.5 tanh(gi + gh) + 0.5.
        """
        raise NotImplementedError

    def step_backward(self, dstate: State, cache: Any, dgi: Any, dgh: Any) -> State:
        """dstate = dL/d(new state) -> fill dgi = dL/d(W_ih x_t + b) and dgh = dL/d(W_hh h_{t-1})
        (N, G*H), with respect to the unhalved sums, in place (one array unless
        ``separate_hidden_grad``); return the gradients that reach the previous state other
        than through W_hh h_{t-1} (None for h when there is none)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["units"] = self.units
        cfg["return_sequences"] = self.return_sequences
        if self.kernel_spec is not None:
            cfg["kernel_initializer"] = self.kernel_initializer.config()
        if self.recurrent_spec is not None:
            cfg["recurrent_initializer"] = self.recurrent_initializer.config()
        return cfg


@LAYERS.register("rnn")
class SimpleRNN(Recurrent):
    """h_t = f(W_ih x_t + W_hh h_{t-1} + b), f = tanh or relu.

    weight_ih (H, F), weight_hh (H, H), bias (H,) = PyTorch's b_ih + b_hh.
    """

    examples: ClassVar = [
        ({"units": 3}, (4, 2)),
        ({"units": 3, "activation": "relu", "return_sequences": True}, (3, 2)),
    ]

    def __init__(
        self,
        units: int,
        return_sequences: bool = False,
        kernel_initializer: str | dict | None = None,
        recurrent_initializer: str | dict | None = None,
        activation: str = "tanh",
    ):
        super().__init__(units, return_sequences, kernel_initializer, recurrent_initializer)
        self.cell_activation = checks.choice("activation", activation, ["tanh", "relu"])

    def step_forward(self, gi, gh, state):
        z = gh
        z += gi
        xp = self.backend.xp
        h = xp.tanh(z, out=z) if self.cell_activation == "tanh" else xp.maximum(z, 0, out=z)
        return (h,), h

    def step_backward(self, dstate, h, dgi, dgh):
        slope = 1 - h * h if self.cell_activation == "tanh" else h > 0
        self.backend.xp.multiply(dstate[0], slope, out=dgi)
        return (None,)

    def config(self):
        cfg = super().config()
        cfg["activation"] = self.cell_activation
        return cfg


@LAYERS.register("lstm")
class LSTM(Recurrent):
    """[i f g o] = [s s tanh s](W_ih x_t + W_hh h + b); c' = f c + i g; h' = o tanh(c').

    s is the sigmoid. weight_ih (4H, F), weight_hh (4H, H), bias (4H,) = PyTorch's b_ih + b_hh,
    gate blocks in the order input, forget, cell, output.
    """

    examples: ClassVar = [({"units": 3}, (4, 2)), ({"units": 2, "return_sequences": True}, (3, 2))]
    gates = 4
    sigmoid_gates = (0, 1, 3)
    states = 2

    def step_forward(self, gi, gh, state):
        xp, h = self.backend.xp, self.units
        c = state[1]
        a = gh
        a += gi
        xp.tanh(a, out=a)  # one tanh for all four gates
        a *= self.gate_scale
        a += self.gate_shift
        i, f, g, o = a[:, :h], a[:, h : 2 * h], a[:, 2 * h : 3 * h], a[:, 3 * h :]
        c_new = f * c
        c_new += i * g
        tanh_c = xp.tanh(c_new)
        return (o * tanh_c, c_new), (a, c, tanh_c)

    def step_backward(self, dstate, cache, dgi, dgh):
        xp, h = self.backend.xp, self.units
        dh, dc = dstate
        a, c, tanh_c = cache
        i, f, g, o = a[:, :h], a[:, h : 2 * h], a[:, 2 * h : 3 * h], a[:, 3 * h :]
        dc = dc + dh * o * (1 - tanh_c * tanh_c)
        xp.multiply(dc, g, out=dgi[:, :h])
        xp.multiply(dc, c, out=dgi[:, h : 2 * h])
        xp.multiply(dc, i, out=dgi[:, 2 * h : 3 * h])
        xp.multiply(dh, tanh_c, out=dgi[:, 3 * h :])
        slope = a * (1 - a)  # sigmoid' = s (1 - s); the cell block is tanh: 1 - g^2
        slope[:, 2 * h : 3 * h] = 1 - g * g
        dgi *= slope
        return (None, dc * f)


@LAYERS.register("gru")
class GRU(Recurrent):
    """[r z] = s(W_i[rz] x + b_i[rz] + W_h[rz] h + b_h[rz]); n = tanh(W_in x + b_in + r (W_hn h +
    b_hn)); h' = (1 - z) n + z h.

    weight_ih (3H, F), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,); gate blocks in the order
    reset, update, new, as in PyTorch.
    """

    examples: ClassVar = [({"units": 3}, (4, 2)), ({"units": 2, "return_sequences": True}, (3, 2))]
    gates = 3
    sigmoid_gates = (0, 1)
    separate_hidden_grad = True  # the new gate's hidden part is scaled by r
    bias_names = ("bias_ih", "bias_hh")

    def step_forward(self, gi, gh, state):
        xp, h = self.backend.xp, self.units
        h_prev = state[0]
        rz = gh[:, : 2 * h]
        rz += gi[:, : 2 * h]
        xp.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z = rz[:, :h], rz[:, h:]
        gh_n = gh[:, 2 * h :]
        n = r * gh_n
        n += gi[:, 2 * h :]
        xp.tanh(n, out=n)
        h_new = h_prev - n
        h_new *= z
        h_new += n
        return (h_new,), (rz, n, gh_n, h_prev)

    def step_backward(self, dstate, cache, dgi, dgh):
        xp, h = self.backend.xp, self.units
        dh = dstate[0]
        rz, n, gh_n, h_prev = cache
        r, z = rz[:, :h], rz[:, h:]
        dn = dgi[:, 2 * h :]
        xp.multiply(dh, 1 - z, out=dn)
        dn *= 1 - n * n
        xp.multiply(dn, gh_n, out=dgi[:, :h])
        xp.multiply(dh, h_prev - n, out=dgi[:, h : 2 * h])
        dgi[:, : 2 * h] *= rz * (1 - rz)
        dgh[:, : 2 * h] = dgi[:, : 2 * h]
        xp.multiply(dn, r, out=dgh[:, 2 * h :])
        return (dh * z,)
