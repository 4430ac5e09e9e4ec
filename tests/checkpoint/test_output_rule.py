"""The one output rule (nncli/checkpoint/outputs.py) through every command that writes a file it
names, and the file-system failures every write turns into exit 4: a read-only folder, a full
disk. Each case checks the exit code, the one line, and the sha256 of the file at stake."""

from __future__ import annotations

import errno
import os
import shutil
import types
from pathlib import Path

import h5py
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line, sha

from nncli.checkpoint import folder, outputs
from nncli.commands import evaluate as evaluate_command
from nncli.commands import predict as predict_command
from nncli.errors import CheckpointError, SpecError

IRIS_SPEC = iris_spec("{epochs: 2, batch_size: 16, checkpoint_every: 1}")
SEARCH = "search:\n  optimizer.learning_rate: {low: 1.0e-3, high: 0.1, log: true}\n"


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    shutil.copy(IRIS, folder / "iris.csv")
    (folder / "iris.yaml").write_text(IRIS_SPEC)
    (folder / "tune.yaml").write_text(IRIS_SPEC + SEARCH)
    assert invoke("train", folder / "iris.yaml", "--quiet").exit_code == 0
    return folder


@pytest.fixture
def work(trained_once: Path, tmp_path: Path) -> Path:
    """iris.csv, iris.yaml, tune.yaml (iris.yaml with a search: section) and out/ (iris.yaml's
    model.h5 and its run files)."""
    shutil.copytree(trained_once, tmp_path, dirs_exist_ok=True)
    return tmp_path


def writes(work: Path, target: Path, *extra: str) -> dict[str, list]:
    """Each writing command with ``target`` as its output (cv and tune: its folder)."""
    model = work / "out" / "model.h5"
    return {
        "predict": ["predict", model, work / "iris.csv", "--output", target, *extra],
        "evaluate": ["evaluate", model, work / "iris.csv", "--output", target, *extra],
        "export": ["export", model, "--output", target.with_suffix(".onnx"), *extra],
        "plot": ["plot", model, "--output", target.with_suffix(".png"), *extra],
        "init": ["init", work / "iris.csv", "--output", target.with_suffix(".yaml"), *extra],
        "cv": ["cv", work / "iris.yaml", "--folds", "2", "--output", target.parent, *extra],
        "tune": ["tune", work / "tune.yaml", "--trials", "1", "--output", target.parent, *extra],
    }


NEEDS = {"export": "onnx", "plot": "matplotlib", "cv": "optuna", "tune": "optuna"}
TARGETS = {"cv": "cv.csv", "tune": "trials.csv"}  # the file of its folder cv and tune write


def command_output(work: Path, command: str, target: Path) -> tuple[list, Path]:
    if command in NEEDS:
        pytest.importorskip(NEEDS[command])
    args = writes(work, target)[command]
    named = Path(args[args.index("--output") + 1])
    return args, target.parent / TARGETS[command] if command in TARGETS else named


# -- item 4: predict and evaluate never replace a spec, a run's files or its data -----------------
@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("victim", ["iris.yaml", "out/history.csv", "out/spec.resolved.yaml"])
def test_an_output_never_replaces_a_spec_or_a_runs_files_even_with_force(
    work: Path, command: str, victim: str
):
    target = work / victim
    before = sha(target)
    result = invoke(*writes(work, target, "--force")[command])
    words = "nncli spec" if victim == "iris.yaml" else "of the run"
    one_error_line(result, 2, str(target), words)
    assert sha(target) == before


