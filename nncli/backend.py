"""Where arrays live: numpy on the CPU, CuPy on the GPU, behind one ``xp``.

This is the only module that imports cupy, and it does so lazily. With ``NNCLI_FAKE_GPU=1``,
``device: gpu`` runs on the strict stand-in of ``nncli.testing.fakegpu`` instead (CI has no GPU).

Data crosses between host and device only here: ``Backend.asarray`` / ``to_device`` (host ->
device) and ``to_host`` (device -> host). ``elementwise`` builds the fused CuPy kernels the
engine asks for (``nncli.engine.kernels``), only on a real GPU.
"""

from __future__ import annotations

import ctypes
import difflib
import os
import platform
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from nncli.errors import BackendError
from nncli.testing import fakegpu

DTYPES = {"float32": np.float32, "float64": np.float64}
DEVICES = ("cpu", "gpu", "gpu:N", "cuda:N", "auto")
FAKE_GPU_ENV = "NNCLI_FAKE_GPU"
INSTALL = 'pip install -e ".[gpu]"'
_DEVICE = re.compile(r"^(cpu|gpu|auto|(?:gpu|cuda):(\d+))$")


@dataclass(frozen=True)
class Backend:
    """An array module (``xp``) and the float dtype every parameter and activation uses.

    ``name`` is ``cpu`` or ``gpu``; ``index`` the GPU's number; ``stand_in`` says the GPU is
    the strict numpy stand-in (``NNCLI_FAKE_GPU``)."""

    name: str
    xp: Any
    dtype: Any = np.float32
    index: int = 0
    stand_in: bool = False

    @property
    def label(self) -> str:
        """What a run's first line says: ``cpu``, ``gpu``, ``gpu:1``, ``gpu (strict stand-in,
        NNCLI_FAKE_GPU)``."""
        if self.name == "cpu":
            return "cpu"
        where = "gpu" if self.index == 0 else f"gpu:{self.index}"
        return f"{where} (strict stand-in, {FAKE_GPU_ENV})" if self.stand_in else where

    @property
    def device(self) -> str:
        """The ``--device`` value that opens this backend again: ``cpu`` or ``gpu:N``."""
        return "cpu" if self.name == "cpu" else f"gpu:{self.index}"

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Host or device array -> array on this backend, in ``dtype`` (default: the float one)."""
        dtype = self.dtype if dtype is None else dtype
        if self.stand_in and not isinstance(x, fakegpu.DeviceArray):
            return fakegpu.to_device([(x, dtype)])[0]
        return self.xp.asarray(x, dtype=dtype)

    def to_device(self, *arrays: Any, dtypes: tuple = ()) -> tuple[Any, ...]:
        """Host arrays (None kept) -> device arrays in one transfer: a batch's x, y and mask.
        ``dtypes[i]`` None or missing: the float dtype."""
        kinds = [*dtypes, *[None] * (len(arrays) - len(dtypes))]
        kinds = [self.dtype if k is None else k for k in kinds]
        pairs = [(a, k) for a, k in zip(arrays, kinds, strict=True) if a is not None]
        if self.stand_in:
            moved = iter(fakegpu.to_device(pairs))
        else:
            moved = iter([self.xp.asarray(a, dtype=k) for a, k in pairs])
        return tuple(None if a is None else next(moved) for a in arrays)

    def prefetched(self, items: Iterable[tuple[Any, tuple]], dtypes: tuple = ()) -> Iterator:
        """(tag, host arrays) items -> (tag, device arrays), the next item's copy started before
        the current one is handed out: on a GPU from pinned memory on a copy stream of its own,
        so it overlaps the current batch's compute (the compute stream waits for it only when it
        uses it). The CPU and the stand-in copy in order, one transfer an item as ``to_device``."""
        pending = None
        for tag, host in items:
            started = (tag, self._start_copy(host, dtypes))
            if pending is not None:
                yield pending[0], self._finish_copy(pending[1])
            pending = started
        if pending is not None:
            yield pending[0], self._finish_copy(pending[1])

    def _start_copy(self, host: tuple, dtypes: tuple) -> Any:
        if self.name == "cpu" or self.stand_in:
            return self.to_device(*host, dtypes=dtypes)
        return _pinned_copy(self.xp, host, [*dtypes, *[None] * len(host)], self.dtype)

    def _finish_copy(self, started: Any) -> tuple[Any, ...]:
        if self.name == "cpu" or self.stand_in:
            return started
        arrays, _pinned, done = started  # the pinned buffers live until the copy is waited for
        self.xp.cuda.get_current_stream().wait_event(done)
        return arrays

    def to_host(self, x: Any) -> np.ndarray:
        return to_host(x)

    def add_at(self, target: Any, index: Any, values: Any) -> None:
        """target[index] += values where repeated indices add up (plain indexing keeps one)."""
        if self.name == "cpu":
            np.add.at(target, index, values)
            return
        if self.stand_in:  # cupyx.scatter_add's stand-in
            fakegpu.add_at(target, index, values)
            return
        import cupyx  # noqa: PLC0415 - only on the GPU, beside cupy itself

        cupyx.scatter_add(target, index, values)


def parse_device(text: str) -> tuple[str, int]:
    """``cpu`` | ``gpu`` | ``gpu:N`` | ``cuda:N`` | ``auto`` -> (kind, GPU index)."""
    found = _DEVICE.match(str(text).strip().lower())
    if found is None:
        close = difflib.get_close_matches(str(text), ["cpu", "gpu", "auto", "gpu:0", "cuda:0"], 1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BackendError(f"device: expected one of {', '.join(DEVICES)}, got {text!r}{hint}")
    kind = found.group(1).split(":")[0]
    return ("gpu" if kind == "cuda" else kind), int(found.group(2) or 0)


def stand_in_asked() -> bool:
    return os.environ.get(FAKE_GPU_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _import_cupy() -> Any:
    try:
        import cupy  # noqa: PLC0415 - optional, imported only when a GPU is asked for
    except ImportError:
        raise BackendError(
            f"device 'gpu' needs CuPy, which is not installed: {INSTALL} (CUDA 12; "
            "or use device: cpu)"
        ) from None
    except Exception as exc:  # a CuPy built for another CUDA: its import fails, not ImportError
        raise BackendError(_broken(exc)) from None
    return cupy


def _broken(exc: Exception) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (
        f"CuPy cannot use CUDA ({type(exc).__name__}: {first});"
        f" install the CuPy build for this machine's CUDA ({INSTALL} brings cupy-cuda12x) and "
        "check the driver with nvidia-smi, or use device: cpu"
    )


def _cupy(index: int = 0) -> Any:
    """cupy, with GPU ``index`` current and checked to compute (a broken CUDA fails here)."""
    cupy = _import_cupy()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, or a driver older than the CUDA runtime
        raise BackendError(
            f"device 'gpu' found no usable CUDA GPU ({type(exc).__name__}); check the NVIDIA "
            "driver with nvidia-smi, or use device: cpu"
        ) from None
    if index >= count:
        have = f"GPUs 0..{count - 1}" if count else "no GPU"
        raise BackendError(f"device 'gpu:{index}': this machine has {have}; use gpu:0 or cpu")
    try:
        cupy.cuda.Device(index).use()
        float((cupy.arange(3, dtype=cupy.float32) + 1).sum())  # compiles and runs a kernel
    except Exception as exc:  # missing NVRTC or cuBLAS libraries, an unsupported card
        raise BackendError(_broken(exc)) from None
    return cupy


def gpu_available() -> bool:
    """A real CUDA GPU usable through CuPy (the stand-in does not count)."""
    try:
        _cupy()
    except BackendError:
        return False
    return True


def choose_device() -> tuple[str, str]:
    """What ``device: auto`` picks, and why: ``("cpu", "CuPy not installed")``."""
    if stand_in_asked():
        return "gpu", f"{FAKE_GPU_ENV} is set"
    try:
        import cupy  # noqa: PLC0415 - optional
    except Exception:  # noqa: BLE001 - not installed, or built for another CUDA
        return "cpu", "CuPy not installed"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # a CUDA runtime error without a driver or a device
        return "cpu", f"no CUDA GPU ({type(exc).__name__})"
    if count == 0:
        return "cpu", "no CUDA GPU"
    return "gpu", f"CuPy found {count} CUDA GPU{'s' if count > 1 else ''}"


def get_backend(device: str = "cpu", dtype: str = "float32") -> Backend:
    """``cpu`` | ``gpu`` | ``gpu:N`` | ``cuda:N`` | ``auto`` (the GPU when CuPy finds one) and
    ``float32`` | ``float64``."""
    if dtype not in DTYPES:
        raise BackendError(f"dtype: expected one of float32, float64, got {dtype!r}")
    kind, index = parse_device(device)
    if kind == "auto":
        kind = choose_device()[0]
    if kind == "cpu":
        keep_freed_memory()
        return Backend("cpu", np, DTYPES[dtype])
    if stand_in_asked():
        return Backend("gpu", fakegpu.xp, DTYPES[dtype], index, stand_in=True)
    return Backend("gpu", _cupy(index), DTYPES[dtype], index)


# glibc's malloc: blocks up to 32 MiB from the heap (not fresh mmap pages), and up to 256 MiB
# of freed heap kept rather than handed back to the kernel
MALLOC_SETTINGS = ((-3, 32 << 20), (-1, 256 << 20))  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD


@cache
def keep_freed_memory() -> bool:
    """Let the process reuse the memory of the arrays it frees (glibc only, once a process;
    ``NNCLI_MALLOC=default`` leaves malloc as it is). A training step frees and allocates
    arrays of a few MB each batch; glibc gives such blocks back to the kernel (mmap and heap
    trimming), so every batch paid page faults on fresh pages (W5: ~30,000 an epoch, ~15% of
    it; measured in benchmarks/RESULTS.md). Returns whether the settings took."""
    if os.environ.get("NNCLI_MALLOC", "").lower() == "default":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in MALLOC_SETTINGS)


def open_device(device: str, dtype: str = "float32") -> tuple[Backend, str]:
    """The backend and the run's first line: ``device: gpu:1``, ``device: cpu (auto: CuPy not
    installed)``, ``device: gpu (strict stand-in, NNCLI_FAKE_GPU)``."""
    backend = get_backend(device, dtype)
    if parse_device(device)[0] != "auto":
        return backend, f"device: {backend.label}"
    return backend, f"device: {backend.label} (auto: {choose_device()[1]})"


def array_module(x: Any) -> Any:
    """numpy, cupy or the stand-in, whichever owns ``x`` (for helpers with no backend at hand)."""
    if isinstance(x, fakegpu.DeviceArray):
        return fakegpu.xp
    if type(x).__module__.split(".")[0] == "cupy":
        return _import_cupy()
    return np


def to_host(x: Any) -> np.ndarray:
    """Any array -> numpy array (copies from the device when needed)."""
    if isinstance(x, fakegpu.DeviceArray):
        return fakegpu.to_host(x)
    if hasattr(x, "get") and type(x).__module__.split(".")[0] == "cupy":
        return x.get()
    return np.asarray(x)


def device_copy(host: Any, like: Any) -> Any:
    """A host array copied to the device ``like`` lives on, in ``like``'s dtype."""
    if isinstance(like, fakegpu.DeviceArray):
        return fakegpu.to_device([(host, like.dtype)])[0]
    return array_module(like).asarray(host, dtype=like.dtype)


