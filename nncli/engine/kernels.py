"""How an operation's fused kernels run: its numba loops on the CPU, its CUDA source on a GPU.

The kernels themselves sit beside the numpy code they stand in for, in the operation's own module
(``layers/normalization.py``, ``layers/layernorm.py``, ``layers/pool2d.py``,
``layers/conv1d.py``, ``layers/conv2d.py``, ``layers/global_pool.py``, ``layers/attention.py``,
``layers/recurrent/lstm.py``, ``layers/recurrent/lstm_fused.py``, ``layers/recurrent/gru.py``,
``optimizer_kernels.py``); this module only loads and dispatches them, and knows no operation.

CPU: one pass instead of a dozen matters where the arrays are small enough that every numpy
call's fixed cost shows (an LSTM step: 32 x 512 gates) or where the pass count is the whole
cost (Adam: 12 passes over every parameter). An operation writes its loops for ``numba.njit``
in a function that is handed the decorators (``loops(jit, inline) -> {name: loop}``), so nothing
but this module imports numba; ``compiled(loops)`` compiles them (cached on disk after the
first time) when they are first used. numba is a default dependency where it has wheels
(environment markers in pyproject.toml) and absent elsewhere, so nncli never requires it; the
numpy code stays the reference (and the only path without numba, for small arrays, or with
``NNCLI_KERNELS=numpy``), and the tests compare the two.

GPU: an operation declares each kernel's CUDA source once (``cuda(name, ...)``, collected in
``CUDA``); ``gpu_kernel(x, name)`` gives the ``cupy.ElementwiseKernel`` that
``backend.elementwise`` builds from it on a real GPU, and None on the strict stand-in
(``NNCLI_FAKE_GPU``), where the operation runs its numpy reference on the device arrays.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from nncli.backend import elementwise, on_real_gpu

MIN_SIZE = 4096  # elements; below this numpy's few calls cost less than a kernel call would
_kernels: Any = None  # None: not loaded yet; False: unavailable; else the numba decorators
_compiled: dict[Callable[..., Any], dict[str, Any]] = {}

# name -> (in_params, out_params, CUDA operation), declared by each operation's module
CUDA: dict[str, tuple[str, str, str]] = {}


class Decorators(NamedTuple):
    """What an operation's loops are written for: ``jit`` compiles a loop (cached on disk),
    ``inline`` a helper that the loops calling it inline."""

    jit: Any
    inline: Any


# -- the CPU: numba ------------------------------------------------------------------------------
def _load() -> Any:
    global _kernels
    if _kernels is None:
        _kernels = False
        if os.environ.get("NNCLI_KERNELS", "").lower() != "numpy":
            with contextlib.suppress(ImportError):  # numba is optional
                _kernels = _decorators()
    return _kernels


def _decorators() -> Decorators:
    import numba  # noqa: PLC0415 - optional

    return Decorators(
        jit=numba.njit(cache=True, error_model="numpy", nogil=True),
        inline=numba.njit(inline="always", error_model="numpy"),
    )


def active() -> str:
    """``numba <version>`` when the fused kernels would run here, else ``numpy``. Imports
    nothing (numba costs ~60 MB of memory, paid only when a kernel is first used)."""
    if _kernels is False or os.environ.get("NNCLI_KERNELS", "").lower() == "numpy":
        return "numpy"
    try:
        return f"numba {importlib.metadata.version('numba')}"
    except importlib.metadata.PackageNotFoundError:
        return "numpy"


def available() -> bool:
    """True when the numba kernels run here (loads numba the first time): for a choice that
    depends on them but not on one array's size (conv2d's chunks)."""
    return bool(_load())


def usable(*arrays: Any) -> bool:
    """True when numba is there and every array is a C-contiguous numpy float array of one
    dtype, the first with at least ``MIN_SIZE`` elements."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.size < MIN_SIZE or first.dtype.kind != "f":
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != first.dtype or not a.flags.c_contiguous:
            return False
    return bool(_load())


def compiled(loops: Callable[[Any, Any], dict[str, Any]]) -> dict[str, Any]:
    """An operation's numba loops, ``loops(jit, inline)``, made once (call after ``usable``)."""
    made = _compiled.get(loops)
    if made is None:
        decorators = _load()
        made = _compiled[loops] = loops(decorators.jit, decorators.inline)
    return made


# -- the GPU: CUDA elementwise kernels -----------------------------------------------------------
def cuda(name: str, in_params: str, out_params: str, operation: str) -> str:
    """Declare the kernel ``name`` (outputs are read before they are written where they hold
    the step's input); returns the name."""
    CUDA[name] = (in_params, out_params, operation)
    return name


def on_device(x: Any) -> bool:
    """True for a GPU array (CuPy's or the stand-in's): the fused path; numpy keeps its own."""
    return not isinstance(x, (np.ndarray, np.generic))


def gpu_kernel(x: Any, name: str) -> Any:
    """The compiled kernel ``name`` on a real GPU, else None (the numpy reference runs)."""
    return elementwise(name, *CUDA[name]) if on_real_gpu(x) else None
