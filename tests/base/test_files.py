"""Which paths nncli reads and writes (nncli/bounds/files.py): a device, a named pipe or a link
loop is refused by name before it is opened (data exit 3, checkpoints exit 4, specs exit 2),
and a checkpoint path under /proc, on a device or through a file is refused before anything
is made.

Runs that could hang or fill memory if a check were missing run in a subprocess under an
address-space limit and a hang guard, so a regression fails the test instead of the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import IMAGE_SPEC, IRIS, image_folder, invoke, iris_spec, one_error_line

from nncli.bounds.files import not_regular, output_problem, require_regular
from nncli.errors import DataError

HANG_GUARD = 60  # seconds: a reader blocked on a named pipe fails the test instead of CI
MEMORY_CAP = 2 << 30  # bytes of address space: reading /dev/zero whole would pass it at once
posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")


def bounded(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    """``nncli ARGS`` in a child process with at most ``MEMORY_CAP`` of memory and a hang guard."""

    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    command = [sys.executable, "-m", "nncli", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    try:
        return subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=HANG_GUARD,
            preexec_fn=cap,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang guard: {' '.join(command)} still running after {HANG_GUARD} s")


def one_line(job: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    assert job.returncode == code, (job.returncode, job.stderr)
    lines = job.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nncli: error: "), job.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs named pipes (POSIX)")
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_what_a_path_is_when_it_is_not_a_regular_file(tmp_path: Path, fifo: Path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert not_regular(IRIS) is None
    assert not_regular(tmp_path / "absent") is None  # the reader names a missing file
    assert not_regular(tmp_path) == "a folder"
    assert not_regular(fifo) == "a named pipe (FIFO)"
    assert not_regular(loop) == "a symbolic link loop"
    assert not_regular(tmp_path / "dangling") == "a dangling symbolic link"
    if Path("/dev/zero").exists():
        assert not_regular("/dev/zero") == "a character device"
    with pytest.raises(DataError, match="pipe is a named pipe \\(FIFO\\); expected a regular"):
        require_regular(fifo, DataError)
    require_regular(tmp_path, DataError, folder=True)


@posix_only
@pytest.mark.parametrize("source", ["/dev/zero", "pipe"])
@pytest.mark.parametrize("kind", ["csv", "text"])
def test_data_that_is_a_device_or_a_named_pipe_is_refused_naming_it(tmp_path, kind, source):
    os.mkfifo(tmp_path / "pipe")
    if not Path(source).exists() and source.startswith("/"):
        pytest.skip(f"no {source}")
    data = {
        "csv": f"{{kind: csv, path: {source}, target: species}}",
        "text": f"{{kind: text, path: {source}, sequence_length: 8}}",
    }[kind]
    last = "{type: dense, units: auto, activation: softmax}"
    layers = f"[flatten, {last}]" if kind == "text" else f"[{last}]"
    spec = f"data: {data}\nmodel: {{layers: {layers}}}\nloss: cross_entropy\n"
    (tmp_path / "spec.yaml").write_text(spec)
    found = "a character device" if source.startswith("/") else "a named pipe (FIFO)"
    one_line(bounded("validate", "spec.yaml", cwd=tmp_path), 3, "data.path", source, found)


@posix_only
def test_checkpoints_specs_and_inputs_that_are_named_pipes_are_refused(tmp_path: Path):
    """A named pipe given where a checkpoint, a spec or a file to predict is expected."""
    shutil.copy(IRIS, tmp_path / "iris.csv")
    (tmp_path / "iris.yaml").write_text(iris_spec("{epochs: 1, batch_size: 16}"))
    os.mkfifo(tmp_path / "model.h5")
    os.mkfifo(tmp_path / "spec.yaml")
    os.mkfifo(tmp_path / "new.csv")
    job = bounded("inspect", "model.h5", cwd=tmp_path)
    one_line(job, 4, "model.h5 is a named pipe (FIFO)")
    job = bounded("predict", "model.h5", "iris.csv", cwd=tmp_path)
    one_line(job, 4, "model.h5 is a named pipe")
    job = bounded("train", "iris.yaml", "--resume", "model.h5", "--output", "b/m.h5", cwd=tmp_path)
    one_line(job, 4, "model.h5 is a named pipe")
    one_line(bounded("validate", "spec.yaml", cwd=tmp_path), 2, "spec.yaml is a named pipe")
    one_line(bounded("init", "new.csv", cwd=tmp_path), 3, "new.csv is a named pipe")
    assert bounded("train", "iris.yaml", "--quiet", cwd=tmp_path).returncode == 0
    job = bounded("predict", "out/model.h5", "new.csv", cwd=tmp_path)
    one_line(job, 3, "new.csv is a named pipe")


@posix_only
@pytest.mark.parametrize("entry", ["loop", "pipe", "dangling"])
def test_an_image_entry_that_cannot_be_read_needs_skip_bad(tmp_path: Path, entry: str):
    """A link loop, a named pipe or a link to nothing in a class folder is an unreadable image:
    an error naming it, or with --skip-bad left out and counted (it used to vanish silently)."""
    image_folder(tmp_path / "d")
    bad = tmp_path / "d" / "light" / "x.png"
    {
        "loop": lambda: bad.symlink_to(bad),
        "pipe": lambda: os.mkfifo(bad),
        "dangling": lambda: bad.symlink_to(tmp_path / "nowhere.png"),
    }[entry]()
    (tmp_path / "spec.yaml").write_text(IMAGE_SPEC)
    job = bounded("train", "spec.yaml", "--quiet", cwd=tmp_path)
    one_line(job, 3, "x.png", "expected a regular file", "--skip-bad")
    assert not (tmp_path / "out").exists()
    job = bounded("train", "spec.yaml", "--quiet", "--skip-bad", cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    assert "skipped 1 unreadable image (the first: " in job.stderr and "x.png" in job.stderr


def test_output_problems_are_found_without_creating_anything(tmp_path: Path):
    (tmp_path / "file.csv").write_text("a\n1\n")
    assert output_problem(tmp_path / "run" / "model.h5") is None
    assert output_problem(tmp_path / "model.h5") is None
    assert "file.csv is a file, not a folder" in output_problem(tmp_path / "file.csv" / "m.h5")
    assert "is a folder; expected a checkpoint file" in output_problem(tmp_path)
    assert "300 bytes long, over 255" in output_problem(tmp_path / ("a" * 300) / "m.h5")
    if Path("/proc/self").exists():
        assert "under /proc" in output_problem("/proc/self/mem")
    if Path("/dev/null").exists():
        assert "/dev/null is a character device" in output_problem("/dev/null")
        assert "under /dev" in output_problem("/dev/model.h5")
    if Path("/dev/shm").is_dir():  # an ordinary file system (tmpfs) inside /dev
        assert output_problem("/dev/shm/nncli-run/model.h5") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.csv"]


@pytest.mark.parametrize(
    "output, needle",
    [("/proc/self/mem", "under /proc"), ("iris.csv/model.h5", "iris.csv is a file")],
)
def test_validate_and_train_refuse_an_output_where_no_checkpoint_can_be(
    tmp_path, monkeypatch, output, needle
):
    if output.startswith("/proc") and not Path("/proc/self").exists():
        pytest.skip("no /proc")
    monkeypatch.chdir(tmp_path)
    shutil.copy(IRIS, "iris.csv")
    Path("iris.yaml").write_text(iris_spec("{epochs: 1}"))
    line = one_error_line(invoke("validate", "iris.yaml", "--set", f"output={output}"), 2, needle)
    assert "output: cannot write a checkpoint there" in line
    line = one_error_line(invoke("train", "iris.yaml", "--output", output), 2, needle)
    assert "--output: cannot write a checkpoint there" in line
    assert sorted(os.listdir()) == ["iris.csv", "iris.yaml"]
