"""``training.log`` / ``--log`` (nncli/tracking/, nncli/commands/watch.py): every value of
history.csv reads back from TensorBoard's event files and from MLflow, a resume adds its new
epochs once to the same runs, tune's trials and cv's folds are children of one parent run, a
failing backend is one warning and the run's files are whole, a missing package is one line."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line

pytest.importorskip("tensorboardX")
pytest.importorskip("mlflow")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

from mlflow.tracking import MlflowClient  # noqa: E402

from nncli.commands import watch  # noqa: E402
from nncli.tracking import mlflow_runs  # noqa: E402
from nncli.tracking.plan import PARENT_ENV, flat  # noqa: E402
from nncli.tracking.tensorboard import TensorBoardWriter  # noqa: E402

SEARCH = "search:\n  optimizer.learning_rate: [0.01, 0.05]\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store for the module (creating one takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def shared_store(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.delenv(PARENT_ENV, raising=False)
    return store


def _folder(tmp_path: Path, training: str, extra: str = "") -> Path:
    shutil.copy(IRIS, tmp_path / "iris.csv")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        iris_spec(training).replace("seed: 0", f"seed: 0\nname: {tmp_path.name}") + extra
    )
    return spec


def _history(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    events = event_accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def _runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def _assert_read_back(
    rows: list[dict[str, str]], scalars: dict, client, run_id: str, again: tuple = ()
) -> None:
    """Each column of history.csv, epoch as step, once: equal in MLflow (float64, as the CSV
    writes it) and in the event files (float32: TensorBoard's scalars). ``again``: epochs a
    resume trained a second time, which MLflow keeps as first logged (training is exact: only
    their ``time`` differs)."""
    steps = [int(row["epoch"]) for row in rows]
    columns = [c for c in rows[0] if c != "epoch"]
    assert set(scalars) == set(columns)
    for column in columns:
        written = [float(row[column]) for row in rows]
        logged = [(m.step, m.value) for m in client.get_metric_history(run_id, column)]
        assert sorted(s for s, _ in logged) == steps, column
        kept = [f"{v:.8g}" for _, v in sorted(logged)]
        for row, value in zip(rows, kept, strict=True):
            if column != "time" or int(row["epoch"]) not in again:
                assert value == row[column], (column, row["epoch"])
        seen = scalars[column]
        assert [s for s, _ in seen] == steps, column
        eps = np.finfo(np.float32).eps
        for (_, value), expected in zip(seen, written, strict=True):
            assert abs(value - expected) <= eps * abs(expected), (column, value, expected)


def test_the_local_store_is_beside_the_output_unless_mlflow_tracking_uri_names_one(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = _folder(tmp_path, "{epochs: 1, batch_size: 16, log: [mlflow]}")
    from nncli import spec as spec_module

    plan = watch.log_plan(spec_module.load(spec), tmp_path / "out" / "a.h5", "cpu")
    assert plan.tracking_uri() == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    assert plan.tensorboard == tmp_path / "out" / "tensorboard" / "a"
    assert plan.artifact_root() == (tmp_path / "out" / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere' / 'm.db'}")
    assert plan.artifact_root() == (tmp_path / "elsewhere" / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert plan.tracking_uri() == "http://tracking:5000" and plan.artifact_root() is None


def test_every_history_value_reads_back_from_tensorboard_and_mlflow(tmp_path, shared_store):
    spec = _folder(tmp_path, "{epochs: 3, batch_size: 16}")
    result = invoke("train", spec, "--log", "tensorboard,mlflow")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "out"
    rows = _history(out / "history.csv")
    uri = shared_store
    (run,) = _runs(uri, tmp_path.name)
    client = MlflowClient(uri)
    _assert_read_back(rows, _scalars(out / "tensorboard" / "model"), client, run.info.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "model"
    assert run.data.params["training.epochs"] == "3"
    assert run.data.params["model.layers.0.units"] == "8"
    assert {"nncli.version", "nncli.device", "nncli.seed", "nncli.processor"} <= set(run.data.tags)
    assert run.data.tags["nncli.seed"] == "0" and run.data.tags["nncli.device"] == "cpu"
    kept = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert kept == {"model.h5", "spec.resolved.yaml", "history.csv"}
    events = event_accumulator.EventAccumulator(str(out / "tensorboard" / "model"))
    events.Reload()
    assert events.Tags()["tensors"] == ["spec/text_summary"]  # the resolved spec as text


def test_resume_continues_the_same_runs_and_adds_each_epoch_once(tmp_path, shared_store):
    spec = _folder(tmp_path, "{epochs: 3, batch_size: 16, checkpoint_every: 2}")
    assert invoke("train", spec, "--log", "tensorboard", "--log", "mlflow").exit_code == 0
    out = tmp_path / "out"
    # from epoch 2 (.latest.h5): epoch 3 is logged already and comes again, then epoch 4
    again = invoke("train", spec, "--log", "mlflow,tensorboard", "--epochs", 4)
    assert again.exit_code == 2  # the run exists: a fresh one needs --force
    resumed = invoke(
        "train", spec, "--log", "mlflow,tensorboard", "--epochs", 4,
        "--resume", out / "model.latest.h5",
    )  # fmt: skip
    assert resumed.exit_code == 0, resumed.stderr
    rows = _history(out / "history.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    (run,) = _runs(shared_store, tmp_path.name)  # one run, continued
    client = MlflowClient(shared_store)
    scalars = _scalars(out / "tensorboard" / "model")
    _assert_read_back(rows, scalars, client, run.info.run_id, again=(3,))


def test_an_older_checkpoint_without_a_run_id_resumes_into_a_new_run(tmp_path, shared_store):
    spec = _folder(tmp_path, "{epochs: 2, batch_size: 16}")
    assert invoke("train", spec).exit_code == 0  # no logging: the checkpoint names no run
    out = tmp_path / "out"
    resumed = invoke("train", spec, "--log", "mlflow", "--epochs", 3, "--resume", out / "model.h5")
    assert resumed.exit_code == 0, resumed.stderr
    (run,) = _runs(shared_store, tmp_path.name)
    steps = [m.step for m in MlflowClient(shared_store).get_metric_history(run.info.run_id, "loss")]
    assert steps == [3]


@pytest.mark.slow
def test_tune_logs_each_trial_as_a_child_of_one_parent_run(tmp_path, shared_store):
    pytest.importorskip("optuna")
    spec = _folder(tmp_path, "{epochs: 1, batch_size: 32}", SEARCH)
    out = tmp_path / "search"
    result = invoke("tune", spec, "--trials", 2, "--output", out, "--log", "mlflow,tensorboard")
    assert result.exit_code == 0, result.stderr
    runs = {run.info.run_name: run for run in _runs(shared_store, tmp_path.name)}
    assert set(runs) == {"tune", "trial-0", "trial-1"}
    parent = runs["tune"].info.run_id
    assert all(runs[t].data.tags["mlflow.parentRunId"] == parent for t in ("trial-0", "trial-1"))
    assert {runs[t].data.params["optimizer.learning_rate"] for t in ("trial-0", "trial-1")} <= {
        "0.01",
        "0.05",
    }
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["trial-0", "trial-1"]


def test_cv_logs_each_fold_as_a_child_of_one_parent_run(tmp_path, shared_store):
    spec = _folder(tmp_path, "{epochs: 2, batch_size: 32, log: [mlflow, tensorboard]}")
    out = tmp_path / "cv"
    result = invoke("cv", spec, "--folds", 2, "--output", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    runs = {run.info.run_name: run for run in _runs(shared_store, tmp_path.name)}
    assert set(runs) == {"cv", "fold-1", "fold-2"}
    client = MlflowClient(shared_store)
    for fold in ("fold-1", "fold-2"):
        assert runs[fold].data.tags["mlflow.parentRunId"] == runs["cv"].info.run_id
        history = client.get_metric_history(runs[fold].info.run_id, "val_loss")
        assert [m.step for m in history] == [1, 2]
        assert [s for s, _ in _scalars(out / "tensorboard" / fold)["val_loss"]] == [1, 2]


@pytest.mark.parametrize("failing", ["tensorboard", "mlflow"])
def test_a_failing_backend_warns_once_and_the_run_keeps_its_files(tmp_path, shared_store, failing):
    calls = []

    def disk_full(self, epoch, logs):
        calls.append(epoch)
        raise OSError(28, "No space left on device")

    spec = _folder(tmp_path, "{epochs: 3, batch_size: 16}")
    writer = {"tensorboard": TensorBoardWriter, "mlflow": mlflow_runs.MlflowWriter}[failing]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writer, "epoch", disk_full)
        result = invoke("train", spec, "--log", "tensorboard,mlflow")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"logging to {failing} failed" in warnings[0], result.stderr
    assert "No space left on device" in warnings[0]
    assert calls == [1]  # dropped after its failure: not tried again every epoch
    out = tmp_path / "out"
    assert (out / "model.h5").is_file() and len(_history(out / "history.csv")) == 3
    if failing == "tensorboard":  # the other backend logged every epoch
        (run,) = _runs(shared_store, tmp_path.name)
        history = MlflowClient(shared_store).get_metric_history(run.info.run_id, "loss")
        assert [m.step for m in history] == [1, 2, 3]
    else:
        assert [s for s, _ in _scalars(out / "tensorboard" / "model")["loss"]] == [1, 2, 3]


def test_a_missing_package_is_one_line_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX fails
    spec = _folder(tmp_path, "{epochs: 1, batch_size: 16}")
    result = invoke("train", spec, "--log", "tensorboard")
    one_error_line(result, 2, "tensorboardX", 'pip install -e ".[tensorboard]"')
    assert not (tmp_path / "out").exists()


def test_log_names_are_checked_with_a_did_you_mean(tmp_path):
    spec = _folder(tmp_path, "{epochs: 1, batch_size: 16}")
    result = invoke("train", spec, "--log", "tensorbord")
    assert result.exit_code == 2 and "did you mean 'tensorboard'" in result.stderr
    spec.write_text(spec.read_text().replace("batch_size: 16}", "batch_size: 16, log: [mlfow]}"))
    result = invoke("validate", spec)
    one_error_line(result, 2, "training.log[0]", "did you mean 'mlflow'")


def test_only_rank_0_logs():
    run = SimpleNamespace(world=SimpleNamespace(lead=False))
    assert watch.run_log(run) is None


def test_params_are_dotted_keys_cut_to_mlflows_limit_in_batches_of_100():
    spec = {"model": {"layers": [{"units": 8}, {"type": "dense"}]}, "name": "x" * 7000}
    spec |= {f"k{i}": i for i in range(150)}
    assert flat(spec)["model.layers.0.units"] == "8"
    assert flat({}) == {} and flat({"a": {}, "b": None}) == {"a": "{}", "b": "None"}
    batches = []
    client = SimpleNamespace(log_batch=lambda run_id, params: batches.append(params))
    mlflow_runs.log_params(client, "run", spec)
    assert [len(b) for b in batches] == [100, 53]
    values = {p.key: p.value for b in batches for p in b}
    assert len(values["name"]) == mlflow_runs.LONGEST and values["name"].endswith("limit)")
