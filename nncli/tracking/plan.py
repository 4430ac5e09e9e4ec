"""What one run's logging needs to know: ``LogPlan`` (which backends, where, under which
names, the resolved spec and the run's tags), and the spec as MLflow's parameters (``flat``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# nncli tune and nncli cv hand their worker processes the parent MLflow run through this
PARENT_ENV = "NNCLI_MLFLOW_PARENT_RUN"
SQLITE = "sqlite:///"


@dataclass
class LogPlan:
    """One run's logging: ``backends`` (``training.log``), the event files' ``tensorboard``
    folder, the MLflow ``experiment`` and ``run_name``, its ``local_store`` folder (used when
    ``MLFLOW_TRACKING_URI`` is unset), the ``parent`` run of a trial or fold, the resolved
    ``spec`` (text and as a mapping), ``tags``, the epoch a resumed run starts after and the
    MLflow run it continues."""

    backends: tuple[str, ...]
    tensorboard: Path
    local_store: Path
    experiment: str
    run_name: str
    spec_yaml: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    initial_epoch: int = 0
    run_id: str | None = None
    parent: str | None = None

    def tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI``, else an SQLite store beside the output (``mlflow.db``)."""
        given = os.environ.get("MLFLOW_TRACKING_URI")
        return given or SQLITE + os.path.abspath(self.local_store / "mlflow.db")

    def artifact_root(self) -> str | None:
        """Where a new experiment keeps its artifacts: ``mlartifacts/`` beside an SQLite store
        (the local one, or one ``MLFLOW_TRACKING_URI`` names: MLflow's own default would be the
        current folder), else the server's own choice."""
        uri = self.tracking_uri()
        if not uri.startswith(SQLITE):
            return None
        return (
            Path(os.path.abspath(uri.removeprefix(SQLITE))).parent.joinpath("mlartifacts").as_uri()
        )


def flat(value: Any, prefix: str = "") -> dict[str, str]:
    """A nested mapping as dotted keys -> text: ``{"model": {"layers": [{"units": 8}]}}`` ->
    ``{"model.layers.0.units": "8"}`` (MLflow's keys take no brackets); an empty mapping or
    list, and None, as their text."""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value:
        items = ((str(i), v) for i, v in enumerate(value))
    elif prefix:
        return {prefix: "None" if value is None else str(value)}
    else:  # an empty mapping at the top: no parameters
        return {}
    out: dict[str, str] = {}
    for key, item in items:
        out.update(flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return out
