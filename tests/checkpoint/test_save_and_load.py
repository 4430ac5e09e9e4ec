"""Checkpoint files: round trip, atomic save, and refusal of every damaged or hostile file."""

from __future__ import annotations

import ast
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import sha
from hypothesis import given, settings
from hypothesis import strategies as st

import nncli
from nncli.checkpoint import Checkpoint, LayerRecord, OptimizerRecord, load, save, writer
from nncli.errors import CheckpointError


def make_checkpoint() -> Checkpoint:
    rng = np.random.default_rng(0)
    layers = [
        LayerRecord(
            0,
            "dense",
            {"units": np.int64(4), "activation": "relu", "use_bias": True},
            {"weight": rng.normal(size=(4, 3)).astype(np.float32), "bias": np.zeros(4, "f4")},
        ),
        LayerRecord(1, "dropout", {"rate": 0.5}, {}),
        LayerRecord(
            2,
            "dense",
            {"units": 2},
            {"weight": rng.normal(size=(2, 4)), "bias": rng.normal(size=2)},
        ),
    ]
    state = {
        "0.dense.weight": {"m": rng.normal(size=(4, 3)).astype("f4"), "v": np.ones((4, 3), "f4")},
        "2.dense.bias": {"m": rng.normal(size=2), "v": rng.normal(size=2)},
    }
    data = {
        "features": ["bill_length_mm", "island"],
        "classes": ["Adelie", "Chinstrap", "Gentoo"],
        "categories": {"island": ["Biscoe", "Dream", "Torgersen", "Zürich ü"]},
        "scaling": {"mean": np.array([43.9, 17.1]), "std": np.array([5.4, 1.9])},
        "vocabulary": [],
        "window": {"length": 24, "horizon": 1, "stride": 1.5, "shuffle": False, "unit": "h"},
        "quantiles": [0.1, 0.5, 0.9],
        "lags": [1, 2, 3],
        "missing": None,
        "odd/key": {"%": 1, "": "empty key", ".": "dot"},
        "counts": np.arange(6, dtype=np.int64).reshape(2, 3),
        "mask": np.array([True, False]),
    }
    training = {
        "epoch": 7,
        "best_epoch": 5,
        "best_value": 0.125,
        "monitor": "val_loss",
        "seed": 42,
        "stopped_early": True,
        "rng_state": '{"bit_generator": "PCG64"}',
        "lr": None,
        "history": {"loss": [1.0, 0.5, 0.25], "val_loss": np.array([1.1, 0.6, 0.3], "f4")},
    }
    return Checkpoint(
        spec_yaml="name: penguins\nmodel:\n  layers:\n    - dense: {units: 4}  # ü\n",
        layers=layers,
        optimizer=OptimizerRecord("adam", 70, state),
        data=data,
        training=training,
    )


