"""The bounds checked before large work (nncli/bounds/limits.py): padded sequences and a network's
parameters against the memory limit, a CSV header's columns against the column limit, and
header handling that grows linearly with the columns.

The estimates are proven exact by counting (the limit set to the bytes the real arrays take
passes, one byte less refuses), and the refusals are proven to come before the allocation in
child processes under an address-space limit (``resource.RLIMIT_AS``), never by filling memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import DATASETS, IRIS, invoke, iris_spec, one_error_line

from nncli import data
from nncli.bounds import limits
from nncli.data import csv_reader
from nncli.errors import DataError, SpecError

HANG_GUARD = 120  # seconds: a hang guard for the child processes, not a timing check
CAP = 1 << 30  # the child's address space: numpy, pandas and a small run fit; no big array does


def capped(*args: object, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``nncli ARGS`` in a child process whose address space is capped at ``CAP``."""

    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    variables = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    variables.pop(limits.MEMORY_VARIABLE, None)
    command = [sys.executable, "-m", "nncli", *map(str, args)]
    try:
        return subprocess.run(
            command, cwd=cwd, env={**variables, **(env or {})}, capture_output=True, text=True,
            timeout=HANG_GUARD, preexec_fn=cap,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang guard: {' '.join(command)} still running after {HANG_GUARD} s")


needs_rlimit = pytest.mark.skipif(sys.platform == "win32", reason="needs resource.RLIMIT_AS")


# -- the limits themselves ---------------------------------------------------------------------
def test_sizes_read_as_people_write_them(monkeypatch):
    assert limits.parse_size("16GiB") == 16 * 1024**3
    assert limits.parse_size("500MB") == 500 * 1000**2
    assert limits.parse_size("2g") == 2 * 1000**3
    assert limits.parse_size("1048576") == 1048576
    with pytest.raises(SpecError, match="NNCLI_MAX_MEMORY: expected a size such as 16GiB"):
        limits.parse_size("lots")
    monkeypatch.setenv(limits.MEMORY_VARIABLE, "3MiB")
    assert limits.memory_limit() == (3 << 20, "NNCLI_MAX_MEMORY=3MiB")
    monkeypatch.setenv(limits.MEMORY_VARIABLE, "0")
    assert limits.memory_limit()[0] is None and limits.over_memory(1 << 60) is None
    assert limits.size_text(3.7 * 1024**3) == "3.7 GiB" and limits.size_text(12) == "12 bytes"


@needs_rlimit
def test_the_default_memory_limit_is_a_quarter_of_what_the_process_may_use(tmp_path: Path):
    code = "from nncli.bounds import limits; "
    code += "print(limits.memory_limit()[0], limits.available_memory())"
    job = subprocess.run(
        [sys.executable, "-c", f"import resource; resource.setrlimit(resource.RLIMIT_AS, "
         f"({CAP}, {CAP})); {code}"],
        capture_output=True, text=True, timeout=HANG_GUARD,
        env={k: v for k, v in os.environ.items() if k != limits.MEMORY_VARIABLE},
    )  # fmt: skip
    limit, available = map(int, job.stdout.split())
    assert available <= CAP and limit == available // 4


# -- padded sequences --------------------------------------------------------------------------
def grouped_file(path: Path, lengths: list[int]) -> Path:
    """A sequences CSV: sequence g has ``lengths[g]`` steps of two features, a class target."""
    rows = ["id,t,a,b,y"]
    for g, n in enumerate(lengths):
        rows += [f"s{g},{t},{t * 0.5},{g},{'up' if g % 2 else 'down'}" for t in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


def sequences_cfg(path: Path, **settings) -> SimpleNamespace:
    base = dict(kind="sequences", path=str(path), id="id", order="t", features=["a", "b"])
    base.update(target="y", target_per="step", exclude=[], categorical=[], normalize="none")
    base.update(missing="error", validation_split=0.25, test_split=0.0, delimiter=",")
    return SimpleNamespace(**{**base, **settings})


@pytest.mark.parametrize("per", ["step", "sequence"])
def test_the_padding_estimate_is_the_bytes_of_the_padded_arrays(tmp_path, monkeypatch, per):
    """The limit set to exactly what the padded inputs, masks and per-step targets take passes;
    one byte less refuses before any is made, naming the longest sequence."""
    path = grouped_file(tmp_path / "walks.csv", [3, 40, 5, 7, 2, 4, 6, 3])
    cfg = sequences_cfg(path, target_per=per)
    monkeypatch.setenv(limits.MEMORY_VARIABLE, "0")
    ds = data.load(cfg, tmp_path, 0, "cross_entropy")
    parts = [
        (ds.parts["train"].x, ds.parts["train"].mask, ds.parts["train"].y),
        (ds.parts["validation"].x, ds.parts["validation"].mask, ds.parts["validation"].y),
    ]
    exact = sum(x.nbytes + m.nbytes + (y.nbytes if per == "step" else 0) for x, m, y in parts)
    monkeypatch.setenv(limits.MEMORY_VARIABLE, str(exact))
    data.load(cfg, tmp_path, 0, "cross_entropy")
    monkeypatch.setenv(limits.MEMORY_VARIABLE, str(exact - 1))
    with pytest.raises(DataError, match=r"sequence 's1' has 40 steps: padding the 8 sequences"):
        data.load(cfg, tmp_path, 0, "cross_entropy")
    # new data (predict, evaluate) is checked the same way before it is padded
    frame = ds.encoder.read_frame(path)
    monkeypatch.setenv(limits.MEMORY_VARIABLE, str(8 * 40 * ds.encoder.step_bytes() - 1))
    with pytest.raises(DataError, match="sequence 's1' has 40 steps"):
        ds.encoder.inputs(frame)


def test_validate_refuses_padding_past_the_limit_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grouped_file(tmp_path / "walks.csv", [3, 4, 5000, 2, 6, 3, 5, 4])
    Path("spec.yaml").write_text(
        "data: {kind: sequences, path: walks.csv, id: id, order: t, target: y}\n"
        "model: {layers: [{type: gru, units: 3}, {type: dense, units: auto, "
        "activation: softmax}]}\nloss: cross_entropy\n"
    )
    monkeypatch.setenv(limits.MEMORY_VARIABLE, "100KiB")
    line = one_error_line(invoke("validate", "spec.yaml"), 3, "sequence 's2' has 5,000 steps")
    assert "over the limit of 100.0 KiB (NNCLI_MAX_MEMORY=100KiB)" in line


@needs_rlimit
@pytest.mark.slow
def test_one_long_sequence_is_refused_before_its_padding_is_allocated(tmp_path: Path):
    """1,000 sequences, one of 200,000 steps: padded, 800 MB; the child may map 1 GiB, so its
    default limit is 256 MiB. Without the check (NNCLI_MAX_MEMORY=0) the padding is a
    MemoryError; with it, one line and exit 3 before any padding."""
    grouped_file(tmp_path / "walks.csv", [200_000 if g == 3 else 1 for g in range(1000)])
    (tmp_path / "spec.yaml").write_text(
        "data: {kind: sequences, path: walks.csv, id: id, order: t, features: [a], target: y}\n"
        "model: {layers: [{type: gru, units: 3}, {type: dense, units: auto, "
        "activation: softmax}]}\nloss: cross_entropy\n"
    )
    job = capped("validate", "spec.yaml", cwd=tmp_path)
    assert job.returncode == 3, job.stderr
    assert "sequence 's3' has 200,000 steps" in job.stderr and "a quarter of the" in job.stderr
    unbounded = capped("validate", "spec.yaml", cwd=tmp_path, env={limits.MEMORY_VARIABLE: "0"})
    assert unbounded.returncode == 1 and "MemoryError" in unbounded.stderr, unbounded.stderr


# -- parameters --------------------------------------------------------------------------------
LAYERS = """\
seed: 0
data: {kind: sequences, path: walks.csv, id: id, order: t, target: y, target_per: sequence}
model:
  layers:
    - {type: conv1d, filters: 6, kernel_size: 2}
    - batchnorm
    - {type: lstm, units: 5, bidirectional: true, return_sequences: true}
    - layernorm
    - {type: gru, units: 4}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam}
training: {batch_size: 2}
dtype: float64
"""


def test_the_parameter_estimate_is_what_the_built_network_holds(tmp_path, monkeypatch):
    """Weights, gradients, Adam's two slots and batchnorm's statistics, counted on the built
    network: a limit of exactly that passes, one byte less refuses before anything is drawn."""
    monkeypatch.chdir(tmp_path)
    grouped_file(tmp_path / "walks.csv", [3, 4, 5, 6, 7, 8, 9, 5])
    Path("spec.yaml").write_text(LAYERS)
    held = {}
    monkeypatch.setenv(limits.MEMORY_VARIABLE, "0")
    from nncli.commands.validate import validate

    validate(Path("spec.yaml"), on_resolved=lambda ready: held.update(net=ready.net))
    net = held["net"]
    state = sum(a.size for layer in net.layers for a in layer.state.values())
    exact = (net.parameter_count() * (2 + 2) + state) * 8
    monkeypatch.setenv(limits.MEMORY_VARIABLE, str(exact))
    assert invoke("validate", "spec.yaml").exit_code == 0
    monkeypatch.setenv(limits.MEMORY_VARIABLE, str(exact - 1))
    line = one_error_line(invoke("validate", "spec.yaml"), 2, "model.layers[2]")
    assert f"the network's {net.parameter_count():,} parameters take" in line
    assert "weights, gradients and 2 optimizer slots, float64" in line


def test_a_huge_layer_is_refused_by_validate_and_train_with_the_estimate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(IRIS, "iris.csv")
    Path("iris.yaml").write_text(iris_spec("{epochs: 1}"))
    monkeypatch.setenv(limits.MEMORY_VARIABLE, "1GiB")
    units = "--set", "model.layers[0].units=300000000"
    for command in ("validate", "train"):
        line = one_error_line(invoke(command, "iris.yaml", *units), 2, "model.layers[0]")
        assert "the network's 2,400,000,003 parameters take 35.8 GiB" in line
        assert "over the limit of 1.0 GiB (NNCLI_MAX_MEMORY=1GiB)" in line
        assert "layers[0] (dense) with 1,500,000,000 (weight (300000000, 4))" in line
    assert sorted(os.listdir()) == ["iris.csv", "iris.yaml"]


@needs_rlimit
@pytest.mark.parametrize(
    "spec, setting",
    [("iris.yaml", "model.layers[0].units=300000000"), ("cnn.yaml", "model.layers[0].filters=1e8")],
)
def test_huge_layers_are_refused_before_a_weight_is_drawn(tmp_path, spec, setting):
    """In a child that may map 1 GiB: one line and exit 2, where the draw was a MemoryError."""
    shutil.copy(IRIS, tmp_path / "iris.csv")
    (tmp_path / "iris.yaml").write_text(iris_spec("{epochs: 1}"))
    shutil.copytree(DATASETS / "digits_png", tmp_path / "digits_png")
    cnn = (DATASETS.parent / "models" / "digits-cnn.yaml").read_text()
    (tmp_path / "cnn.yaml").write_text(cnn.replace("../datasets/", ""))
    job = capped("validate", spec, "--set", setting.replace("1e8", "100000000"), cwd=tmp_path)
    assert job.returncode == 2, job.stderr
    assert "parameters take" in job.stderr and "MemoryError" not in job.stderr


# -- columns -----------------------------------------------------------------------------------
def wide_file(path: Path, columns: int, quoted: bool = False) -> Path:
    names = [f'"c{j}"' if quoted else f"c{j}" for j in range(columns)]
    path.write_text(",".join([*names, "y"]) + "\n" + ",".join(["1"] * columns + ["a"]) + "\n")
    return path


@pytest.mark.parametrize("quoted", [False, True])  # the fast header path and the csv module's
def test_a_header_past_the_column_limit_is_one_line(tmp_path, monkeypatch, quoted):
    monkeypatch.chdir(tmp_path)
    wide_file(tmp_path / "wide.csv", 6, quoted)
    Path("spec.yaml").write_text(
        "data: {kind: csv, path: wide.csv, target: y, validation_split: 0}\n"
        "model: {layers: [{type: dense, units: 1}]}\nloss: mse\n"
    )
    monkeypatch.setenv(limits.COLUMNS_VARIABLE, "6")
    one_error_line(
        invoke("validate", "spec.yaml"), 3, "wide.csv: the header has 7 columns; nncli reads "
        "at most 6 (NNCLI_MAX_COLUMNS=<count> raises the limit)",
    )  # fmt: skip
    monkeypatch.setenv(limits.COLUMNS_VARIABLE, "7")
    assert "the header has" not in invoke("validate", "spec.yaml").stderr


def test_the_default_column_limit_is_100000(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(limits.COLUMNS_VARIABLE, raising=False)
    path = wide_file(tmp_path / "wide.csv", limits.MAX_COLUMNS)
    with pytest.raises(DataError, match="the header has 100,001 columns; nncli reads at most"):
        csv_reader.read_table(path)


class Name(str):
    """A column name that counts how often it is compared: a scan of a list of names compares
    each, a set or dict lookup one or two."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        Name.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__

    def strip(self, chars: str | None = None) -> Name:
        return Name(str.strip(self, chars))


@pytest.mark.parametrize("quoted", [False, True])
def test_header_work_grows_linearly_with_the_columns(tmp_path, monkeypatch, quoted):
    """Loading a table of N columns compares names about 10 N times, never N squared (30,000
    columns took 25 s when every name was looked up in the list of all of them)."""
    real = csv_reader._check_records
    monkeypatch.setattr(csv_reader, "_check_records", lambda *args: [Name(n) for n in real(*args)])
    counts = {}
    for columns in (300, 1200):
        path = tmp_path / f"wide{columns}.csv"
        rows = [",".join(f'"c{j}"' if quoted else f"c{j}" for j in range(columns)) + ",y"]
        rows += [",".join(str((i * j) % 7) for j in range(columns)) + f",{i % 2}" for i in range(8)]
        path.write_text("\n".join(rows) + "\n")
        cfg = SimpleNamespace(
            kind="csv", path=str(path), target="y", features=None, exclude=[], categorical=[],
            normalize="standard", missing="error", na_values=[], delimiter=",",
            validation_split=0.25, test_split=0.0, validation=None, test=None,
        )  # fmt: skip
        Name.compared = 0
        data.load(cfg, tmp_path, 0, "cross_entropy")
        counts[columns] = Name.compared
    assert counts[1200] <= 20 * 1200, counts  # a scan per column: 720,000 and more
    # four times the columns: about four times the comparisons (sets compare names only on
    # hash collisions, so the count moves a little with the hash seed); sixteen if quadratic
    assert counts[1200] <= 8 * max(counts[300], 1), counts
