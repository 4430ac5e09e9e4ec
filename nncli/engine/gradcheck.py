"""Central-difference gradient checks, in float64, for layers, losses and whole networks.

The analytic gradient ``a`` and the numeric one ``n`` agree when the relative error
``|a - n| / (|a| + |n|)`` (Euclidean norms) is small; the tests ask for under 1e-6.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nncli.backend import Backend, get_backend, to_host
from nncli.engine.layer import Layer

EPS = 1e-6


def relative_error(analytic: Any, numeric: Any) -> float:
    a, n = to_host(analytic).ravel(), to_host(numeric).ravel()
    scale = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if scale < 1e-12 else float(np.linalg.norm(a - n) / scale)


def numeric_gradient(
    f: Callable[[], float], array: Any, eps: float = EPS, entries: Any = None
) -> np.ndarray:
    """d f / d array by central differences, perturbing ``array`` in place (one entry at a time);
    with ``entries`` (flat indices) only those, as a 1-D array in their order."""
    flat = array.reshape(-1)  # a view: writes reach ``array``
    picked = range(flat.size) if entries is None else entries
    grad = np.zeros(len(picked))
    for j, i in enumerate(picked):  # a loop over entries is the point of a numerical check
        old = float(flat[i])
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        grad[j] = (up - down) / (2 * eps)
    return grad if entries is not None else grad.reshape(array.shape)


def check_layer(
    layer: Layer,
    in_shape: Any,
    *,
    batch: int = 3,
    seed: int = 0,
    mask: Any = None,
    training: bool = False,
    backend: Backend | None = None,
) -> dict[str, float]:
    """Relative errors of dL/dx and of every dL/dparam for L = sum(forward(x) * r), r random.

    Returns ``{"x": err, "weight": err, ...}``; a merge (``several_inputs``, ``in_shape`` a list
    of shapes) ``{"x0": err, "x1": err, ...}``, one per input. Builds the layer in float64 when
    it is not built. A layer taking integer ids (``integer_input``) gets random ids and must
    return no dL/dx.
    """
    backend = backend or get_backend("cpu", "float64")
    rng = np.random.default_rng(seed)
    if layer.backend is None:
        layer.build(in_shape, backend, rng)
    ids = layer.id_count()
    shapes = layer.in_shape if layer.several_inputs else [layer.in_shape]
    xs = [
        backend.asarray(
            rng.integers(0, ids, size=(batch, *shape)) if ids else rng.normal(size=(batch, *shape))
        )
        for shape in shapes
    ]
    given = xs if layer.several_inputs else xs[0]
    layer.mask = None if mask is None else backend.asarray(mask, dtype=bool)
    r = backend.asarray(rng.normal(size=(batch, *layer.out_shape)))

    def loss() -> float:
        layer.reset_rng()
        return float((layer.forward(given, training) * r).sum())

    loss()
    dx = layer.backward(r)
    if layer.several_inputs:
        errors = {
            f"x{k}": relative_error(d, numeric_gradient(loss, x))
            for k, (x, d) in enumerate(zip(xs, dx, strict=True))
        }
    else:
        x = xs[0]
        errors = {"x": 0.0 if ids and dx is None else relative_error(dx, numeric_gradient(loss, x))}
    analytic = {name: to_host(g).copy() for name, g in layer.grads.items()}
    for name, param in layer.params.items():
        errors[name] = relative_error(analytic[name], numeric_gradient(loss, param))
    return errors


def check_loss(
    loss: Any, y_pred: Any, y_true: Any, *, mask: Any = None, logits: bool = False
) -> float:
    """Relative error of dL/dy_pred (or dL/dlogits when ``logits``) for a loss object."""
    xp = np
    z = xp.array(y_pred, dtype=np.float64)

    def value() -> float:
        if logits:
            from nncli.engine.activations import make_activation

            act = make_activation(loss.fused_activation)
            return float(loss.forward(act.forward(z), y_true, mask=mask, logits=z))
        return float(loss.forward(z, y_true, mask=mask))

    value()
    analytic = loss.backward()
    return relative_error(analytic, numeric_gradient(value, z))
