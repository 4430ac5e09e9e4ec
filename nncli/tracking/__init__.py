"""Where a training run is logged besides ``history.csv``: TensorBoard event files (through
tensorboardX) and MLflow runs (through mlflow-skinny's client). The only room that imports
them, each an extra (``tensorboard``, ``mlflow``).

The training loop knows none of this: ``callback.RunLog`` is one of its callbacks, handing each
finished epoch's logs to the writers (``tensorboard.TensorBoardWriter``,
``mlflow_runs.MlflowWriter``) that ``plan.LogPlan`` describes. A writer that fails (a server
down, a disk full) is said once and dropped; the run goes on and writes its own files as ever.
``require`` is the check a command makes before any training, so a missing package is one line
and exit 2.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from nncli.errors import SpecError

# the package each backend imports, and the extra that installs it
PACKAGES = {"tensorboard": ("tensorboardX", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def require(backends: Sequence[str], field: str = "training.log") -> None:
    """SpecError (exit 2) naming the install command when a backend's package is missing."""
    missing = [name for name in backends if not _importable(PACKAGES[name][0])]
    if missing:
        extras = ",".join(PACKAGES[name][1] for name in missing)
        packages = " and ".join(PACKAGES[name][0] for name in missing)
        raise SpecError(
            f"logging to {' and '.join(missing)} needs {packages}, which is not installed: "
            f'pip install -e ".[{extras}]"',
            field=field,
        )


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True
