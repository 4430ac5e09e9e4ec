"""Named arrays from an HDF5 or ``.npz`` file, for ``kind: arrays``, under the rules a checkpoint
is read by: no link followed (soft, external), no dataset stored in another file (external
storage, a virtual dataset), numbers only (no object, string or compound dtype; an ``.npz`` is
loaded with ``allow_pickle=False``), and each array's bytes checked against the memory limit
before it is read. The one module of the data room that imports h5py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nncli.bounds.files import require_regular
from nncli.bounds.limits import over_memory, size_text
from nncli.errors import DataError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NUMBERS = "biuf"  # bool, integers, floats
SUFFIXES = (".h5", ".hdf5", ".hdf", ".npz")


def read_arrays(path: Path, names: list[str], optional: tuple[str, ...] = ()) -> dict:
    """The arrays ``names`` of ``path`` (HDF5 by its signature, else ``.npz``), each (N, ...)
    of numbers; a name in ``optional`` the file lacks is left out. DataError naming the file
    and the array for anything the rules above refuse."""
    path = Path(path)
    require_regular(path, DataError)
    try:
        with open(path, "rb") as file:
            head = file.read(len(HDF5_SIGNATURE))
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except OSError as err:
        raise DataError(f"cannot read it: {err.strerror}", where=str(path)) from None
    if head == HDF5_SIGNATURE:
        return _hdf5(path, names, optional)
    if head.startswith(b"PK"):
        return _npz(path, names, optional)
    raise DataError(
        f"expected an HDF5 file or a numpy .npz archive ({', '.join(SUFFIXES)}), found neither",
        where=str(path),
    )


def _absent(name: str, have: list[str], path: Path) -> DataError:
    from nncli.engine.registry import did_you_mean  # the error path only

    shown = ", ".join(repr(n) for n in have[:8]) + (", ..." if len(have) > 8 else "")
    return DataError(
        f"no array {name!r} in the file (it has {shown or 'none'}){did_you_mean(name, have)}",
        where=str(path),
    )


def _check(name: str, dtype: np.dtype, shape: tuple, path: Path) -> None:
    """DataError unless the array is numbers of at least one axis that fit the memory limit."""
    if dtype.kind not in NUMBERS or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(
            f"array {name!r} holds {dtype} values; expected numbers (bool, integers, floats)",
            where=str(path),
        )
    if len(shape) == 0:
        raise DataError(f"array {name!r} is a scalar; expected (N, ...) rows", where=str(path))
    need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    over = over_memory(need)
    if over is not None:
        raise DataError(
            f"array {name!r} of shape {shape} would take {size_text(need)}, {over}",
            where=str(path),
        )


def _hdf5(path: Path, names: list[str], optional: tuple[str, ...]) -> dict:
    import h5py

    found = {}
    try:
        with h5py.File(path, "r") as f:
            have = list(f.keys())
            for name in names:
                link = f.get(name, getlink=True)
                if link is None:
                    if name in optional:
                        continue
                    raise _absent(name, have, path)
                if not isinstance(link, h5py.HardLink):
                    kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a link"
                    raise DataError(
                        f"array {name!r} is {kind}; nncli follows no links in a data file",
                        where=str(path),
                    )
                ds = f[name]
                if not isinstance(ds, h5py.Dataset):
                    raise DataError(f"{name!r} is a group, not an array", where=str(path))
                if ds.external or ds.is_virtual:
                    raise DataError(
                        f"array {name!r} stores its data in other files", where=str(path)
                    )
                if h5py.check_vlen_dtype(ds.dtype) is not None:
                    raise DataError(
                        f"array {name!r} holds variable-length values; expected numbers",
                        where=str(path),
                    )
                _check(name, ds.dtype, ds.shape, path)
                found[name] = ds[()]
    except OSError as err:
        raise DataError(f"cannot read it as HDF5: {err}", where=str(path)) from None
    return found


def _npz(path: Path, names: list[str], optional: tuple[str, ...]) -> dict:
    found = {}
    try:
        with np.load(path) as archive:  # numpy refuses pickled (object) arrays by default
            have = list(archive.files)
            with zipfile.ZipFile(path) as zipped:  # the bytes each array unpacks to, first
                sizes = {
                    info.filename.removesuffix(".npy"): info.file_size for info in zipped.infolist()
                }
            for name in names:
                if name not in have:
                    if name in optional:
                        continue
                    raise _absent(name, have, path)
                over = over_memory(sizes.get(name, 0))
                if over is not None:
                    raise DataError(
                        f"array {name!r} would unpack to {size_text(sizes[name])}, {over}",
                        where=str(path),
                    )
                array = archive[name]
                _check(name, array.dtype, array.shape, path)
                found[name] = array
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:  # object arrays too
        raise DataError(f"cannot read it as a numpy .npz archive: {err}", where=str(path)) from None
    return found