def test_an_output_never_replaces_a_data_file_of_a_run_in_its_folder(work: Path):
    run = work / "run"
    run.mkdir()
    shutil.copy(IRIS, run / "train.csv")
    (run / "s.yaml").write_text(IRIS_SPEC.replace("iris.csv", "train.csv"))
    assert invoke("train", run / "s.yaml", "--output", run / "m.h5", "--quiet").exit_code == 0
    before = sha(run / "train.csv")
    args = writes(work, run / "train.csv", "--force")["predict"]
    one_error_line(invoke(*args), 2, "train.csv is the data file of the run", str(run / "m.h5"))
    assert sha(run / "train.csv") == before


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_an_output_replaces_its_own_earlier_file_and_anything_else_only_with_force(
    work: Path, command: str
):
    target = work / "result.txt"
    first = invoke(*writes(work, target)[command])
    assert first.exit_code == 0 and "wrote" in first.stderr, first.stderr
    again = invoke(*writes(work, target)[command])  # its own earlier output: no --force
    assert again.exit_code == 0 and f"replaced {target}" in again.stderr, again.stderr
    target.write_text("a user's notes\n")
    before = sha(target)
    one_error_line(invoke(*writes(work, target)[command]), 2, str(target), "--force")
    assert sha(target) == before
    forced = invoke(*writes(work, target, "--force")[command])
    assert forced.exit_code == 0 and f"replaced {target}" in forced.stderr, forced.stderr


def test_earlier_outputs_are_recognised_by_their_shape(tmp_path: Path):
    table = tmp_path / "p.csv"
    for header, ours in [
        ("prediction", True),
        ("id,prediction,proba_a,proba_b", True),
        ("step,prediction_x,prediction_y", True),
        ("prediction,notes", False),
        ("species,sepal", False),
    ]:
        table.write_text(header + "\n1\n")
        assert predict_command.is_predictions(table) == ours, header
    report = tmp_path / "e.json"
    report.write_text('{"data": "x.csv", "rows": 3, "metrics": {"loss": 1.0}}')
    assert evaluate_command.is_evaluation(report)
    report.write_text('{"data": "x.csv", "rows": 3}')
    assert not evaluate_command.is_evaluation(report)


# -- item 3 and the one rule: every writing command keeps an existing file without --force ---------
@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "plot", "init", "cv", "tune"])
def test_every_writing_command_keeps_a_users_file_without_force(work: Path, command: str):
    args, written = command_output(work, command, work / "results" / "x.csv")
    written.parent.mkdir(exist_ok=True)
    written.write_text("a user's file\n")
    before = sha(written)
    one_error_line(invoke(*args), 2, str(written), "exists", "--force")
    assert sha(written) == before
    assert sorted(p.name for p in written.parent.iterdir()) == [written.name]  # nothing else


