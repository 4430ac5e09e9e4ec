"""The bounds nncli checks before large work, so a hostile or mistaken input stops with one line
instead of a MemoryError, or minutes of work, halfway through.

- Memory: estimates of what a run would allocate (padded sequences, parameters with their
  gradients and optimizer slots) must stay within ``memory_limit()``: ``NNCLI_MAX_MEMORY``
  when set (``16GiB``, ``500MB``, a number of bytes), else a quarter of the memory this process
  may use (the machine's physical memory, or less under ``ulimit -v`` or a cgroup's limit).
  Each estimate counts its named arrays only: with the data and the parameters each held to a
  quarter, half is left for what no estimate counts, a batch's activations above all (for
  sequences they grow with the same padded length), copies made while batching, the libraries.
- Columns: a CSV header may name at most ``column_limit()`` columns (``NNCLI_MAX_COLUMNS``,
  default 100,000): every column costs pandas and the encoder work, and a header of a million
  columns is far more often a broken file than a data set.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from nncli.errors import SpecError

MEMORY_VARIABLE = "NNCLI_MAX_MEMORY"
COLUMNS_VARIABLE = "NNCLI_MAX_COLUMNS"
MAX_COLUMNS = 100_000
MEMORY_SHARE = 0.25  # of what the process may use, for each estimate (the module's docstring)
UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
UNITS |= {"ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def size_text(count: float) -> str:
    """Bytes as a person reads them: ``3.7 GiB``, ``512 KiB``, ``12 bytes``."""
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} bytes"


def parse_size(text: str, variable: str = MEMORY_VARIABLE) -> int:
    """``16GiB``, ``500MB``, ``2g``, ``1048576`` -> bytes; SpecError (exit 2) naming it."""
    match = SIZE.match(text)
    if match is None:
        raise SpecError(
            f"expected a size such as 16GiB, 500MB or a number of bytes, got {text!r}",
            field=variable,
        )
    return int(float(match[1]) * UNITS[(match[2] or "").lower()])


def available_memory() -> int | None:
    """The memory this process may use: the least of the machine's physical memory, the
    address-space limit (``ulimit -v``) and the cgroup's limit; None when none can be read."""
    found = []
    with contextlib.suppress(AttributeError, ValueError, OSError):  # not on every system
        found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            found.append(soft)
    except (ImportError, ValueError, OSError):  # Windows has no resource module
        pass
    for name in CGROUP_LIMITS:
        try:
            text = Path(name).read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max", or a huge number: no limit
            found.append(int(text))
    return min(found) if found else None


def memory_limit() -> tuple[int | None, str]:
    """(the bytes an estimate may reach, or None for no limit; how the limit was set, for
    messages). ``NNCLI_MAX_MEMORY=0`` turns the check off."""
    given = os.environ.get(MEMORY_VARIABLE)
    if given is not None and given.strip():
        limit = parse_size(given)
        return (limit or None), f"{MEMORY_VARIABLE}={given.strip()}"
    available = available_memory()
    if available is None:
        return None, "no limit"
    how = f"a quarter of the {size_text(available)} the process may use"
    return int(available * MEMORY_SHARE), how


def over_memory(need: int) -> str | None:
    """The end of a refusal when ``need`` bytes pass the memory limit, else None: the limit,
    where it comes from and how to raise it."""
    limit, how = memory_limit()
    if limit is None or need <= limit:
        return None
    return (
        f"over the limit of {size_text(limit)} ({how}); {MEMORY_VARIABLE}=<size> raises it "
        f"(e.g. {MEMORY_VARIABLE}=64GiB) when the machine has the memory"
    )


def column_limit() -> int:
    """The most columns a CSV header may name (``NNCLI_MAX_COLUMNS``, default 100,000)."""
    given = os.environ.get(COLUMNS_VARIABLE)
    if given is None or not given.strip():
        return MAX_COLUMNS
    if not given.strip().isdigit() or int(given) < 1:
        raise SpecError(f"expected a positive integer, got {given!r}", field=COLUMNS_VARIABLE)
    return int(given)
