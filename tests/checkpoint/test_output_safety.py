"""Outputs and inputs that must stay safe: one run per output folder (the lock), outputs that
would land on inputs, readers racing a writer, hostile CSV files, and a checkpoint's embedded
spec, which predict, evaluate and inspect never take a path from."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line, sha

from nncli import checkpoint
from nncli.checkpoint import folder as outputs
from nncli.checkpoint import lock as folder_lock
from nncli.checkpoint import model as model_io
from nncli.errors import CheckpointError, SpecError

IRIS_SPEC = iris_spec("{epochs: 2, batch_size: 16}")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(IRIS, tmp_path / "iris.csv")
    (tmp_path / "iris.yaml").write_text(IRIS_SPEC)
    return tmp_path


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- the lock --------------------------------------------------------------------------------------
HOLD_LOCK = """
import sys, time
from nncli.checkpoint.lock import hold
with hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_held_lock_stops_a_second_run_with_exit_2_and_a_killed_holder_frees_it(work: Path):
    out = work / "out"
    lock = out / ".nncli.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = sha(lock)
        one_error_line(invoke("train", work / "iris.yaml"), 2, f"process {holder.pid}", str(lock))
        assert sha(lock) == before and sorted(p.name for p in out.iterdir()) == [".nncli.lock"]
    finally:
        holder.kill()
        holder.communicate(timeout=60)
    assert lock.read_text().split()[0] == str(holder.pid)  # left behind, but no longer locked
    result = invoke("train", work / "iris.yaml", "--quiet")
    assert result.exit_code == 0 and result.stderr == "", result.stderr  # no takeover to tell
    assert not lock.exists() and (out / "model.h5").exists()


def test_the_busy_message_names_the_owner_the_lock_file_records(work: Path):
    out = work / "out"
    with folder_lock.hold(out) as lock:
        lock.write_text("4242 some-other-host\n")
        one_error_line(invoke("train", work / "iris.yaml"), 2, "process 4242 on some-other-host")
        lock.write_text("")  # the owner has the lock and is writing its pid
        one_error_line(invoke("train", work / "iris.yaml"), 2, "locked by another nncli run")


def test_a_lock_file_left_by_a_dead_process_is_no_lock(work: Path):
    out = work / "out"
    out.mkdir()
    (out / ".nncli.lock").write_text(f"{dead_pid()} {socket.gethostname()}\n")
    result = invoke("train", work / "iris.yaml", "--quiet")
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    assert not (out / ".nncli.lock").exists() and (out / "model.h5").exists()


def test_the_lock_goes_on_errors_and_so_do_the_folders_made_for_it(work: Path):
    (work / "iris.csv").write_text("sepal_length_cm,species\n")
    one_error_line(invoke("train", work / "iris.yaml"), 3, "no data rows")
    assert not (work / "out").exists()
    (work / "keep").mkdir()
    spec = work / "iris.yaml"
    one_error_line(invoke("train", spec, "--output", work / "keep" / "m.h5"), 3, "no data rows")
    assert list((work / "keep").iterdir()) == []  # a folder it did not make stays


def test_hold_is_exclusive_within_one_process_and_takes_an_unlocked_lock_file(tmp_path: Path):
    with folder_lock.hold(tmp_path / "a" / "b") as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
        busy = pytest.raises(SpecError, match="in use by another nncli run")
        with busy, folder_lock.hold(tmp_path / "a" / "b"):
            pass
        assert lock.exists()
    assert not (tmp_path / "a").exists()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / ".nncli.lock").write_text("4242 a-host\n")  # nncli's, but nobody locks it
    with folder_lock.hold(tmp_path / "c") as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
    assert list((tmp_path / "c").iterdir()) == []


LOCK_IMPOSTORS = {  # what may sit where a run's lock goes -> the words of its refusal
    "symlink": "symbolic link",  # ln -s ../victim.txt out/.nncli.lock
    "dangling": "symbolic link",  # ln -s nowhere out/.nncli.lock
    "hardlink": "hard link",  # ln victim.txt out/.nncli.lock
    "foreign": "did not write",  # a file of the user's, named like a lock
    "fifo": "not a regular file",
}


