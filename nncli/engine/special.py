"""erf for numpy and CuPy arrays (numpy has none, scipy is not a dependency).

W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969; netlib ``calerf``),
accurate to float64 rounding: erf directly for |x| <= 0.46875, erfc beyond, on the whole array
at once (every branch is computed everywhere and the right one picked, no loop over values).
"""

from __future__ import annotations

from typing import Any

from nncli.backend import array_module

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)  # fmt: skip
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip
_INV_SQRT_PI = 5.6418958354775628695e-1
_THRESHOLD = 0.46875


def _erf_small(x: Any) -> Any:
    """erf(x) for |x| <= 0.46875."""
    sq = x * x
    num, den = _A[4] * sq, sq
    for a, b in zip(_A[:3], _B[:3], strict=True):
        num, den = (num + a) * sq, (den + b) * sq
    return x * (num + _A[3]) / (den + _B[3])


def _erfc_large(y: Any) -> Any:
    """erfc(y) for y > 0.46875 (y >= 0)."""
    xp = array_module(y)
    num, den = _C[8] * y, y
    for c, d in zip(_C[:7], _D[:7], strict=True):
        num, den = (num + c) * y, (den + d) * y
    middle = (num + _C[7]) / (den + _D[7])
    inv_sq = 1.0 / xp.maximum(y * y, 16.0)  # the tail branch is used for y > 4 only
    num, den = _P[5] * inv_sq, inv_sq
    for p, q in zip(_P[:4], _Q[:4], strict=True):
        num, den = (num + p) * inv_sq, (den + q) * inv_sq
    tail = (_INV_SQRT_PI - inv_sq * (num + _P[4]) / (den + _Q[4])) / xp.maximum(y, 4.0)
    # exp(-y^2) as exp(-r^2) exp(-(y - r)(y + r)), r = y rounded down to 1/16: no lost digits
    r = xp.floor(y * 16.0) / 16.0
    scale = xp.exp(-r * r) * xp.exp(-(y - r) * (y + r))
    return xp.where(y <= 4.0, middle, tail) * scale


def erf(x: Any) -> Any:
    """erf(x) elementwise, in the dtype of ``x``."""
    xp = array_module(x)
    y = abs(x)
    small = _erf_small(xp.minimum(y, _THRESHOLD)) * xp.sign(x)
    large = xp.sign(x) * (1.0 - _erfc_large(xp.maximum(y, _THRESHOLD)))
    return xp.where(y <= _THRESHOLD, small, large).astype(x.dtype, copy=False)
