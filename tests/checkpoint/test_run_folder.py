"""The run folder (nncli/checkpoint/folder.py, runs.py), where train and predict may write:
never onto an input, never over a file without consent, never onto another run's files, each
checkpoint with its own files, modes from the umask, and a stopped run's temporary files removed
by the next run."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line, sha

from nncli import spec as spec_module
from nncli.checkpoint import folder as outputs
from nncli.checkpoint import model as model_io
from nncli.checkpoint import runs
from nncli.commands import train as train_command
from nncli.errors import SpecError
from nncli.training.callbacks import Callback

IRIS_SPEC = iris_spec("{epochs: 2, batch_size: 16, checkpoint_every: 1}")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(IRIS, tmp_path / "iris.csv")
    (tmp_path / "iris.yaml").write_text(IRIS_SPEC)
    return tmp_path


@pytest.fixture
def trained(work: Path) -> Path:
    assert invoke("train", work / "iris.yaml", "--quiet").exit_code == 0
    return work / "out" / "model.h5"


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha(p) for p in sorted(folder.iterdir()) if p.is_file()}


# -- predict: never onto an input or a checkpoint; replaces an earlier table, and says so ----------
def test_predict_refuses_to_write_over_its_checkpoint_or_its_data(work: Path, trained: Path):
    before = hashes(work) | hashes(work / "out")
    for target, needle in ((trained, "input file"), (work / "iris.csv", "input file")):
        result = invoke("predict", trained, work / "iris.csv", "--output", target)
        one_error_line(result, 2, str(target), needle)
    other = work / "copy.h5"  # any HDF5 file, not only the one predict reads
    shutil.copy(trained, other)
    before[other.name] = sha(other)
    result = invoke("predict", trained, work / "iris.csv", "--output", other)
    one_error_line(result, 2, str(other), "HDF5 file")
    assert hashes(work) | hashes(work / "out") == before


def test_predict_replaces_an_earlier_predictions_file_and_says_so(work: Path, trained: Path):
    target = work / "predictions.csv"
    first = invoke("predict", trained, work / "iris.csv", "--output", target)
    assert first.exit_code == 0 and first.stderr.strip() == f"wrote 150 predictions to {target}"
    target.write_text(target.read_text().splitlines()[0] + "\nold\n")  # its header: predict's
    again = invoke("predict", trained, work / "iris.csv", "--output", target, "--proba")
    assert again.exit_code == 0, again.stderr
    assert again.stderr.strip() == f"replaced {target}: wrote 150 predictions"
    assert len(target.read_text().splitlines()) == 151
    assert target.read_text().startswith("prediction,proba_")


def test_check_outputs_refuses_an_hdf5_file_only_for_tables(tmp_path: Path):
    h5 = tmp_path / "renamed.csv"
    h5.write_bytes(b"\0" * 512 + outputs.HDF5_SIGNATURE + b"\0" * 100)  # after a user block
    with pytest.raises(SpecError, match="HDF5 file"):
        outputs.check_outputs([h5], [], table=True)
    outputs.check_outputs([h5], [])  # a checkpoint may replace a checkpoint (with --force)
    (tmp_path / "plain.csv").write_text("a\n1\n")
    outputs.check_outputs([tmp_path / "plain.csv", tmp_path / "new.csv"], [], table=True)


# -- train: the spec is an input; existing files need --force, resume included ---------------------
def test_train_refuses_an_output_on_its_spec(work: Path):
    before = sha(work / "iris.yaml")
    result = invoke("train", work / "iris.yaml", "--output", work / "iris.yaml")
    one_error_line(result, 2, "input file", "iris.yaml")
    assert sha(work / "iris.yaml") == before and not (work / "out").exists()


def test_resume_into_another_runs_checkpoint_needs_force(work: Path, trained: Path):
    spec, other = work / "iris.yaml", work / "x" / "model.h5"
    assert invoke("train", spec, "--output", other, "--quiet").exit_code == 0
    before = hashes(other.parent)
    result = invoke("train", spec, "--resume", trained, "--output", other, "--epochs", "3")
    one_error_line(result, 2, str(other), "not part of the run", "--force")
    assert hashes(other.parent) == before
    forced = invoke(
        "train", spec, "--resume", trained, "--output", other, "--epochs", "3", "--force"
    )
    assert forced.exit_code == 0, forced.stderr
    assert model_io.load(other).training["epoch"] == 3


def test_resume_in_place_needs_no_force(work: Path, trained: Path):
    spec, latest = work / "iris.yaml", work / "out" / "model.latest.h5"
    for resume, epochs in ((trained, "3"), (latest, "4")):  # the run's own checkpoint or latest
        result = invoke("train", spec, "--resume", resume, "--epochs", epochs, "--quiet")
        assert result.exit_code == 0, result.stderr
        assert model_io.load(trained).training["epoch"] == int(epochs)


def test_a_fresh_run_keeps_an_interrupted_runs_latest_checkpoint(work: Path, trained: Path):
    trained.unlink()  # what an interrupted run leaves: the latest checkpoint, no final one
    latest = work / "out" / "model.latest.h5"
    before = sha(latest)
    result = invoke("train", work / "iris.yaml")
    one_error_line(result, 2, str(latest), f"--resume {latest}", "--force")
    assert sha(latest) == before and not trained.exists()


# -- several checkpoints in one folder -------------------------------------------------------------
def test_checkpoints_in_one_folder_keep_their_own_history_and_resolved_spec(work: Path):
    spec, run = work / "iris.yaml", work / "run"
    assert invoke("train", spec, "--output", run / "a.h5", "--quiet").exit_code == 0
    a_files = hashes(run)
    assert sorted(a_files) == [
        "a.h5",
        "a.history.csv",
        "a.latest.h5",
        "a.spec.resolved.yaml",
    ]
    result = invoke("train", spec, "--output", run / "b.h5", "--epochs", "3")
    assert result.exit_code == 0, result.stderr
    assert f"saved {run / 'b.history.csv'}" in result.stdout
    after = hashes(run)
    assert {k: after[k] for k in a_files} == a_files  # writing b changed none of a's files
    assert len((run / "a.history.csv").read_text().splitlines()) == 3  # 2 epochs + header
    assert len((run / "b.history.csv").read_text().splitlines()) == 4
    assert "epochs: 3" in (run / "b.spec.resolved.yaml").read_text()
    assert not (run / "history.csv").exists() and not list(run.glob(".*"))


class StartsAnother(Callback):
    """At its run's first epoch, starts a second run into the same folder (``nncli train``)."""

    def __init__(self, *args: object):
        self.args, self.result = args, None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.result is None:
            self.result = invoke("train", *self.args)