_COPY_STREAMS: dict[int, Any] = {}  # GPU index -> the stream batches are copied on


def _pinned_copy(cupy: Any, host: tuple, dtypes: list, default: Any) -> tuple[tuple, list, Any]:
    """Start copying host arrays (None kept) to the current GPU through pinned memory on a copy
    stream: (device arrays, the pinned buffers, the event that marks the copy done)."""
    import cupyx  # noqa: PLC0415 - only on the GPU, beside cupy itself

    device = cupy.cuda.Device().id
    if device not in _COPY_STREAMS:
        _COPY_STREAMS[device] = cupy.cuda.Stream(non_blocking=True)
    stream = _COPY_STREAMS[device]
    arrays, pinned = [], []
    for a, dtype in zip(host, dtypes, strict=False):
        if a is None:
            arrays.append(None)
            continue
        buffer = cupyx.empty_pinned(np.shape(a), dtype=default if dtype is None else dtype)
        buffer[...] = a
        moved = cupy.empty(buffer.shape, dtype=buffer.dtype)
        moved.set(buffer, stream=stream)
        arrays.append(moved)
        pinned.append(buffer)
    return tuple(arrays), pinned, stream.record()


def nccl(backend: Backend) -> Any | None:
    """The NCCL module GPU ranks sum with (nncli/training/nccl.py): ``cupy.cuda.nccl``, or the
    stand-in's (``nncli.testing.fakenccl``) under NNCLI_FAKE_GPU; None on the CPU or when CuPy
    finds no NCCL library (its ``available`` is False)."""
    if backend.name != "gpu":
        return None
    if backend.stand_in:
        from nncli.testing import fakenccl  # noqa: PLC0415 - only GPU ranks on the stand-in need it

        module = fakenccl
    else:
        try:
            from cupy.cuda import nccl as module  # noqa: PLC0415 - optional, GPU ranks only
        except ImportError:
            return None
    return module if module.available else None


def on_real_gpu(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def versions(backend: Backend) -> dict[str, str]:
    """The array libraries a run used, for its checkpoint: numpy, and CuPy and CUDA on a GPU;
    and the processor it ran on (``processor``)."""
    out = {"numpy": np.__version__, "processor": processor()}
    if backend.name == "gpu" and not backend.stand_in:
        cupy = backend.xp
        out["cupy"] = cupy.__version__
        out["cuda_runtime"] = str(cupy.cuda.runtime.runtimeGetVersion())
        name = cupy.cuda.runtime.getDeviceProperties(backend.index)["name"]
        out["gpu_name"] = name.decode() if isinstance(name, bytes) else str(name)
    return out


@cache
def processor() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s on Linux), else what ``platform`` knows."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@cache
def elementwise(name: str, in_params: str, out_params: str, operation: str) -> Any:
    """A compiled ``cupy.ElementwiseKernel`` (only called on a real GPU; built once per name)."""
    return _import_cupy().ElementwiseKernel(in_params, out_params, operation, f"nncli_{name}")
