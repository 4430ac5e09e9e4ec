"""Optimizers: update named parameters in place from their gradients.

Every optimizer takes ``learning_rate``, ``weight_decay`` (L2, added to the gradient as PyTorch
does) and ``clip_norm`` (rescale all gradients together when their global norm exceeds it).
State is kept per named parameter (``"0.dense.weight"``) in slots (``m``, ``v``, ...) and can be
exported to host arrays and restored, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from typing import Any

from nncli.backend import Backend, array_module, to_host
from nncli.engine import checks
from nncli.engine.registry import OPTIMIZERS


class Optimizer:
    """Base class: weight decay, global-norm clipping, step count and the state slots."""

    type_name = "optimizer"
    slots: tuple[str, ...] = ()

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ):
        self.learning_rate = checks.number("learning_rate", learning_rate, 0.0, low_open=True)
        self.weight_decay = checks.number("weight_decay", weight_decay, 0.0)
        self.clip_norm = (
            None if clip_norm is None else checks.number("clip_norm", clip_norm, 0.0, low_open=True)
        )
        self.step_count = 0
        self.state: dict[str, dict[str, Any]] = {}

    def step(self, params: dict[str, Any], grads: dict[str, Any]) -> float | None:
        """One update of every parameter. Returns the gradient norm before clipping (when
        ``clip_norm`` is set; else None). A non-finite norm leaves the parameters untouched."""
        norm = None
        if self.clip_norm is not None:
            norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
            if not math.isfinite(norm):
                return norm
            if norm > self.clip_norm:
                scale = self.clip_norm / (norm + 1e-12)
                grads = {k: g * scale for k, g in grads.items()}
        self.step_count += 1
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if name not in self.state:
                self.state[name] = {s: array_module(p).zeros_like(p) for s in self.slots}
            self.update(p, g, self.state[name])
        return norm

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

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"type": self.type_name, "learning_rate": self.learning_rate}
        cfg.update(self.extra_config())
        cfg["weight_decay"] = self.weight_decay
        cfg["clip_norm"] = self.clip_norm
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
    ):
        super().__init__(learning_rate, weight_decay, clip_norm)
        self.momentum = checks.number("momentum", momentum, 0.0, 1.0, high_open=True)
        self.nesterov = checks.boolean("nesterov", nesterov)
        self.slots = ("momentum",) if self.momentum else ()

    def update(self, p, g, state):
        if not self.momentum:
            p -= self.learning_rate * g
            return
        b = state["momentum"]
        if self.step_count == 1:
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

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ):
        super().__init__(learning_rate, weight_decay, clip_norm)
        self.beta1 = checks.number("beta1", beta1, 0.0, 1.0, high_open=True)
        self.beta2 = checks.number("beta2", beta2, 0.0, 1.0, high_open=True)
        self.epsilon = checks.number("epsilon", epsilon, 0.0, low_open=True)

    def update(self, p, g, state):
        m, v, t = state["m"], state["v"], self.step_count
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        step = self.learning_rate / (1 - self.beta1**t)
        denom = (v / (1 - self.beta2**t)) ** 0.5
        denom += self.epsilon
        p -= step * (m / denom)

    def extra_config(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}


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
    ):
        super().__init__(learning_rate, weight_decay, clip_norm)
        self.rho = checks.number("rho", rho, 0.0, 1.0, high_open=True)
        self.epsilon = checks.number("epsilon", epsilon, 0.0, low_open=True)

    def update(self, p, g, state):
        v = state["v"]
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
    ):
        super().__init__(learning_rate, weight_decay, clip_norm)
        self.epsilon = checks.number("epsilon", epsilon, 0.0, low_open=True)

    def update(self, p, g, state):
        s = state["sum"]
        s += g * g
        p -= self.learning_rate * g / (s**0.5 + self.epsilon)

    def extra_config(self):
        return {"epsilon": self.epsilon}