@pytest.mark.parametrize("first", ["model.latest.h5", "model.h5"])
def test_two_runs_at_once_never_share_a_file_name(work: Path, first: str):
    """``--output cc/model.latest.h5`` is the periodic checkpoint of a ``cc/model.h5`` run with
    checkpoint_every: whichever starts second stops (exit 2), naming the running one."""
    cc = work / "cc"
    second = "model.h5" if first == "model.latest.h5" else "model.latest.h5"
    other = StartsAnother(work / "iris.yaml", "--output", cc / second, "--force")
    spec = spec_module.load(work / "iris.yaml")
    done = train_command.train(spec, output=cc / first, callbacks=[other])
    line = one_error_line(other.result, 2, f"{cc / 'model.latest.h5'}", f"process {os.getpid()}")
    assert "running" in line and f"the run {cc / first}" in line
    assert set(hashes(cc)) <= {p.name for p in outputs.run_files(cc / first).written()}
    assert model_io.load(cc / "model.latest.h5").training["epoch"] == 2  # the first run's, whole
    assert model_io.load(done.output).training["epoch"] == 2


@pytest.mark.parametrize("first", ["model.latest.h5", "model.h5"])
def test_a_name_an_ended_runs_files_use_is_refused_even_with_force(work: Path, first: str):
    cc = work / "cc"
    second = "model.h5" if first == "model.latest.h5" else "model.latest.h5"
    assert invoke("train", work / "iris.yaml", "--output", cc / first, "--quiet").exit_code == 0
    before = hashes(cc)
    result = invoke("train", work / "iris.yaml", "--output", cc / second, "--force")
    line = one_error_line(result, 2, str(cc / "model.latest.h5"), f"the run {cc / first}")
    assert "never replaced" in line and "process" not in line  # it has ended
    assert hashes(cc) == before  # sha256 of every file, model.latest.h5 among them
    again = invoke("train", work / "iris.yaml", "--output", cc / first, "--force", "--quiet")
    assert again.exit_code == 0, again.stderr  # the run itself may be run again


