"""The gradient clips an optimizer takes (``optimizers.py``): ``clip_norm``, all gradients
rescaled together when their global norm exceeds it (Keras's ``global_clipnorm``, PyTorch's
``clip_grad_norm_``), or ``clip_value``, each element clamped to [-c, c] (Keras's ``clipvalue``,
PyTorch's ``clip_grad_value_``); at most one of the two, as Keras allows."""

from __future__ import annotations

from typing import Any

from nncli.backend import array_module
from nncli.engine import checks
from nncli.errors import SpecError


def checked(clip_norm: Any, clip_value: Any) -> tuple[float | None, float | None]:
    """(clip_norm, clip_value), each None or a number above 0, not both set."""
    norm, value = (
        None if v is None else checks.number(field, v, 0.0, low_open=True)
        for field, v in (("clip_norm", clip_norm), ("clip_value", clip_value))
    )
    if norm is not None and value is not None:
        raise SpecError(
            "expected one of clip_norm (the global norm) and clip_value (each element), got both",
            field="clip_value",
        )
    return norm, value


def clip_values(flat: tuple[Any, Any] | None, grads: dict[str, Any], c: float) -> tuple:
    """Every gradient element clamped to [-c, c] -> (the flat pair or None, the gradients)."""
    if flat is not None:
        return (flat[0], array_module(flat[1]).clip(flat[1], -c, c)), grads
    return None, {k: array_module(g).clip(g, -c, c) for k, g in grads.items()}
