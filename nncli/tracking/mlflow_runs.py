"""MLflow runs through mlflow-skinny's ``MlflowClient`` (the tracking client alone: no server or
UI in the package): parameters from the resolved spec, metrics per epoch with the epoch as
step, the run's files as artifacts, a resumed run continued, trials and folds as child runs.
The only module that imports mlflow."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from nncli.tracking.plan import LogPlan, flat

PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag: the UI nests a run under its parent
BATCH = 100  # MLflow takes at most 100 parameters in one call
LONGEST = 6000  # MLflow's longest parameter value (MAX_PARAM_VAL_LENGTH)
SEND_EVERY = 1.0  # seconds: epochs are sent together at most this often, and at the end


def _client(plan: LogPlan) -> Any:
    from mlflow.tracking import MlflowClient

    # its notes on creating a store, and a failed background send: RunLog says that once
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not plan.tracking_uri().startswith(("http", "databricks")):
        plan.local_store.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=plan.tracking_uri())


def _experiment(client: Any, plan: LogPlan) -> str:
    """The id of the experiment named ``plan.experiment``, created when it is new (another
    process creating it at once is found on a second look)."""
    found = client.get_experiment_by_name(plan.experiment)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(plan.experiment, artifact_location=plan.artifact_root())
    except Exception:
        found = client.get_experiment_by_name(plan.experiment)
        if found is None:
            raise
        return found.experiment_id


def start_run(plan: LogPlan, params: bool = True) -> tuple[Any, str]:
    """(client, the id of a new run named ``plan.run_name``, a child of ``plan.parent``) with
    the plan's tags and, with ``params``, the spec's parameters."""
    client = _client(plan)
    tags = dict(plan.tags) | ({PARENT_TAG: plan.parent} if plan.parent else {})
    run = client.create_run(_experiment(client, plan), run_name=plan.run_name, tags=tags)
    run_id = run.info.run_id
    if params:
        log_params(client, run_id, plan.spec)
    return client, run_id


def log_params(client: Any, run_id: str, spec: dict[str, Any]) -> None:
    """The spec flattened to dotted keys; a value past MLflow's limit is cut and says so."""
    from mlflow.entities import Param

    cut = " ... (cut at MLflow's limit)"
    values = {
        key: text if len(text) <= LONGEST else text[: LONGEST - len(cut)] + cut
        for key, text in flat(spec).items()
    }
    params = [Param(key, text) for key, text in values.items()]
    for start in range(0, len(params), BATCH):
        client.log_batch(run_id, params=params[start : start + BATCH])


def end_run(plan: LogPlan, run_id: str, status: str) -> None:
    """Mark a run (a tune's or cv's parent) FINISHED, FAILED or KILLED."""
    _client(plan).set_terminated(run_id, status)


class MlflowWriter:
    """One training run as one MLflow run: a new one, or on ``--resume`` the run the checkpoint
    names, logged from the step after its last (an epoch it already holds is not repeated).

    A store's write costs milliseconds (a database transaction, a request to a server), a
    small network's epoch a fraction of a second, so epochs are sent together at most every
    ``SEND_EVERY`` seconds (the first at once) and whatever is left at the end, each send in
    MLflow's own background thread (``synchronous=False``): training does not wait for the
    store. ``end`` waits for every send, and raises the first that failed."""

    name = "mlflow"

    def __init__(self) -> None:
        self.client: Any = None
        self.run_id: str | None = None
        self.last = 0  # the last epoch the run holds
        self.pending: list[Any] = []  # metrics not sent yet
        self.sent = -math.inf  # when they last were (time.monotonic)
        self.sending: list[Any] = []  # MLflow's handles of the sends under way

    def begin(self, plan: LogPlan) -> None:
        if plan.run_id is not None:
            client = _client(plan)
            run = _existing(client, plan.run_id)
            if run is not None:
                self.client, self.run_id = client, plan.run_id
                self.last = _last_step(client, plan.run_id, run.data.metrics)
                client.update_run(plan.run_id, status="RUNNING")
                return
        self.client, self.run_id = start_run(plan)

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        from mlflow.entities import Metric

        if epoch <= self.last:
            return
        stamp = int(time.time() * 1000)
        self.pending += [Metric(k, float(v), stamp, epoch) for k, v in logs.items() if k != "epoch"]
        self.last = epoch
        if time.monotonic() - self.sent >= SEND_EVERY:
            self.send()

    def send(self) -> None:
        """The pending metrics, in batches of MLflow's 1000 at most."""
        pending, self.pending = self.pending, []
        for start in range(0, len(pending), BATCH * 10):
            batch = pending[start : start + BATCH * 10]
            self.sending.append(
                self.client.log_batch(self.run_id, metrics=batch, synchronous=False)
            )
        self.sent = time.monotonic()

    def end(self, status: str, files: list[Path]) -> None:
        self.send()
        sending, self.sending = self.sending, []
        for operation in sending:
            operation.wait()
        for path in files:
            if Path(path).is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status)


def _existing(client: Any, run_id: str) -> Any:
    """The run, or None when this store has no such run (a resume under another store)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def _last_step(client: Any, run_id: str, metrics: dict[str, float]) -> int:
    key = "loss" if "loss" in metrics else next(iter(metrics), None)
    if key is None:
        return 0
    return max((m.step for m in client.get_metric_history(run_id, key)), default=0)