def test_run_files_keep_plain_names_for_the_default_checkpoint(tmp_path: Path):
    plain, named = outputs.run_files(tmp_path / "model.h5"), outputs.run_files(tmp_path / "a.h5")
    assert [p.name for p in plain.written()] == [
        "model.h5", "model.latest.h5", "model.best.h5", "history.csv", "spec.resolved.yaml"
    ]  # fmt: skip
    assert [p.name for p in named.written()] == [
        "a.h5", "a.latest.h5", "a.best.h5", "a.history.csv", "a.spec.resolved.yaml"
    ]  # fmt: skip
    assert (plain.lock.name, named.lock.name) == (".nncli.lock", ".a.nncli.lock")


# -- modes follow the umask ------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_every_output_takes_its_mode_from_the_umask(work: Path, umask: int):
    old = os.umask(umask)
    try:
        assert invoke("train", work / "iris.yaml", "--quiet").exit_code == 0
        model = work / "out" / "model.h5"
        result = invoke("predict", model, work / "iris.csv", "--output", work / "p.csv")
        assert result.exit_code == 0, result.stderr
    finally:
        os.umask(old)
    written = [p for p in (work / "out").iterdir()] + [work / "p.csv"]
    assert {p.name for p in written} == {
        "model.h5", "model.latest.h5", "history.csv", "spec.resolved.yaml", "p.csv"
    }  # fmt: skip
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


# -- a stopped run's temporary files: a checkpoint of the folder's, an HDF5 file in progress ----
IN_PROGRESS = outputs.HDF5_SIGNATURE + b"partial"  # what a save killed midway leaves


def test_the_next_run_removes_a_stopped_runs_temporary_files_and_says_so(work: Path):
    out = work / "out"
    out.mkdir()
    pid = dead_pid()
    stale = out / f".model.latest.h5.tmp-{pid}-0a1b2c3d"
    stale_best = out / f".model.best.h5.tmp-{pid}-deadbeef"
    live = out / f".model.latest.h5.tmp-{os.getppid()}-0a1b2c3d"  # alive, not ours
    for path in (stale, stale_best, live):
        path.write_bytes(IN_PROGRESS)
    result = invoke("train", work / "iris.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nncli: note: removed 2 temporary files")
    assert stale.name in lines[0] and stale_best.name in lines[0]
    assert not stale.exists() and not stale_best.exists() and live.exists()


def test_remove_stale_temps_touches_only_dead_writers_checkpoints_in_progress(tmp_path: Path):
    pid = dead_pid()
    names = {
        f".a.h5.tmp-{pid}-00ff": IN_PROGRESS,  # a.h5's save, writer dead: removed
        f".a.latest.h5.tmp-{pid}-00ff": IN_PROGRESS,  # its periodic checkpoint's: removed
        f".a.h5.tmp-{os.getpid()}-00ff": IN_PROGRESS,  # this process: kept
        f".a.h5.tmp-{pid}-0aff": b"not an HDF5 file",  # a name like nncli's, not its content
        f".notes.txt.tmp-{pid}-00ff": IN_PROGRESS,  # no checkpoint of this folder
        f".history.csv.tmp-{pid}-00ff": IN_PROGRESS,  # a run's file, not a checkpoint
        f"a.h5.tmp-{pid}-00ff": IN_PROGRESS,  # not hidden: not a name nncli writes
        f".a.h5.tmp-{pid}-xyz": IN_PROGRESS,  # not hex
        f".nncli.lock.stale-{pid}-00ff": IN_PROGRESS,  # the lock's business
    }
    for name, content in names.items():
        (tmp_path / name).write_bytes(content)
    target = tmp_path / "elsewhere.h5"
    target.write_bytes(IN_PROGRESS)
    (tmp_path / f".b.h5.tmp-{pid}-0bff").symlink_to(target)  # a link is never a save
    before = {p.name: sha(p) for p in tmp_path.iterdir()}
    removed = runs.remove_stale_temps(tmp_path, outputs.run_files(tmp_path / "a.h5"))
    assert [p.name for p in removed] == sorted(list(names)[:2])
    assert {p.name: sha(p) for p in tmp_path.iterdir()} == {
        k: v for k, v in before.items() if k not in list(names)[:2]
    }
    (tmp_path / "b.h5").write_bytes(IN_PROGRESS)  # b.h5 now a checkpoint here; its link stays
    assert runs.remove_stale_temps(tmp_path) == []
    assert runs.remove_stale_temps(tmp_path / "missing") == []


