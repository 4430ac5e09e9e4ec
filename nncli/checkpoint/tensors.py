"""A safetensors file (a PyTorch ``state_dict`` saved with ``safetensors.torch.save_file``) as
host arrays, for ``nncli import``. The only module that imports safetensors (the ``import``
extra): a format of named arrays and a JSON header, read without pickle, its header checked by
the library before any array is. Trusts nothing: a path that is not a regular file, a file
larger than the memory limit, a damaged header or a dtype numpy lacks (bfloat16) is refused with
one line (CheckpointError, exit 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nncli.bounds.files import require_regular
from nncli.bounds.limits import over_memory
from nncli.errors import CheckpointError, SpecError

INSTALL_HINT = 'pip install -e ".[import]"'


def read_tensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the safetensors file at ``path`` by its name (the file's order: sorted
    by name; PyTorch's module order is not kept by the format)."""
    path = Path(path)
    try:
        from safetensors import safe_open
    except ImportError:
        raise SpecError(
            f"nncli import reads safetensors files with the safetensors package, which is not "
            f"installed: {INSTALL_HINT}"
        ) from None
    if path.is_dir():
        raise CheckpointError("is a folder, not a safetensors file", where=str(path))
    require_regular(path, CheckpointError)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError("no such file", where=str(path)) from None
    too_big = over_memory(size)
    if too_big is not None:
        raise CheckpointError(f"the file's {size} bytes are {too_big}", where=str(path))
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {name: np.array(f.get_tensor(name)) for name in f.keys()}  # noqa: SIM118
    except OSError as exc:
        why = f"cannot read the file ({exc.strerror or exc})"
        raise CheckpointError(why, where=str(path)) from None
    except Exception as exc:  # the library's SafetensorError and numpy's dtype refusals
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        why = f"not a readable safetensors file ({reason})"
        raise CheckpointError(why, where=str(path)) from None
