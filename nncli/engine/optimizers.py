"""Optimizers: update named parameters in place from their gradients.

Every optimizer takes ``learning_rate``, ``weight_decay`` (on every parameter it updates, biases
and normalisation included), ``decoupled_weight_decay`` (False: L2 added to the gradient, as
PyTorch's ``weight_decay``; True: p *= 1 - lr weight_decay before the step, AdamW's rule and
Keras 3's ``weight_decay``) and ``clip_norm`` or ``clip_value`` (``clipping.py``).
State is kept per named parameter (``"0.dense.weight"``) in slots (``m``, ``v``, ...) and can be
exported to host arrays and restored, so a resumed run continues exactly.

Fused updates: when the parameters come as a :class:`FlatParameters` (``Sequential`` hands them
over so: every parameter a view into one 1-D buffer, every gradient a view into another), the
state slots become views into flat buffers too and ``update`` runs once over all parameters,
a dozen whole-array passes per step instead of a dozen per parameter. The per-parameter path is
the same ``update`` on each array, so both give the same numbers. Where it pays, an update runs
as one pass (``optimizer_kernels.py``: Adam in numba on the CPU, every momentum update as a
CUDA kernel on a GPU); the numpy code here is the reference.

Subnormals: a moment whose gradient stays 0 (a dead ReLU unit) decays geometrically and after
about 700 Adam steps reaches float32's subnormal range, where every pass over it gets several
times slower. Every ``FLUSH_EVERY`` steps, state values below ``tiny * 2**24`` are set to 0;
their effect on a parameter is below float rounding, and the flush depends only on the step
count, so a resumed run flushes exactly where a straight one does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nncli.backend import Backend, array_module, to_host
from nncli.engine import checks, clipping, kernels, optimizer_kernels
from nncli.engine.flat import FlatParameters, flat_pair, trainable_part  # noqa: F401
from nncli.engine.registry import OPTIMIZERS
from nncli.errors import SpecError

FLUSH_EVERY = 100  # steps; Adam's m takes 158 steps (0.9^t) from the threshold to subnormal


class Optimizer:
    """Base class: weight decay, global-norm clipping, step count and the state slots."""

    type_name = "optimizer"
    slots: tuple[str, ...] = ()
    update_decays = False  # True: ``update`` multiplies p by ``decay()`` itself (Adam's fused pass)

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        decoupled_weight_decay: bool = False,
    ):
        self.learning_rate = checks.number("learning_rate", learning_rate, 0.0, low_open=True)
        self.weight_decay = checks.number("weight_decay", weight_decay, 0.0)
        self.clip_norm, self.clip_value = clipping.checked(clip_norm, clip_value)
        decoupled = checks.boolean("decoupled_weight_decay", decoupled_weight_decay)
        self.decoupled_weight_decay = decoupled
        self.step_count = 0
        self.state: dict[str, dict[str, Any]] = {}

    def step(self, params: dict[str, Any], grads: dict[str, Any]) -> float | None:
        """One update of every parameter. Returns the gradient norm before clipping (when
        ``clip_norm`` is set; else None). A non-finite norm leaves the parameters untouched."""
        flat = flat_pair(params, grads)
        norm = None
        if self.clip_norm is not None and flat is not None and kernels.on_device(flat[1]):
            norm, flat = self._clip_on_device(flat)
        elif self.clip_norm is not None:
            if flat is not None:
                norm = math.sqrt(float(array_module(flat[1]).dot(flat[1], flat[1])))
            else:
                norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
            if not math.isfinite(norm):
                return norm
            if norm > self.clip_norm:
                scale = self.clip_norm / (norm + 1e-12)
                if flat is not None:
                    flat = (flat[0], flat[1] * scale)
                else:
                    grads = {k: g * scale for k, g in grads.items()}
        if self.clip_value is not None:
            flat, grads = clipping.clip_values(flat, grads, self.clip_value)
        self.step_count += 1
        coupled = self.weight_decay and not self.decoupled_weight_decay
        decay = 1.0 if self.update_decays else self.decay()
        if flat is not None:
            p, g = flat
            if coupled:
                g = g + self.weight_decay * p
            if decay != 1.0:
                p *= decay
            self.update(p, g, self._flat(params))
        else:
            for name, p in params.items():
                g = grads[name]
                if coupled:
                    g = g + self.weight_decay * p
                if decay != 1.0:
                    p *= decay
                if name not in self.state:
                    self.state[name] = {s: array_module(p).zeros_like(p) for s in self.slots}
                self.update(p, g, self.state[name])
        if self.slots and self.step_count % FLUSH_EVERY == 0:
            self._flush_subnormals()
        return norm

    def decay(self) -> float:
        """p *= decay() before the step: 1 - lr weight_decay when decoupled (AdamW's rule)."""
        return 1.0 - self.learning_rate * self.weight_decay if self.decoupled_weight_decay else 1.0

    def _clip_on_device(self, flat: tuple[Any, Any]) -> tuple[Any, tuple[Any, Any]]:
        """The clipping of ``step`` without a host sync: the norm stays a device scalar and
        scales the gradients where it exceeds ``clip_norm``. A non-finite norm is not caught
        here but by the training loop's check at the epoch's end (``training/deferred.py``)."""
        xp, g = array_module(flat[1]), flat[1]
        norm = xp.sqrt(xp.dot(g, g))
        scale = xp.where(norm > self.clip_norm, self.clip_norm / (norm + 1e-12), 1.0)
        return norm, (flat[0], g * scale.astype(g.dtype))

    def _flat(self, params: FlatParameters) -> dict[str, Any]:
        """The state slots as flat buffers whose views are ``self.state[name][slot]``; made
        (from any state already held, e.g. a loaded one) when the views are not in place."""
        names = tuple(params)
        views = getattr(self, "_flat_views", None)
        if (
            views is not None
            and self._flat_names == names
            and all(self.state.get(n, {}).get(s) is v for n, s, v in views)
        ):
            return self._flat_slots
        buffer = params.buffer
        xp = array_module(buffer)
        slots = {s: xp.zeros_like(buffer) for s in self.slots}
        views, offset = [], 0
        for name, p in params.items():
            size = p.size
            old = self.state.get(name, {})
            new = {}
            for s, flat in slots.items():
                view = flat[offset : offset + size].reshape(p.shape)
                if s in old:
                    view[...] = old[s]
                new[s] = view
                views.append((name, s, view))
            self.state[name] = new
            offset += size
        self._flat_slots, self._flat_names, self._flat_views = slots, names, views
        return slots

    def _flush_subnormals(self) -> None:
        """Set state values too small to matter to 0 before they decay into subnormals."""
        arrays = (
            list(self._flat_slots.values())
            if getattr(self, "_flat_views", None) is not None
            and all(self.state.get(n, {}).get(s) is v for n, s, v in self._flat_views)
            else [a for slots in self.state.values() for a in slots.values()]
        )
        for a in arrays:
            if a.dtype.kind == "f":  # copyto, not a[mask] = 0: no host sync on a GPU
                xp = array_module(a)
                xp.copyto(a, 0, where=abs(a) < np.finfo(a.dtype).tiny * 2**24)

    def _scratch(self, p: Any) -> Any:
        """A work array shaped like ``p``, kept between steps (no allocation per step)."""
        cache = self.__dict__.setdefault("_scratch_arrays", {})
        key = (tuple(p.shape), p.dtype, type(p))
        if key not in cache:
            cache[key] = array_module(p).empty_like(p)
        return cache[key]

    def update(self, p: Any, g: Any, state: dict[str, Any]) -> None:
        """Change ``p`` in place from its gradient ``g`` and its state slots."""
        raise NotImplementedError

    def export_state(self) -> dict[str, dict[str, Any]]:
        return {
            name: {s: to_host(a) for s, a in slots.items()} for name, slots in self.state.items()
        }

    def load_state(self, state: dict[str, dict[str, Any]], step: int, backend: Backend) -> None:
        self.state = {n: {s: backend.asarray(a) for s, a in sl.items()} for n, sl in state.items()}
        self.step_count = int(step)
        self._flat_views = None

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"type": self.type_name, "learning_rate": self.learning_rate}
        cfg.update(self.extra_config())
        cfg["weight_decay"] = self.weight_decay
        cfg["decoupled_weight_decay"] = self.decoupled_weight_decay
        cfg["clip_norm"] = self.clip_norm
        cfg["clip_value"] = self.clip_value
        return cfg

    def extra_config(self) -> dict[str, Any]:
        return {}


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """b = momentum b + g;  p -= lr (g + momentum b) if nesterov else lr b  (PyTorch's SGD)"""

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        decoupled_weight_decay: bool = False,
    ):
        super().__init__(learning_rate, weight_decay, clip_norm, clip_value, decoupled_weight_decay)
        self.momentum = checks.number("momentum", momentum, 0.0, 1.0, high_open=True)
        self.nesterov = checks.boolean("nesterov", nesterov)
        self.slots = ("momentum",) if self.momentum else ()

    def update(self, p, g, state):
        if not self.momentum:
            p -= self.learning_rate * g
            return
        b, first = state["momentum"], self.step_count == 1
        if kernels.on_device(p):  # one kernel on a GPU (optimizer_kernels.py)
            optimizer_kernels.sgd_momentum_on_device(
                p, g, b, self.momentum, self.learning_rate, first, self.nesterov
            )
            return
        if first:
            b[...] = g
        else:
            b *= self.momentum
            b += g
        p -= self.learning_rate * (g + self.momentum * b if self.nesterov else b)

    def extra_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr m^ / (sqrt(v^) + eps), with
    m^ = m / (1 - b1^t), v^ = v / (1 - b2^t)  (PyTorch's Adam)"""

    slots = ("m", "v")
    update_decays = True  # its fused pass multiplies p by ``decay()`` (AdamW's rule)

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        decoupled_weight_decay: bool = False,
    ):
        super().__init__(learning_rate, weight_decay, clip_norm, clip_value, decoupled_weight_decay)
        self.beta1 = checks.number("beta1", beta1, 0.0, 1.0, high_open=True)
        self.beta2 = checks.number("beta2", beta2, 0.0, 1.0, high_open=True)
        self.epsilon = checks.number("epsilon", epsilon, 0.0, low_open=True)

    def update(self, p, g, state):
        # 12 whole-array passes, in place, through one scratch array (PyTorch's order of
        # operations up to float rounding): m += (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
        # p -= m / ((sqrt(v) + eps sqrt(c2)) / (lr sqrt(c2) / c1)), c_i = 1 - b_i^t
        m, v, t, decay = state["m"], state["v"], self.step_count, self.decay()
        lr, eps = self.learning_rate, self.epsilon
        if kernels.usable(p, g, m, v):  # the same arithmetic in one fused pass (numba)
            optimizer_kernels.adam_numba(p, g, m, v, self.beta1, self.beta2, lr, eps, t, decay)
            return
        if kernels.on_device(p):  # one kernel on a GPU (optimizer_kernels.py)
            optimizer_kernels.adam_on_device(p, g, m, v, self.beta1, self.beta2, lr, eps, t, decay)
            return
        xp, tmp = array_module(p), self._scratch(p)
        if decay != 1.0:
            p *= decay
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta1
        m += tmp
        v *= self.beta2
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - self.beta2
        v += tmp
        root = math.sqrt(1 - self.beta2**t)
        step = self.learning_rate / (1 - self.beta1**t)
        xp.sqrt(v, out=tmp)
        tmp += self.epsilon * root
        tmp *= 1 / (step * root)
        xp.divide(m, tmp, out=tmp)
        p -= tmp

    def extra_config(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """p *= 1 - lr weight_decay, then Adam's step on the plain gradient (PyTorch's AdamW:
    the decay is decoupled from the moments): adam with ``decoupled_weight_decay: true``, and
    a default weight_decay of 0.01."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.01,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        decoupled_weight_decay: bool = True,
    ):
        if decoupled_weight_decay is False:
            message = "expected true (adamw's decay is decoupled; adam adds L2 to the gradient)"
            raise SpecError(f"{message}, got false", field="decoupled_weight_decay")
        super().__init__(
            learning_rate, beta1, beta2, epsilon, weight_decay, clip_norm, clip_value, True
        )


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """v = rho v + (1 - rho) g^2;  p -= lr g / (sqrt(v) + eps)  (PyTorch's RMSprop, alpha = rho)"""

    slots = ("v",)

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        decoupled_weight_decay: bool = False,
    ):
        super().__init__(learning_rate, weight_decay, clip_norm, clip_value, decoupled_weight_decay)
        self.rho = checks.number("rho", rho, 0.0, 1.0, high_open=True)
        self.epsilon = checks.number("epsilon", epsilon, 0.0, low_open=True)

    def update(self, p, g, state):
        v = state["v"]
        if kernels.on_device(p):  # one kernel on a GPU (optimizer_kernels.py)
            optimizer_kernels.rmsprop_on_device(p, g, v, self.rho, self.learning_rate, self.epsilon)
            return
        v *= self.rho
        v += (1 - self.rho) * (g * g)
        p -= self.learning_rate * g / (v**0.5 + self.epsilon)

    def extra_config(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    """s += g^2;  p -= lr g / (sqrt(s) + eps)  (PyTorch's Adagrad)"""

    slots = ("sum",)

    def __init__(
        self,
        learning_rate: float = 0.01,
        epsilon: float = 1e-10,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        decoupled_weight_decay: bool = False,
    ):
        super().__init__(learning_rate, weight_decay, clip_norm, clip_value, decoupled_weight_decay)
        self.epsilon = checks.number("epsilon", epsilon, 0.0, low_open=True)

    def update(self, p, g, state):
        s = state["sum"]
        s += g * g
        p -= self.learning_rate * g / (s**0.5 + self.epsilon)

    def extra_config(self):
        return {"epsilon": self.epsilon}
