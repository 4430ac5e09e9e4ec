"""A strict stand-in for CuPy, on numpy, so that CI runs the GPU path without a GPU.

With ``NNCLI_FAKE_GPU=1``, ``device: gpu`` gets this module's ``xp`` instead of cupy. Its arrays
(``DeviceArray``) behave as CuPy's do where it matters for host/device mistakes:

- ``np.asarray(device_array)`` raises (``__array__``), as CuPy does: nothing converts to the
  host implicitly;
- arithmetic, ufuncs and numpy functions that mix a device array with a host numpy array raise
  (CuPy: ``TypeError: Unsupported type <class 'numpy.ndarray'>``); Python and numpy scalars mix;
- reductions give 0-d device arrays, not host scalars;
- data moves only through ``to_device`` / ``to_host`` (``Backend.asarray`` and
  ``Backend.to_host``); ``xp.asarray`` of a host array raises, so every transfer is counted.

``DeviceArray.data.ptr`` is the device pointer CuPy hands to libraries; ``memory_at`` gives the
device's own side (the stand-in NCCL, ``nncli.testing.fakenccl``) the memory behind a live one, and
``xp.cuda`` has CuPy's current stream, whose ``record()`` event is ``done`` once the work queued
on it (the stand-in NCCL's sums) has finished.

``COUNTS`` counts host->device transfers (``h2d``: one per ``to_device`` call, however many
arrays it moves; ``h2d_arrays``: the arrays), device->host transfers (``d2h``) and the
synchronisations a real GPU would make (``sync``: every ``float()``, ``int()``, ``bool()``,
``.item()``, ``.tolist()``, every transfer to the host and every stream event the host sees
done).
"""

from __future__ import annotations

import weakref
from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

COUNTS: Counter = Counter()

_HOST_ARRAY_MESSAGE = (
    "a host numpy array met a device array (the strict GPU stand-in, NNCLI_FAKE_GPU, refuses "
    "it as CuPy does); move it with Backend.asarray/to_device or Backend.to_host"
)


class HostDeviceMix(TypeError):
    """A host array where a device one is needed (or an implicit conversion to the host)."""


def _unwrap(value: Any) -> Any:
    """DeviceArray -> its numpy array; containers walked; a host ndarray raises."""
    if isinstance(value, DeviceArray):
        return value._a
    if isinstance(value, np.ndarray):
        raise HostDeviceMix(_HOST_ARRAY_MESSAGE)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    """numpy results -> device arrays (scalars from reductions become 0-d arrays, as in CuPy)."""
    if isinstance(value, np.ndarray):
        return DeviceArray(value)
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        return DeviceArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _call(func: Any, args: tuple, kwargs: dict) -> Any:
    return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))


def _sync() -> None:
    COUNTS["sync"] += 1


class DeviceArray(np.lib.mixins.NDArrayOperatorsMixin):
    """A numpy array playing a CuPy one: see the module's docstring for what it refuses."""

    __slots__ = ("_a",)

    def __init__(self, array: np.ndarray):
        self._a = array

    # -- what CuPy refuses ----------------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise HostDeviceMix(
            "implicit conversion of a device array to a numpy array (the strict GPU stand-in, "
            "NNCLI_FAKE_GPU, refuses it as CuPy does); use Backend.to_host"
        )

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _call(getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        return _call(func, args, kwargs)

    # -- synchronising conversions (allowed, counted) ---------------------------------------------
    def __float__(self) -> float:
        _sync()
        return float(self._a)

    def __int__(self) -> int:
        _sync()
        return int(self._a)

    def __index__(self) -> int:
        _sync()
        return self._a.__index__()

    def __bool__(self) -> bool:
        _sync()
        return bool(self._a)

    def __format__(self, spec: str) -> str:
        return format(self.item(), spec)

    def item(self) -> Any:
        _sync()
        return self._a.item()

    def tolist(self) -> Any:
        _sync()
        return self._a.tolist()

    def get(self) -> np.ndarray:
        """The host copy (CuPy's ``ndarray.get``): a device->host transfer."""
        return to_host(self)

    @property
    def data(self) -> MemoryPointer:
        """CuPy's ``ndarray.data``: where the array starts in device memory (``.ptr``)."""
        ptr = int(self._a.__array_interface__["data"][0])
        _MEMORY[ptr] = self._a  # live while this array's memory is: a pointer to freed memory fails
        return MemoryPointer(ptr)

    # -- plain array behaviour ------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Any:
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index: Any, value: Any) -> None:
        self._a[_unwrap(index)] = _unwrap(value)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        return (_wrap(row) for row in self._a)

    def __repr__(self) -> str:
        return f"DeviceArray({self._a!r})"

    @property
    def shape(self) -> tuple[int, ...]:
        return self._a.shape

    @property
    def dtype(self) -> np.dtype:
        return self._a.dtype

    @property
    def ndim(self) -> int:
        return self._a.ndim

    @property
    def size(self) -> int:
        return self._a.size

    @property
    def T(self) -> DeviceArray:  # noqa: N802 - numpy's name
        return DeviceArray(self._a.T)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # __array_interface__ and the like: no way around __array__
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _call(attr, args, kwargs)
        return _wrap(attr)