@pytest.mark.skipif(os.name != "posix", reason="links and FIFOs as POSIX makes them")
@pytest.mark.parametrize("kind", sorted(LOCK_IMPOSTORS))
def test_a_lock_file_nncli_did_not_write_is_refused_and_what_it_reaches_is_unchanged(
    work: Path, kind: str
):
    victim, out = work / "victim.txt", work / "out"
    victim.write_text("precious\n")
    out.mkdir()
    lock = out / ".nncli.lock"
    make = {
        "symlink": lambda: lock.symlink_to(Path("..", "victim.txt")),
        "dangling": lambda: lock.symlink_to("nowhere"),
        "hardlink": lambda: os.link(victim, lock),
        "foreign": lambda: lock.write_text("my notes\n"),
        "fifo": lambda: os.mkfifo(lock),
    }
    make[kind]()
    kept = {p: sha(p) for p in (victim, lock) if p.is_file()}
    result = invoke("train", work / "iris.yaml", "--output", out / "model.h5")
    one_error_line(result, 4, str(lock), LOCK_IMPOSTORS[kind], "remove it")
    assert {p: sha(p) for p in kept} == kept  # the file the link reaches, byte for byte
    assert os.path.lexists(lock) and not (work / "nowhere").exists()
    assert sorted(p.name for p in out.iterdir()) == [".nncli.lock"]  # nothing trained


def test_a_run_records_its_claims_in_its_lock(tmp_path: Path):
    with folder_lock.hold(tmp_path, name=".a.nncli.lock", claims=["a.h5", "a.history.csv"]):
        [holder] = folder_lock.holders(tmp_path)
    assert (holder.pid, holder.host) == (os.getpid(), socket.gethostname())
    assert holder.claims == ["a.h5", "a.history.csv"] and holder.lock.name == ".a.nncli.lock"
    assert folder_lock.holders(tmp_path) == []  # released: the file went
    (tmp_path / ".b.nncli.lock").write_text(f"{dead_pid()} {socket.gethostname()}\n[]\n")
    assert folder_lock.holders(tmp_path) == []  # a dead run's lock holds nothing


# -- outputs that would land on inputs -------------------------------------------------------------
def test_an_output_on_an_input_file_is_refused_before_training(work: Path):
    before = sha(work / "iris.csv")
    one_error_line(invoke("train", work / "iris.yaml", "--output", work / "iris.csv"), 2, "input")
    (work / "data").mkdir()
    shutil.copy(IRIS, work / "data" / "history.csv")  # what the run writes next to its model
    spec = IRIS_SPEC.replace("path: iris.csv", "path: data/history.csv")
    (work / "h.yaml").write_text(spec.replace("out/model.h5", "data/model.h5"))
    one_error_line(invoke("train", work / "h.yaml"), 2, "history.csv", "input file")
    assert sha(work / "iris.csv") == before == sha(work / "data" / "history.csv")
    assert sorted(p.name for p in (work / "data").iterdir()) == ["history.csv"]


def test_an_output_inside_an_image_folder_is_refused_before_training(tmp_path: Path):
    (tmp_path / "pics" / "cat").mkdir(parents=True)
    spec = IRIS_SPEC.replace(
        "kind: csv, path: iris.csv, target: species", "kind: images, path: pics"
    )
    (tmp_path / "s.yaml").write_text(spec.replace("out/model.h5", "pics/runs/model.h5"))
    one_error_line(invoke("train", tmp_path / "s.yaml"), 2, "inside the input folder")
    assert [p.name for p in (tmp_path / "pics").iterdir()] == ["cat"]  # no runs/ class folder


def test_an_output_inside_an_input_folder_is_refused(tmp_path: Path):
    images = tmp_path / "images"
    (images / "cat").mkdir(parents=True)
    (tmp_path / "link").symlink_to(images)
    for out in (images / "runs" / "model.h5", tmp_path / "link" / "model.h5", images):
        with pytest.raises(SpecError, match="inside the input folder"):
            outputs.check_outputs([out], [images])
    outputs.check_outputs([tmp_path / "images-out" / "model.h5"], [images, None])
    data, hard = tmp_path / "data.csv", tmp_path / "hard.csv"
    data.write_text("a,b\n1,2\n")
    os.link(data, hard)  # another name for the same file
    with pytest.raises(SpecError, match="input file"):
        outputs.check_outputs([hard], [data])


# -- readers racing a writer -----------------------------------------------------------------------
WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from nncli.checkpoint import model as model_io
from nncli.engine import LOSSES
from nncli.engine.network import Sequential
from nncli.engine.history import History
path, stop = Path(sys.argv[1]), Path(sys.argv[2])
net = Sequential([{"type": "dense", "units": 96}, {"type": "dense", "units": 96}], (96,))
data = {"kind": "csv", "input_shape": [96], "dtype": "float32"}
saves, deadline = 0, time.monotonic() + 30
while not stop.exists() and time.monotonic() < deadline:
    net.set_weights({k: np.full(v.shape, saves % 2) for k, v in net.get_weights().items()})
    model_io.save(path, net=net, loss=LOSSES.create("mse"), data=data, spec_yaml="",
                  optimizer=None, history=History(), seed=0)
    saves += 1