def test_a_temporary_file_of_another_checkpoint_in_the_folder_is_removed_too(tmp_path: Path):
    (tmp_path / "b.h5").write_bytes(IN_PROGRESS)  # another run's checkpoint in the folder
    stale = tmp_path / f".b.best.h5.tmp-{dead_pid()}-00ff"
    stale.write_bytes(IN_PROGRESS)
    assert runs.remove_stale_temps(tmp_path, outputs.run_files(tmp_path / "a.h5")) == [stale]


def test_no_temporary_file_is_removed_while_another_host_holds_a_lock_there(tmp_path: Path):
    stale = tmp_path / f".a.h5.tmp-{dead_pid()}-00ff"  # dead here, maybe alive on that host
    stale.write_bytes(IN_PROGRESS)
    files = outputs.run_files(tmp_path / "a.h5")
    (tmp_path / ".b.nncli.lock").write_text("4242 some-other-host\n")
    assert runs.remove_stale_temps(tmp_path, files) == [] and stale.exists()
    (tmp_path / ".b.nncli.lock").unlink()
    assert runs.remove_stale_temps(tmp_path, files) == [stale] and not stale.exists()


# -- where outputs land: one rule -----------------------------------------------------------------
def test_paths_in_a_spec_follow_the_spec_and_the_rest_the_current_folder(tmp_path, monkeypatch):
    """README, "Where paths point": data paths and ``output:`` written in a spec are relative to
    the spec's folder; ``--output``, ``--set`` paths and the default ``runs/<name>/`` to the
    current folder."""
    specs, here = tmp_path / "specs", tmp_path / "here"
    specs.mkdir()
    here.mkdir()
    shutil.copy(IRIS, specs / "iris.csv")
    shutil.copy(IRIS, here / "local.csv")
    text = iris_spec("{epochs: 1, batch_size: 16}")  # data iris.csv, output out/model.h5
    (specs / "a.yaml").write_text(text)
    (specs / "b.yaml").write_text(text.replace("output: out/model.h5\n", ""))
    monkeypatch.chdir(here)
    cases = [
        (["../specs/a.yaml"], specs / "out" / "model.h5"),  # output: written in the spec
        (["../specs/b.yaml"], here / "runs" / "b" / "model.h5"),  # no output: the default
        (["../specs/a.yaml", "--output", "o/m.h5"], here / "o" / "m.h5"),
        (["../specs/a.yaml", "--set", "output=s/m.h5"], here / "s" / "m.h5"),
        (
            ["../specs/a.yaml", "--set", "data.path=local.csv", "--output", "d/m.h5"],
            here / "d/m.h5",
        ),
    ]
    for args, checkpoint in cases:
        result = invoke("train", *args, "--quiet")
        assert result.exit_code == 0, (args, result.stderr)
        assert checkpoint.is_file(), (args, sorted(map(str, tmp_path.rglob("*.h5"))))
    data = {p: model_io.load(p).spec_yaml for _, p in cases}
    assert f"path: {specs / 'iris.csv'}" in data[specs / "out" / "model.h5"]  # the spec's folder
    assert f"path: {here / 'local.csv'}" in data[here / "d" / "m.h5"]  # --set: the current one
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.h5")) == sorted(
        p.relative_to(tmp_path).as_posix() for _, p in cases
    )  # nothing anywhere else
    for args, table in [([], here / "runs" / "b-cv"), (["--output", "c"], here / "c")]:
        result = invoke("cv", "../specs/b.yaml", "--folds", 2, *args)
        assert result.exit_code == 0, (args, result.stderr)
        assert (table / "cv.csv").is_file()