def test_tune_keeps_a_users_best_yaml_and_best_folder_and_replaces_them_with_force(work: Path):
    pytest.importorskip("optuna")
    out = work / "t"
    out.mkdir()
    (out / "best.yaml").write_text("version: 1\n# my own best spec\n")
    before = sha(out / "best.yaml")
    args = writes(work, out / "x")["tune"]
    one_error_line(invoke(*args), 2, str(out / "best.yaml"), "--force")
    assert sha(out / "best.yaml") == before and sorted(os.listdir(out)) == ["best.yaml"]
    (out / "best.yaml").unlink()
    (out / "best").mkdir()
    (out / "best" / "model.h5").write_bytes(b"mine")
    one_error_line(invoke(*args), 2, str(out / "best"), "tune did not write", "--force")
    assert (out / "best" / "model.h5").read_bytes() == b"mine"
    (out / "best.yaml").write_text("version: 1\n")
    forced = invoke(*args, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert (out / "best.yaml").read_text().startswith("# nncli tune: trial 0")
    again = invoke(*args)  # tune's own files: the study goes on without --force
    assert again.exit_code == 0, again.stderr
    assert len((out / "trials.csv").read_text().splitlines()) == 3


# -- item 13: a read-only output folder is exit 4 for every command, before any work --------------
@pytest.fixture
def read_only(monkeypatch):
    """Folders under the returned path read as on a read-only file system (root would write
    into a chmod 0500 folder, so the system's answers are what is simulated)."""
    places: list[Path] = []
    access, statvfs = os.access, os.statvfs

    def inside(path) -> bool:
        real = Path(os.path.abspath(path))
        return any(real == p or p in real.parents for p in places)

    def no_writes(path, mode: int, **kwargs) -> bool:
        return False if mode & os.W_OK and inside(path) else access(path, mode, **kwargs)

    def read_only_mount(path) -> object:
        return types.SimpleNamespace(f_flag=os.ST_RDONLY) if inside(path) else statvfs(path)

    monkeypatch.setattr(os, "access", no_writes)
    monkeypatch.setattr(os, "statvfs", read_only_mount)
    return places


@pytest.mark.skipif(not hasattr(os, "statvfs"), reason="POSIX")
@pytest.mark.parametrize(
    "command", ["predict", "evaluate", "export", "plot", "init", "cv", "tune", "train"]
)
def test_a_read_only_output_folder_is_exit_4_before_any_work(work: Path, read_only, command: str):
    ro = work / "ro"
    ro.mkdir()
    read_only.append(ro)
    if command == "train":
        args, written = ["train", work / "iris.yaml", "--output", ro / "m.h5"], ro / "m.h5"
    else:
        args, written = command_output(work, command, ro / "x.csv")
    result = invoke(*args)
    one_error_line(result, 4, "Read-only file system")
    assert result.stdout == "" and os.listdir(ro) == []  # no fold, no trial, nothing written


def refuses(error: OSError):
    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    return refuse


@pytest.mark.parametrize("command", ["evaluate", "init"])
def test_a_write_the_system_refuses_after_the_checks_is_exit_4(work: Path, monkeypatch, command):
    """Between the check and the write a folder may turn read-only: the write says so."""
    refused = refuses(OSError(errno.EROFS, os.strerror(errno.EROFS)))
    if command == "init":
        write_text = Path.write_text

        def temp_refused(self: Path, *args: object, **kwargs: object) -> int:
            return (refused if ".tmp-" in self.name else write_text)(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", temp_refused)
    else:
        monkeypatch.setattr(os, "replace", refused)
    args, written = command_output(work, command, work / "x.csv")
    result = invoke(*args)
    if command == "evaluate":  # the note saying which rows were scored comes before the write
        note, _, error = result.stderr.partition("\n")
        assert note.startswith("nncli: note: scored the validation part"), result.stderr
        result.stderr_bytes = error.encode()
    one_error_line(result, 4, str(written), "cannot write", "Read-only file system")
    assert not written.exists() and not list(work.glob(".*.tmp-*"))


# -- item 12: a full disk in the middle of a checkpoint save --------------------------------------
H5_FULL = (
    "Unable to flush file (file write failed: time = Thu Jan  1 00:00:00 2026\n, filename = "
    "'{0}', file descriptor = 4, errno = 28, error message = 'No space left on device', buf = "
    "0x5639, total write size = 5948, bytes this sub-write = 5948, offset = 8192)"
)


def test_a_full_disk_during_a_save_is_exit_4_and_keeps_the_previous_checkpoint(
    work: Path, monkeypatch
):
    """What h5py 3 with HDF5 2 raises on a full disk (seen on a 64 KiB tmpfs): the flush's
    RuntimeError carrying errno 28, then a second RuntimeError from closing the file."""
    model, latest = work / "out" / "model.h5", work / "out" / "model.latest.h5"
    before = {p: sha(p) for p in (model, latest)}
    flush, close = h5py.File.flush, h5py.File.close

    def full(self) -> None:
        flush(self)
        raise RuntimeError(H5_FULL.format(self.filename))

    def close_after(self) -> None:
        writing = bool(self.id) and self.mode != "r"  # the reader's files close as ever
        close(self)
        if writing:
            raise RuntimeError("Slist already enabled? (slist already enabled?)")

    monkeypatch.setattr(h5py.File, "flush", full)
    monkeypatch.setattr(h5py.File, "close", close_after)
    result = invoke("train", work / "iris.yaml", "--resume", model, "--epochs", "3", "--quiet")
    line = one_error_line(result, 4, str(latest), "cannot write the checkpoint")
    assert "no space left on device" in line.lower() and "unchanged" in line
    assert {p: sha(p) for p in before} == before
    assert not list((work / "out").glob(".*.tmp-*"))


def test_a_save_that_cannot_fit_is_not_begun(work: Path, monkeypatch):
    """HDF5 may crash the process after a failed write (HDF5 2 with h5py 3.16 on a 64 KiB
    tmpfs, with arrays of tens of KiB): a save larger than the free space is refused first."""
    model = work / "out" / "model.h5"
    before = sha(model)
    usage = shutil.disk_usage(work)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1024))
    opened: list[str] = []
    monkeypatch.setattr(h5py.File, "flush", lambda self: opened.append(self.filename))
    result = invoke("train", work / "iris.yaml", "--output", model, "--force", "--quiet")
    line = one_error_line(result, 4, str(work / "out" / "model.latest.h5"), "needs at least")
    assert "No space left on device" in line and "1.0 KiB are free" in line
    assert sha(model) == before and opened == []
    assert not list((work / "out").glob(".*.tmp-*"))