print(saves)
"""


def test_readers_see_the_old_or_the_new_checkpoint_never_a_partial_one(tmp_path: Path):
    from nncli.commands.inspect import inspect

    path, stop = tmp_path / "model.h5", tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        hang_guard = time.monotonic() + 60  # only against a hang: the test counts, never times
        while not path.exists():
            assert writer.poll() is None, "the writer failed"
            if time.monotonic() > hang_guard:
                pytest.fail("the writer wrote no checkpoint")
            time.sleep(0.01)
        versions, loads = set(), 0
        while loads < 20 or len(versions) < 2:  # counted, not timed: a loaded machine is slower
            if time.monotonic() > hang_guard:
                pytest.fail(f"saw only versions {versions}")
            weights = model_io.load(path).net.get_weights()  # never raises: always complete
            values = {float(v) for w in weights.values() for v in np.unique(w)}
            assert values in ({0.0}, {1.0}), values  # one whole version, never a mix
            versions |= values
            loads += 1
            if loads % 10 == 0:
                assert inspect(path)["total_params"] == 2 * (96 * 96 + 96)
    finally:
        stop.touch()
        saves = int(writer.communicate(timeout=60)[0])
    assert writer.returncode == 0 and saves > 10 and loads > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5", "stop"]  # no temp file


# -- hostile CSV files through the command line ----------------------------------------------------
HEADER = "x1,x2,city,label"
ROWS = [
    f'{i % 5}.5,{i % 3},"Paris, {"north" if i % 2 else "south"}",{"ab"[i % 2]}' for i in range(20)
]


def csv_bytes(rows: list[str], newline: str = "\n", bom: bool = False) -> bytes:
    return (("\ufeff" if bom else "") + newline.join([HEADER, *rows]) + newline).encode()


HOSTILE = [
    (csv_bytes(ROWS[:3] + ["1.5,2"] + ROWS[4:]), "line 5 has 2 fields, expected 4"),
    (csv_bytes(ROWS[:3] + ["1.5,2,x,a,9"] + ROWS[4:]), "line 5 has 5 fields, expected 4"),
    (csv_bytes(ROWS).replace(b"Paris, north", b"Paris, n\xf6rth", 1), "line 3: byte 0xf6"),
    (csv_bytes([]), "header but no data rows"),
    (b"", "empty"),
    (b"x1,x1,city,label\n1,2,a,b\n", "'x1' appears twice"),
    (csv_bytes(ROWS[:5] + ['1.5,2,"Paris, north,a'] + ROWS[6:]), "line 7"),
]


@pytest.mark.parametrize(
    ("content", "needle"),
    HOSTILE,
    ids=["short-row", "long-row", "latin-1", "header-only", "empty", "dup-header", "open-quote"],
)
def test_a_hostile_csv_gives_one_line_with_its_row(tmp_path: Path, content: bytes, needle: str):
    (tmp_path / "good.csv").write_bytes(csv_bytes(ROWS))
    (tmp_path / "bad.csv").write_bytes(content)
    spec = IRIS_SPEC.replace("iris.csv", "bad.csv").replace("species", "label")
    (tmp_path / "s.yaml").write_text(spec.replace("validation_split: 0.2", "validation_split: 0"))
    one_error_line(invoke("train", tmp_path / "s.yaml"), 3, "bad.csv", needle)
    (tmp_path / "s.yaml").write_text(spec.replace("bad.csv", "good.csv"))
    assert invoke("train", tmp_path / "s.yaml", "--quiet").exit_code == 0
    model = tmp_path / "out" / "model.h5"
    for command in ("predict", "evaluate"):
        one_error_line(invoke(command, model, tmp_path / "bad.csv"), 3, "bad.csv", needle)


def test_bom_crlf_and_quoted_commas_train_and_predict_like_a_plain_file(tmp_path: Path):
    spec = IRIS_SPEC.replace("species", "label").replace("out/", "{out}/")
    for name, content in (
        ("plain", csv_bytes(ROWS)),
        ("windows", csv_bytes(ROWS, newline="\r\n", bom=True)),
    ):
        (tmp_path / f"{name}.csv").write_bytes(content)
        (tmp_path / f"{name}.yaml").write_text(
            spec.replace("iris.csv", f"{name}.csv").replace("{out}", name)
        )
        assert invoke("train", tmp_path / f"{name}.yaml", "--quiet").exit_code == 0
    plain, windows = (h5py.File(tmp_path / n / "model.h5", "r") for n in ("plain", "windows"))
    with plain, windows:
        for layer in plain["model"]:
            for p in plain["model"][layer]:
                np.testing.assert_array_equal(plain["model"][layer][p], windows["model"][layer][p])
    result = invoke("predict", tmp_path / "plain" / "model.h5", tmp_path / "windows.csv")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 21


# -- the embedded spec is untrusted ----------------------------------------------------------------
RECORDED: list[tuple[str, tuple]] | None = None


def _audit(event: str, args: tuple) -> None:
    if RECORDED is None or not (event == "open" or event.startswith(("os.", "shutil.", "glob."))):
        return
    if any("SENTINEL" in os.fsdecode(a) for a in args if isinstance(a, (str, bytes, Path))):
        RECORDED.append((event, args))


sys.addaudithook(_audit)  # audit hooks cannot be removed; RECORDED = None turns it off


def test_predict_evaluate_and_inspect_never_use_a_path_from_the_embedded_spec(
    work: Path, monkeypatch
):
    global RECORDED
    assert invoke("train", work / "iris.yaml", "--quiet").exit_code == 0
    existing = work / "SENTINEL_data.csv"
    shutil.copy(IRIS, existing)
    stamp = (sha(existing), existing.stat().st_mtime_ns)
    ckpt = checkpoint.load(work / "out" / "model.h5")
    ckpt.spec_yaml = ckpt.spec_yaml.replace(str(work / "iris.csv"), str(existing)).replace(
        str(work / "out"), str(work / "SENTINEL_out")
    )
    missing = work / "SENTINEL_missing.csv"
    ckpt.spec_yaml = ckpt.spec_yaml.replace("validation: null", f"validation: {missing}")
    assert ckpt.spec_yaml.count("SENTINEL") == 3
    crafted = work / "crafted.h5"
    checkpoint.save(crafted, ckpt)
    opened_h5: list[str] = []
    original = h5py.File.__init__

    def record_h5(self, name, *args, **kwargs):
        if isinstance(name, (str, bytes, os.PathLike)):  # h5py also passes its own ids
            opened_h5.append(os.fsdecode(name))
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.File, "__init__", record_h5)
    RECORDED = []
    try:
        existing.read_bytes()  # the hook sees an open of a sentinel path
        assert len(RECORDED) == 1
        RECORDED.clear()
        for args in (
            ("predict", crafted, work / "iris.csv"),
            ("evaluate", crafted, work / "iris.csv"),
            ("inspect", crafted),
            ("inspect", crafted, "--json"),
        ):
            result = invoke(*args)
            assert result.exit_code == 0, (args, result.stderr)
        recorded = list(RECORDED)
    finally:
        RECORDED = None
    assert recorded == [] and opened_h5 and all("SENTINEL" not in p for p in opened_h5)
    assert (sha(existing), existing.stat().st_mtime_ns) == stamp
    assert sorted(p.name for p in work.iterdir() if "SENTINEL" in p.name) == [existing.name]
    assert model_io.load(crafted).spec_yaml.count("SENTINEL") == 3  # it was there all along


def test_a_lock_taken_with_wait_waits_for_its_holder(tmp_path):
    """tune's workers move the best trial under one lock: the second waits, never fails."""
    import threading

    got = []

    def second() -> None:
        with folder_lock.hold(tmp_path, name=".best.lock", wait=30):
            got.append(True)

    with folder_lock.hold(tmp_path, name=".best.lock"):
        busy = pytest.raises(SpecError, match="in use")  # without wait: busy at once
        with busy, folder_lock.hold(tmp_path, name=".best.lock"):
            pass
        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(0.2)
        assert got == []  # still waiting while the lock is held
    waiter.join(30)
    assert got == [True]


def test_a_lock_that_never_appears_is_a_checkpoint_error_not_endless_recursion(
    tmp_path: Path, monkeypatch
):
    """On a file system where creating the lock reports a missing file even after its folder
    is made (procfs), hold tries a few times and then says so (exit 4)."""
    from nncli.checkpoint import lock

    calls = []

    def missing(path, flags, mode=0o777):
        calls.append(path)
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(lock.os, "open", missing)
    with pytest.raises(CheckpointError, match="cannot create the lock file"), lock.hold(tmp_path):
        pass
    assert len(calls) == 3
