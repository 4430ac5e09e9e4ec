"""``benchmarks/run.py --quick`` works without its optional extras (PyTorch, threadpoolctl,
scikit-learn, numba): CI runs it only to prove that; no benchmark number is asserted here."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = """
import importlib.abc, sys

class _Hide(importlib.abc.MetaPathFinder):
    # the benchmark's optional extras look absent, as on a machine without them
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "threadpoolctl", "sklearn", "numba"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Hide())
"""


@pytest.mark.slow
def test_quick_benchmark_runs_without_optional_extras(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCKER))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-write"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a safety net only: a loaded 2-core machine runs it several times slower
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for wid in ("W1", "W2", "W3", "W4", "W5", "I1", "I2"):
        assert f"| {wid} |" in table
    assert "n/a" in table  # no PyTorch column values without PyTorch
