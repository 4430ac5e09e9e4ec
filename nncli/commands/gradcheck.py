"""``nncli gradcheck``: a spec's whole network in float64 on a few real rows, every parameter's
analytic gradient against central differences (``nncli.engine.gradcheck``).

Each parameter is checked on a seeded sample of its entries (all of them when it is small), so a
large network is checked in seconds: a wrong backward shows in any entry it touches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nncli.backend import to_host
from nncli.engine import feeds
from nncli.engine.gradcheck import numeric_gradient, relative_error
from nncli.spec.resolve import resolve
from nncli.training.loop import loss_value

TOLERANCE = 1e-5
EPS = 1e-6
# Below this difference both gradients are zero up to rounding (a bias in front of batchnorm has
# none: the normalisation removes it); central differences in float64 with EPS = 1e-6 carry
# about 1e-10 of noise per entry, so a relative error between such numbers means nothing.
NOISE = 1e-8


def gradcheck(
    path: Path,
    *,
    data: Path | None = None,
    rows: int = 4,
    entries: int = 16,
    overrides: list[str] = (),
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """``{"rows", "tolerance", "parameters": [{"layer", "type", "parameter", "checked",
    "size", "error", "ok"}, ...]}``: one row per parameter of the network the spec builds."""
    from nncli import spec as spec_module

    extra = ["dtype=float64"] + ([f"data.path={data}"] if data is not None else [])
    spec = spec_module.load(path, [*overrides, *extra])
    ready = resolve(spec, device=device)
    net, ds = ready.net, ready.ds
    train = ds.parts["train"]
    n = min(rows, len(train))
    first = slice(n)
    x, y, mask = feeds.to_device(
        net.backend, feeds.take(train.x, first), train.y[first], feeds.take(train.mask, first)
    )
    fused = net.fuse_output(ready.loss.fused_activation)

    def value() -> float:
        net.set_rng(np.random.default_rng(seed))  # dropout draws the same mask every call
        return float(loss_value(net, ready.loss, net.forward(x, True, mask), y, mask, fused))

    value()
    net.backward(ready.loss.backward())
    grads = {k: to_host(g).astype(np.float64) for k, g in net.named_gradients().items()}
    rng = np.random.default_rng(seed)
    table = [
        _check(name, param, grads[name], value, entries, rng)
        for name, param in net.named_parameters().items()
    ]
    return {"rows": n, "tolerance": TOLERANCE, "parameters": table}


def _check(name: str, param: Any, analytic: np.ndarray, value: Any, entries: int, rng: Any) -> dict:
    """Central differences on up to ``entries`` seeded entries of one parameter."""
    size = int(param.size)
    picked = np.sort(rng.choice(size, size=min(entries, size), replace=False))
    numeric = numeric_gradient(value, param, EPS, entries=picked)
    chosen = analytic.reshape(-1)[picked]
    error = relative_error(chosen, numeric)
    difference = float(np.linalg.norm(chosen - numeric))
    zero = difference <= NOISE and float(np.abs(numeric).max()) <= NOISE
    layer, kind, parameter = name.split(".", 2)
    return {
        "layer": int(layer),
        "type": kind,
        "parameter": parameter,
        "checked": len(picked),
        "size": size,
        "error": error,
        "zero": zero,  # both gradients zero up to rounding: nothing to compare
        "ok": error <= TOLERANCE or zero,
    }