def assert_tree_equal(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_tree_equal(a[key], b[key])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    else:
        assert a == b


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "model.h5"
    save(path, make_checkpoint())
    return path


@contextmanager
def tamper(path: Path):
    """Edit a checkpoint and re-stamp its name-and-attribute checksum, as an attacker could:
    checksums catch damage, the type and structure checks must still catch hostility."""
    with h5py.File(path, "a") as f:
        yield f
        writer._stamp(f)


def refused(path: Path, *words: str, **kwargs) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    assert info.value.exit_code == 4
    return info.value


# ---------------------------------------------------------------- round trip


def assert_same(got: Checkpoint, want: Checkpoint):
    assert got.spec_yaml == want.spec_yaml and got.meta == want.meta
    assert [(la.index, la.type, la.config) for la in got.layers] == [
        (la.index, la.type, la.config) for la in want.layers
    ]
    for mine, theirs in zip(got.layers, want.layers, strict=True):
        assert_tree_equal(mine.params, theirs.params)
    assert (got.optimizer is None) == (want.optimizer is None)
    if want.optimizer is not None:
        assert (got.optimizer.type, got.optimizer.step) == (
            want.optimizer.type,
            want.optimizer.step,
        )
        assert_tree_equal(got.optimizer.state, want.optimizer.state)
    assert_tree_equal(got.data, want.data)
    assert_tree_equal(got.training, want.training)


def test_round_trip_keeps_every_field(tmp_path):
    original = make_checkpoint()
    path = tmp_path / "model.h5"
    save(path, original)
    got = load(path)
    history = original.training["history"]
    original.training["history"] = {k: np.asarray(v, np.float64) for k, v in history.items()}
    assert_same(got, original)  # original.meta was filled by save with what it wrote
    assert got.layers[0].params["weight"].dtype == np.float32
    assert got.layers[2].params["weight"].dtype == np.float64
    assert got.optimizer.state["0.dense.weight"]["m"].dtype == np.float32
    assert got.data["categories"]["island"][-1] == "Zürich ü"
    assert got.meta["format"] == "nncli-checkpoint" and got.meta["format_version"] == 1
    assert got.meta["nncli_version"] == nncli.__version__
    assert got.meta["created"].endswith("+00:00")


def test_layout_on_disk(saved):
    with h5py.File(saved, "r") as f:
        assert f.attrs["format"] == b"nncli-checkpoint" and f.attrs["format_version"] == 1
        assert f["spec"].asstr()[()].startswith("name: penguins")
        assert f["model/0.dense/weight"].shape == (4, 3)
        assert f["model/0.dense"].attrs["config"] == (
            b'{"units": 4, "activation": "relu", "use_bias": true}'
        )
        assert f["optimizer"].attrs["type"] == b"adam"
        assert f["optimizer/0.dense/weight/m"].dtype == np.float32
        assert f["data/classes"].asstr()[()].tolist() == ["Adelie", "Chinstrap", "Gentoo"]
        assert f["training/history/val_loss"].dtype == np.float64
        assert f["training"].attrs["epoch"] == 7
        assert f["data/odd%2Fkey/%2E"].asstr()[()] == "dot"

        # no pickle, no objects, no heap: every dataset and attribute is a number or
        # fixed-length text, and every dataset carries a checksum
        def check(name, obj):
            for key in obj.attrs:
                assert obj.attrs.get_id(key).dtype.kind in "biufS", (name, key)
            if isinstance(obj, h5py.Dataset):
                assert obj.dtype.kind in "biufS" or obj.shape is None, name
                assert len(obj.attrs["sha256"]) == 64
                assert obj.chunks is None and obj.compression is None

        f.visititems(check)


def test_no_optimizer_and_empty_sections(tmp_path):
    path = tmp_path / "m.h5"
    save(path, Checkpoint("a: 1\n", [LayerRecord(0, "flatten", {}, {})]))
    got = load(path)
    assert got.optimizer is None and got.data == {} and got.training == {}
    assert got.layers == [LayerRecord(0, "flatten", {}, {})]


def test_save_replaces_and_leaves_no_temp_files(saved):
    ckpt = make_checkpoint()
    ckpt.training["epoch"] = 8
    save(saved, ckpt)
    assert load(saved).training["epoch"] == 8
    assert [p.name for p in saved.parent.iterdir()] == ["model.h5"]


UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "marshal", "shelve", "joblib"}
UNSAFE_CALLS = {"eval", "exec", "__import__"}
# PyYAML's loading and constructing names; its composer, scanner and parser only build nodes
UNSAFE_YAML = {
    *("load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"),
    *(
        "Loader",
        "UnsafeLoader",
        "FullLoader",
        "Constructor",
        "UnsafeConstructor",
        "FullConstructor",
    ),
}