def test_a_runtime_error_without_a_system_reason_stays_a_bug(work: Path, monkeypatch):
    monkeypatch.setattr(h5py.File, "flush", refuses(RuntimeError("not from the system")))
    result = invoke("train", work / "iris.yaml", "--output", work / "b.h5", "--quiet")
    assert result.exit_code == 1 and "internal error" in result.stderr


# -- item 15: links and folders where an output goes -----------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="symbolic links as POSIX makes them")
def test_a_dangling_link_output_needs_force_and_is_replaced_never_followed(work: Path):
    link = work / "p.csv"
    link.symlink_to(work / "nowhere" / "p.csv")
    args = writes(work, link)["predict"]
    one_error_line(invoke(*args), 2, str(link), "a link to", "--force")
    assert link.is_symlink()
    forced = invoke(*args, "--force")
    assert forced.exit_code == 0 and f"replaced {link}" in forced.stderr, forced.stderr
    assert not link.is_symlink() and predict_command.is_predictions(link)
    assert not (work / "nowhere").exists()


def test_an_output_that_is_a_folder_names_a_file_inside_it(work: Path):
    result = invoke("train", work / "iris.yaml", "--output", work / "out", "--force")
    example = f"--output {work / 'out' / 'model.h5'}"
    line = one_error_line(result, 2, f"{work / 'out'} is a folder", example)
    assert "--resume" not in line
    one_error_line(invoke(*writes(work, work / "out")["predict"]), 2, "is a folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX")
def test_an_output_that_is_a_fifo_is_refused_without_opening_it(work: Path):
    os.mkfifo(work / "pipe.csv")
    args = writes(work, work / "pipe.csv", "--force")["predict"]
    one_error_line(invoke(*args), 2, "not a regular file")


# -- the rule itself -------------------------------------------------------------------------------
def test_check_output_returns_whether_a_file_is_replaced(tmp_path: Path):
    target = tmp_path / "a.csv"
    assert outputs.check_output(target) is False
    target.write_text("x\n")
    with pytest.raises(SpecError, match="exists; pass --force"):
        outputs.check_output(target)
    assert outputs.check_output(target, force=True) is True
    assert outputs.check_output(target, own=lambda p: p.read_text() == "x\n") is True
    with pytest.raises(SpecError, match="no such folder"):
        outputs.check_output(tmp_path / "missing" / "a.csv")
    assert outputs.check_output(tmp_path / "missing" / "a.csv", makes_folder=True) is False


def test_write_atomic_maps_a_full_disk_to_a_checkpoint_error(tmp_path: Path, monkeypatch):
    target = tmp_path / "a.csv"
    target.write_text("before\n")
    monkeypatch.setattr(os, "fsync", refuses(OSError(errno.ENOSPC, "full")))
    with pytest.raises(CheckpointError, match="No space left on device.*unchanged"):
        folder.write_atomic(target, "after\n")
    assert target.read_text() == "before\n" and os.listdir(tmp_path) == ["a.csv"]
