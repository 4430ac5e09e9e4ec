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

# the package each backend imports, and the line that installs it
PACKAGES = {"tensorboard": "tensorboardX", "mlflow": "mlflow"}
INSTALL = {
    ("tensorboard",): 'pip install -e ".[tensorboard]"',
    ("mlflow",): 'pip install -e ".[mlflow]"',
    ("tensorboard", "mlflow"): 'pip install -e ".[tensorboard,mlflow]"',
}


def require(backends: Sequence[str], field: str = "training.log") -> None:
    """SpecError (exit 2) naming the install command when a backend's package is missing."""
    missing = tuple(
        name for name in PACKAGES if name in backends and not _importable(PACKAGES[name])
    )
    if missing:
        packages = " and ".join(PACKAGES[name] for name in missing)
        raise SpecError(
            f"logging to {' and '.join(missing)} needs {packages}, which is not installed: "
            f"{INSTALL[missing]}",
            field=field,
        )


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True
