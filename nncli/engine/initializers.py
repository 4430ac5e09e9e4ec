"""Weight initialisers. Weights are drawn on the host (numpy, float64) from the spec's seed and
moved to the device afterwards, so CPU and GPU runs start identical."""

from __future__ import annotations

import numpy as np

from nncli.engine import checks
from nncli.engine.registry import INITIALIZERS

RELU_LIKE = {"relu", "leaky_relu", "elu", "softplus"}


class Initializer:
    type_name = "initializer"

    def __call__(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator
    ) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> str | dict:
        return self.type_name


@INITIALIZERS.register("he_normal")
class HeNormal(Initializer):
    """w ~ N(0, 2 / fan_in)"""

    def __call__(self, shape, fan_in, fan_out, rng):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


@INITIALIZERS.register("he_uniform")
class HeUniform(Initializer):
    """w ~ U(-l, l), l = sqrt(6 / fan_in)"""

    def __call__(self, shape, fan_in, fan_out, rng):
        limit = np.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)


@INITIALIZERS.register("glorot_normal")
class GlorotNormal(Initializer):
    """w ~ N(0, 2 / (fan_in + fan_out))"""

    def __call__(self, shape, fan_in, fan_out, rng):
        return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


@INITIALIZERS.register("glorot_uniform")
class GlorotUniform(Initializer):
    """w ~ U(-l, l), l = sqrt(6 / (fan_in + fan_out))"""

    def __call__(self, shape, fan_in, fan_out, rng):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)


@INITIALIZERS.register("normal")
class Normal(Initializer):
    """w ~ N(0, std^2)"""

    def __init__(self, std: float = 0.05):
        self.std = checks.number("std", std, 0.0)

    def __call__(self, shape, fan_in, fan_out, rng):
        return rng.normal(0.0, self.std, size=shape)

    def config(self):
        return {"type": self.type_name, "std": self.std}


@INITIALIZERS.register("uniform")
class Uniform(Initializer):
    """w ~ U(-limit, limit)"""

    def __init__(self, limit: float = 0.05):
        self.limit = checks.number("limit", limit, 0.0)

    def __call__(self, shape, fan_in, fan_out, rng):
        return rng.uniform(-self.limit, self.limit, size=shape)

    def config(self):
        return {"type": self.type_name, "limit": self.limit}


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    """w = 0"""

    def __call__(self, shape, fan_in, fan_out, rng):
        return np.zeros(shape)


class LinearDefault(Initializer):
    """w ~ U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)): PyTorch's nn.Linear default for its weight
    and bias alike (kaiming_uniform with a = sqrt 5), used inside the transformer layers."""

    type_name = "linear_default"  # not registered: the attention and transformer layers' own

    def __call__(self, shape, fan_in, fan_out, rng):
        limit = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-limit, limit, size=shape)


class Orthogonal(Initializer):
    """Each (H, H) gate block of W_hh an orthogonal matrix (QR of a Gaussian, signs fixed), so
    repeated multiplication by W_hh neither grows nor shrinks the state at the start."""

    type_name = "orthogonal"  # not registered: the recurrent layers' default for W_hh

    def __call__(self, shape, fan_in, fan_out, rng):
        rows, cols = shape
        blocks = []
        for _ in range(-(-rows // cols)):  # one square block per gate
            q, r = np.linalg.qr(rng.normal(size=(cols, cols)))
            blocks.append(q * np.sign(np.diag(r)))  # sign fix makes q uniformly distributed
        return np.concatenate(blocks, axis=0)[:rows]


def make_initializer(
    spec: str | dict | Initializer | None, activation: str | None, field: str = "kernel_initializer"
) -> Initializer:
    """An initialiser from its name or settings; ``None`` picks He for relu-like, else Glorot."""
    if isinstance(spec, Initializer):
        return spec
    if spec is None:
        return HeNormal() if activation in RELU_LIKE else GlorotUniform()
    try:
        if isinstance(spec, dict):
            settings = dict(spec)
            return INITIALIZERS.create(settings.pop("type", None), settings)
        return INITIALIZERS.create(spec)
    except Exception as exc:
        if hasattr(exc, "field"):
            exc.field = f"{field}.{exc.field}" if exc.field and exc.field != "type" else field
        raise