@dataclass(frozen=True)
class MemoryPointer:
    """CuPy's ``cuda.MemoryPointer``: ``ptr`` is the address libraries such as NCCL take."""

    ptr: int


_MEMORY: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # ptr -> the array's memory


def memory_at(ptr: int, count: int, dtype: Any) -> np.ndarray:
    """The ``count`` values of ``dtype`` at device pointer ``ptr``, for the device's own side
    (the stand-in NCCL) to read and write. Stricter than a GPU: a pointer that is no live
    array's start, memory of another dtype (a library would reinterpret its bytes) or a count
    past the array's end (it would read and write beyond it) raise ValueError."""
    array = _MEMORY.get(ptr) if isinstance(ptr, int) else None
    if array is None:
        raise ValueError(f"{ptr!r} is not the device pointer of a live array")
    if not array.flags.c_contiguous:
        raise ValueError(f"the array at {ptr:#x} is not contiguous")
    if array.dtype != np.dtype(dtype):
        raise ValueError(f"{np.dtype(dtype)} given for the {array.dtype} array at {ptr:#x}")
    if not 0 <= count <= array.size:
        raise ValueError(f"count {count} for the {array.size} values at {ptr:#x}")
    return array.reshape(-1)[:count]


class Event:
    """CuPy's ``cuda.Event`` from ``Stream.record()``: ``done`` once the work queued before it
    has finished (each piece of work: an object whose ``Test()`` says so)."""

    def __init__(self, work: list[Any]):
        self._work = work

    @property
    def done(self) -> bool:
        finished = all(w.Test() for w, _ in self._work)
        if finished:
            _sync()  # the host has seen the device's work end
        return finished

    def synchronize(self) -> None:
        while not self.done:
            pass


class Stream:
    """CuPy's ``cuda.Stream``: ``ptr`` is the handle libraries take; ``queue`` is what the
    device's own side (the stand-in NCCL) puts on it, with the memory it uses."""

    def __init__(self, ptr: int):
        self.ptr = ptr
        self._work: list[tuple[Any, Any]] = []

    def queue(self, work: Any, memory: Any) -> None:
        self._work = [(w, m) for w, m in self._work if not w.Test()]
        self._work.append((work, memory))

    def record(self) -> Event:
        return Event(list(self._work))

    @property
    def done(self) -> bool:
        return self.record().done

    def synchronize(self) -> None:
        self.record().synchronize()


STREAMS = {0: Stream(0)}  # by handle; CuPy's null stream has handle 0


def stream_at(handle: int) -> Stream:
    """The stream with ``handle`` (``Stream.ptr``); ValueError for any other value."""
    if not isinstance(handle, int) or isinstance(handle, bool) or handle not in STREAMS:
        raise ValueError(f"{handle!r} is not a stream handle (pass Stream.ptr)")
    return STREAMS[handle]


def to_device(pairs: list[tuple[Any, Any]]) -> list[DeviceArray]:
    """(host array or scalar, dtype) pairs -> device arrays, copied: one counted transfer."""
    if pairs:
        COUNTS["h2d"] += 1
        COUNTS["h2d_arrays"] += len(pairs)
    return [DeviceArray(np.array(a, dtype=dtype)) for a, dtype in pairs]


def add_at(target: DeviceArray, index: Any, values: Any) -> None:
    """``cupyx.scatter_add``: target[index] += values, repeated indices adding up."""
    np.add.at(_unwrap(target), _unwrap(index), _unwrap(values))


def to_host(x: Any) -> np.ndarray:
    """A device array -> a host copy (a transfer, and a synchronisation)."""
    COUNTS["d2h"] += 1
    _sync()
    return np.array(x._a)


class _Module:
    """The ``xp`` of the stand-in: numpy's names, taking and giving device arrays only."""

    ndarray = DeviceArray
    stand_in = True
    cuda = SimpleNamespace(get_current_stream=lambda: STREAMS[0])  # CuPy's, for NCCL's calls
    __name__ = "nncli.testing.fakegpu.xp"

    def asarray(self, x: Any, dtype: Any = None) -> DeviceArray:
        if isinstance(x, DeviceArray):
            return x if dtype is None or x.dtype == dtype else DeviceArray(x._a.astype(dtype))
        if isinstance(x, np.ndarray):
            raise HostDeviceMix(_HOST_ARRAY_MESSAGE)
        return to_device([(x, dtype)])[0]  # a Python scalar or list: a (small) transfer

    array = asarray

    @property
    def lib(self) -> Any:
        """``xp.lib.stride_tricks.as_strided`` (CuPy has it under the same name)."""
        tricks = SimpleNamespace(
            as_strided=_wrapped(np.lib.stride_tricks.as_strided),
            sliding_window_view=_wrapped(np.lib.stride_tricks.sliding_window_view),
        )
        return SimpleNamespace(stride_tricks=tricks)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(np, name)
        if isinstance(attr, type) or not callable(attr):
            return attr  # dtypes, finfo, errstate, newaxis, pi, inf
        return _wrapped(attr)


def _wrapped(func: Any) -> Any:
    return lambda *args, **kwargs: _call(func, args, kwargs)


xp = _Module()