def unsafe_uses(source: str) -> list[str]:
    """Every way in ``source`` to run code hidden in data: pickle-like modules, eval/exec,
    ``yaml.load`` and friends (anything but safe loading) and ``allow_pickle``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            found += [
                f"from {node.module} import {a.name}"
                for a in node.names
                if module in UNSAFE_MODULES or (module == "yaml" and a.name in UNSAFE_YAML)
            ]
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in UNSAFE_CALLS or name in {f"yaml.{f}" for f in UNSAFE_YAML}:
                found.append(f"{name}(")
            found += [f"{k.arg}=" for k in node.keywords if k.arg == "allow_pickle"]
        elif isinstance(node, ast.Name) and node.id in UNSAFE_MODULES:
            found.append(node.id)
    return found


def test_the_scan_finds_each_unsafe_use():
    planted = {
        "import pickle": ["pickle"],
        "import shelve as s": ["shelve"],
        "from marshal import loads": ["from marshal import loads"],
        "yaml.load(text, Loader=yaml.Loader)": ["yaml.load("],
        "yaml.full_load(text)": ["yaml.full_load("],
        "from yaml import UnsafeLoader, SafeLoader": ["from yaml import UnsafeLoader"],
        "from yaml.composer import Composer": [],
        "eval('1')": ["eval("],
        "exec(code)": ["exec("],
        "np.load(path, allow_pickle=True)": ["allow_pickle="],
        "yaml.safe_load(text)": [],
        "yaml.compose(text, Loader=Safe)": [],
    }
    for source, expected in planted.items():
        assert unsafe_uses(source) == expected, source


def test_no_module_can_unpickle_or_evaluate_data():
    package = Path(nncli.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 40 and package / "checkpoint" / "reader.py" in modules
    for module in modules:
        assert unsafe_uses(module.read_text(encoding="utf-8")) == [], module


def test_unstorable_values_are_programming_errors(tmp_path):
    path = tmp_path / "m.h5"
    with pytest.raises(TypeError):
        save(path, Checkpoint("", [], data={"x": object()}))
    with pytest.raises(TypeError):
        save(path, Checkpoint("", [], data={"x": ["a", 1]}))
    with pytest.raises(CheckpointError, match="NUL") as info:
        save(path, Checkpoint("", [], data={"x": ["a\x00b"]}))
    assert str(path) in str(info.value) and "/data/x" in str(info.value)
    assert list(tmp_path.iterdir()) == []


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(max_examples=25, deadline=None)
@given(tree=st.dictionaries(TEXT, st.one_of(TEXT, st.lists(TEXT, max_size=4)), max_size=4))
def test_any_text_keys_and_values_round_trip(tree):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.h5"
        save(path, Checkpoint("", [], data={"t": tree}))
        assert load(path).data == {"t": tree}


# ---------------------------------------------------------------- atomic save


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_interrupted_save_keeps_old_file(saved, monkeypatch, exc):
    before = sha(saved)
    real = writer._write_array
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "_write_array", flaky)
    with pytest.raises(type(exc)):
        save(saved, make_checkpoint())
    assert len(calls) == 3
    assert sha(saved) == before
    assert [p.name for p in saved.parent.iterdir()] == ["model.h5"]
    monkeypatch.undo()
    assert load(saved).training["epoch"] == 7


def test_interrupt_during_rename_keeps_old_file(saved, monkeypatch):
    before = sha(saved)

    def boom(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save(saved, make_checkpoint())
    assert sha(saved) == before
    assert [p.name for p in saved.parent.iterdir()] == ["model.h5"]


def test_write_into_missing_folder(tmp_path):
    path = tmp_path / "nope" / "model.h5"
    with pytest.raises(CheckpointError, match="cannot write") as info:
        save(path, make_checkpoint())
    assert str(path) in str(info.value) and info.value.exit_code == 4


def test_write_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="Not a directory"):
        save(tmp_path / "file" / "model.h5", make_checkpoint())


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_write_into_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="Permission denied"):
            save(folder / "model.h5", make_checkpoint())
    finally:
        folder.chmod(0o700)


def test_permission_denied_is_a_checkpoint_error(tmp_path, monkeypatch):
    # the real thing above is skipped when running as root; this checks the mapping anyway
    def denied(name, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(name))

    monkeypatch.setattr(writer.h5py, "File", denied)
    with pytest.raises(CheckpointError, match="cannot write the checkpoint .Permission denied"):
        save(tmp_path / "model.h5", make_checkpoint())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- files that are not checkpoints


def test_missing_file(tmp_path):
    refused(tmp_path / "gone.h5", "no such file")


def test_folder(tmp_path):
    refused(tmp_path, "folder")


def test_zero_bytes(tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    refused(path, "not an nncli checkpoint", "empty")


def test_text_file_renamed(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("name: penguins\n")
    refused(path, "not an nncli checkpoint", "not an HDF5 file")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.02, 12])
def test_truncated(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[: int(len(raw) * keep) if keep < 1 else keep])
    refused(saved, "not an nncli checkpoint")


def test_hdf5_without_format(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    refused(path, "not an nncli checkpoint", "format")


def test_foreign_format(saved):
    with tamper(saved) as f:
        f.attrs["format"] = "keras"
    refused(saved, "not an nncli checkpoint (format unreadable")  # a variable-length string


def test_foreign_fixed_format(saved):
    with tamper(saved) as f:
        f.attrs["format"] = np.bytes_(b"keras")
    refused(saved, "not an nncli checkpoint (format 'keras', expected 'nncli-checkpoint')")


def test_newer_format_version(saved):
    with tamper(saved) as f:
        f.attrs["format_version"] = 2
    refused(saved, "newer nncli (format 2); this nncli reads format 1")


# ---------------------------------------------------------------- hostile structure


def test_external_link(saved, tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with tamper(saved) as f:
        f["model/0.dense/extra"] = h5py.ExternalLink("other.h5", "/x")
    refused(saved, "is an external link", "/model/0.dense/extra")


def test_soft_link(saved):
    with tamper(saved) as f:
        del f["model/2.dense/bias"]
        f["model/2.dense/bias"] = h5py.SoftLink("/model/0.dense/bias")
    refused(saved, "soft link", "/model/2.dense/bias")


def test_hard_link_cycle(saved):
    with tamper(saved) as f:
        f["data/loop"] = f["data"]
    refused(saved, "already linked")


def test_committed_datatype(saved):
    with tamper(saved) as f:
        f["data/kind"] = np.dtype("f8")
    refused(saved, "is a Datatype", "/data/kind")


def test_external_storage(saved, tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.zeros(12, "f4").tobytes())
    with tamper(saved) as f:
        del f["model/0.dense/weight"]
        f.create_dataset("model/0.dense/weight", (4, 3), "f4", external=[(str(raw), 0, 48)])
    refused(saved, "external files", "/model/0.dense/weight")


def test_virtual_dataset(saved):
    with tamper(saved) as f:
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource(".", "model/0.dense/bias", shape=(4,))
        del f["model/2.dense/bias"]
        f.create_virtual_dataset("model/2.dense/bias", layout)
    refused(saved, "virtual", "/model/2.dense/bias")


def test_chunked_dataset(saved):
    with tamper(saved) as f:
        del f["model/0.dense/weight"]
        f.create_dataset("model/0.dense/weight", data=np.zeros((4, 3)), compression="gzip")
    refused(saved, "chunked or filtered")


def filled(f, name, dtype, values):
    ds = f.create_dataset(name, shape=(len(values),), dtype=dtype)
    for i, value in enumerate(values):
        ds[i] = value


BAD_WEIGHTS = {
    "object": lambda f, name: f.create_dataset(
        name, data=[np.zeros(2), np.zeros(3)], dtype=h5py.vlen_dtype("f8")
    ),
    "opaque": lambda f, name: f.create_dataset(name, data=np.array([b"abc"] * 4, dtype="V3")),
    "vlen bytes": lambda f, name: f.create_dataset(
        name, data=[b"ab", b"cde"], dtype=h5py.string_dtype("ascii")
    ),
    "text": lambda f, name: f.create_dataset(name, data=["a", "b"], dtype=h5py.string_dtype()),
    "compound": lambda f, name: f.create_dataset(
        name, data=np.zeros(3, dtype=[("a", "f8"), ("b", "i4")])
    ),
    "array type": lambda f, name: filled(f, name, np.dtype("(3,)f8"), [np.ones(3)] * 2),
    "reference": lambda f, name: filled(f, name, h5py.ref_dtype, [f["data"].ref] * 2),
}


@pytest.mark.parametrize("kind", list(BAD_WEIGHTS))
def test_non_numeric_weight(saved, kind):
    with tamper(saved) as f:
        del f["model/0.dense/weight"]
        BAD_WEIGHTS[kind](f, "model/0.dense/weight")
    refused(saved, "expected a numeric array", "/model/0.dense/weight")


@pytest.mark.parametrize("place", ["optimizer/0.dense/weight/m", "training/history/loss"])
def test_text_where_numbers_go(saved, place):
    with tamper(saved) as f:
        attrs = dict(f[place].attrs)
        del f[place]
        f.create_dataset(place, data=["1.0"], dtype=h5py.string_dtype()).attrs.update(attrs)
    refused(saved, "expected a numeric array", "/" + place)


def test_numbers_where_text_goes(saved):
    with tamper(saved) as f:
        attrs = dict(f["data/classes"].attrs)
        del f["data/classes"]
        f.create_dataset("data/classes", data=np.zeros(3)).attrs.update(attrs)
    refused(saved, "expected a list of strings", "/data/classes")


def test_variable_length_text_is_refused(saved):
    # heap-backed strings are where corrupt files crash HDF5: nncli neither writes nor reads them
    with tamper(saved) as f:
        attrs = dict(f["data/classes"].attrs)
        del f["data/classes"]
        f.create_dataset("data/classes", data=["a"], dtype=h5py.string_dtype()).attrs.update(attrs)
    refused(saved, "fixed-length", "/data/classes")


def test_variable_length_attribute_is_refused(saved):
    with tamper(saved) as f:
        f["model/0.dense"].attrs["type"] = "dense"
    refused(saved, "attribute 'type' is not a plain scalar", "/model/0.dense")


def test_shape_bomb(saved):
    with tamper(saved) as f:
        del f["model/0.dense/weight"]
        f.create_dataset("model/0.dense/weight", shape=(10**6, 10**6), dtype="f8")
    assert saved.stat().st_size < 100_000
    refused(saved, "declares 8000000000000 bytes", "/model/0.dense/weight")


def test_unallocated_dataset(saved):
    # declared size fits in the file, but nothing was ever written: it would read as zeros
    with tamper(saved) as f:
        del f["model/0.dense/bias"]
        f.create_dataset("model/0.dense/bias", shape=(4,), dtype="f4")
    refused(saved, "stores 0", "/model/0.dense/bias")


def test_flipped_byte_in_weight(saved):
    with h5py.File(saved, "r") as f:
        offset = f["model/0.dense/weight"].id.get_offset()
    raw = bytearray(saved.read_bytes())
    raw[offset + 5] ^= 0x10
    saved.write_bytes(bytes(raw))
    refused(saved, "checksum mismatch", "/model/0.dense/weight")


def test_flipped_byte_in_text(saved):
    with tamper(saved) as f:
        f["data/classes"][0] = "Adelia"
    refused(saved, "checksum mismatch", "/data/classes")


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f["model/0.dense"].attrs.modify("config", np.bytes_(b'{"units": 5}')),
        lambda f: f["training"].attrs.modify("epoch", 70),
        lambda f: f.move("data/classes", "data/klasses"),
        lambda f: f.__delitem__("optimizer"),
        lambda f: f.create_group("data/extra"),
    ],
)
def test_changed_names_or_attributes(saved, change):
    with h5py.File(saved, "a") as f:
        change(f)
    refused(saved, "checksum mismatch over names and attributes")


def test_missing_checksum(saved):
    with tamper(saved) as f:
        del f["training/history/loss"].attrs["sha256"]
    refused(saved, "no checksum", "/training/history/loss")


def test_layer_indices_must_be_contiguous(saved):
    with tamper(saved) as f:
        f.move("model/1.dropout", "model/5.dropout")
        f["model/5.dropout"].attrs["index"] = 5
    refused(saved, "layer indices are [0, 2, 5]")


def test_random_bit_flips_are_refused_or_harmless(saved):
    # a flip anywhere either is caught (CheckpointError) or lands in bytes nothing reads
    raw, good = saved.read_bytes(), load(saved)
    broken = saved.with_name("broken.h5")
    rng = np.random.default_rng(7)
    refusals = 0
    for _ in range(150):
        flipped = bytearray(raw)
        flipped[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
        broken.write_bytes(bytes(flipped))
        try:
            got = load(broken)
        except CheckpointError:
            refusals += 1
            continue
        assert_same(got, good)
    assert refusals > 75


# ---------------------------------------------------------------- expected_shapes


def test_expected_shapes_sees_metadata(saved):
    seen = []
    load(saved, expected_shapes=seen.append)
    assert seen == [
        [
            (
                0,
                "dense",
                {"units": 4, "activation": "relu", "use_bias": True},
                {"weight": (4, 3), "bias": (4,)},
            ),
            (1, "dropout", {"rate": 0.5}, {}),
            (2, "dense", {"units": 2}, {"weight": (2, 4), "bias": (2,)}),
        ]
    ]


def test_expected_shapes_runs_before_arrays_are_read(saved):
    with h5py.File(saved, "r") as f:
        offset = f["model/0.dense/weight"].id.get_offset()
    raw = bytearray(saved.read_bytes())
    raw[offset] ^= 0xFF
    saved.write_bytes(bytes(raw))

    def veto(layers):
        raise CheckpointError("spec wants (5, 3)", where=str(saved))

    refused(saved, "spec wants (5, 3)", expected_shapes=veto)  # not the checksum error


def test_layer_state_round_trips_beside_the_parameters(tmp_path):
    ckpt = make_checkpoint()
    running = {"running_mean": np.array([0.5, -1.0], "f4"), "running_var": np.array([2.0, 3.0])}
    ckpt.layers.append(
        LayerRecord(3, "batchnorm", {"momentum": 0.1}, {"weight": np.ones(2)}, dict(running))
    )
    path = tmp_path / "model.h5"
    save(path, ckpt)
    with h5py.File(path, "r") as f:
        assert sorted(f["model/3.batchnorm/state"]) == ["running_mean", "running_var"]
        assert "state" not in f["model/0.dense"]  # layers without state write none
    got = load(path)
    assert_tree_equal(got.layers[3].state, running)
    assert list(got.layers[3].params) == ["weight"]
    assert got.layers[0].state == {}


def test_changed_state_fails_its_checksum(tmp_path):
    ckpt = make_checkpoint()
    ckpt.layers[2].state = {"running_var": np.ones(2)}
    path = tmp_path / "model.h5"
    save(path, ckpt)
    with h5py.File(path, "a") as f:
        f["model/2.dense/state/running_var"][0] = 5.0
    refused(path, "checksum mismatch", "running_var")
