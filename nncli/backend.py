"""Where arrays live: numpy on the CPU, CuPy on the GPU, behind one ``xp``.

This is the only module that imports cupy, and it does so lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nncli.errors import BackendError

DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class Backend:
    """An array module (``xp``) and the float dtype every parameter and activation uses."""

    name: str
    xp: Any
    dtype: Any = np.float32

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Host or device array -> array on this backend, in ``dtype`` (default: the float one)."""
        return self.xp.asarray(x, dtype=self.dtype if dtype is None else dtype)

    def to_host(self, x: Any) -> np.ndarray:
        return to_host(x)

    def add_at(self, target: Any, index: Any, values: Any) -> None:
        """target[index] += values where repeated indices add up (plain indexing keeps one)."""
        if self.name == "cpu":
            np.add.at(target, index, values)
            return
        import cupyx  # noqa: PLC0415 - only on the GPU, beside cupy itself

        cupyx.scatter_add(target, index, values)


def _cupy() -> Any:
    try:
        import cupy  # noqa: PLC0415 - optional, imported only when a GPU is asked for

        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # ImportError, or a CUDA runtime error without a device
        raise BackendError(
            f"device 'gpu' needs CuPy and a CUDA GPU ({type(exc).__name__}: {exc}); "
            "install with: pip install 'nncli[gpu]', or use device: cpu"
        ) from None
    return cupy


def gpu_available() -> bool:
    try:
        _cupy()
    except BackendError:
        return False
    return True


def choose_device() -> tuple[str, str]:
    """What ``device: auto`` picks, and why: ``("cpu", "CuPy not installed")``."""
    try:
        import cupy  # noqa: PLC0415 - optional
    except ImportError:
        return "cpu", "CuPy not installed"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # a CUDA runtime error without a driver or a device
        return "cpu", f"no CUDA GPU ({type(exc).__name__})"
    if count == 0:
        return "cpu", "no CUDA GPU"
    return "gpu", f"CuPy found {count} CUDA GPU{'s' if count > 1 else ''}"


def get_backend(device: str = "cpu", dtype: str = "float32") -> Backend:
    """``cpu`` | ``gpu`` | ``auto`` (the GPU when CuPy finds one) and ``float32`` | ``float64``."""
    if dtype not in DTYPES:
        raise BackendError(f"dtype: expected one of float32, float64, got {dtype!r}")
    if device == "cpu":
        return Backend("cpu", np, DTYPES[dtype])
    if device == "gpu":
        return Backend("gpu", _cupy(), DTYPES[dtype])
    if device == "auto":
        return get_backend(choose_device()[0], dtype)
    raise BackendError(f"device: expected one of cpu, gpu, auto, got {device!r}")


def array_module(x: Any) -> Any:
    """numpy or cupy, whichever owns ``x`` (for helpers with no backend at hand)."""
    xp = type(x).__module__.split(".")[0]
    if xp == "cupy":
        return _cupy()
    return np


def to_host(x: Any) -> np.ndarray:
    """Any array -> numpy array (copies from the device when needed)."""
    if hasattr(x, "get") and type(x).__module__.split(".")[0] == "cupy":
        return x.get()
    return np.asarray(x)
