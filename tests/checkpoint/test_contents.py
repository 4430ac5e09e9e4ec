"""A checkpoint's contents checked against themselves on load (nncli/checkpoint/contents.py).

Every hostile file here is written by the real checkpoint writer, so its checksums are valid
and only the content checks stand between it and a crash (exit 1), a wrong answer or a run
that eats the machine's memory. Each must exit 4 with one line naming the file and the array
or field.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import DATASETS, IRIS, PENGUINS, ROOT, invoke, iris_spec, one_error_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncli import checkpoint, data
from nncli.checkpoint import Checkpoint
from nncli.checkpoint import model as model_io
from nncli.engine import LAYERS
from nncli.engine.network import Sequential
from nncli.errors import CheckpointError

# val_loss at its highest: epoch 1 is the best, so the file keeps the last epoch's weights too
BEST_FIRST = "{monitor: val_loss, mode: max, patience: 5, restore_best: true}"
SPEC = iris_spec(f"{{epochs: 3, batch_size: 16, early_stopping: {BEST_FIRST}}}").replace(
    "    - {type: dense, units: auto", "    - {type: batchnorm}\n    - {type: dense, units: auto"
)
FIXTURES = ROOT / "tests" / "fixtures" / "v0.1.0"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A dense-batchnorm-dense iris model with optimizer state and resume weights."""
    folder = tmp_path_factory.mktemp("trained")
    shutil.copy(IRIS, folder / "iris.csv")
    (folder / "iris.yaml").write_text(SPEC)
    assert invoke("train", folder / "iris.yaml", "--quiet").exit_code == 0
    return folder


def edited(source: Path, target: Path, edit: Callable[[Checkpoint], object]) -> Path:
    """``source`` read by the checkpoint reader, changed by ``edit`` and written back by the
    checkpoint writer: every checksum of ``target`` is valid."""
    ckpt = checkpoint.load(source)
    edit(ckpt)
    checkpoint.save(target, ckpt)
    return target


def encoder(ckpt: Checkpoint) -> dict:
    return ckpt.data["encoder"]


def setter(where: Callable[[Checkpoint], dict], key: str, value: object) -> Callable:
    return lambda ckpt: where(ckpt).__setitem__(key, value)


def both_labels(labels: list[str]) -> Callable:
    def edit(ckpt: Checkpoint) -> None:
        ckpt.data["labels"] = encoder(ckpt)["labels"] = labels

    return edit


def scale_value(value: float) -> Callable:
    def edit(ckpt: Checkpoint) -> None:
        encoder(ckpt)["numeric"]["scale"][1] = value

    return edit


def weight_value(value: float, layer: int = 0, name: str = "weight") -> Callable:
    def edit(ckpt: Checkpoint) -> None:
        arrays = {**ckpt.layers[layer].params, **ckpt.layers[layer].state}
        arrays[name].reshape(-1)[0] = value

    return edit


def slot(shape: tuple[int, ...]) -> Callable:
    return setter(lambda c: c.optimizer.state["0.dense.weight"], "m", np.zeros(shape, "f4"))


def resume_weight(shape: tuple[int, ...]) -> Callable:
    return setter(lambda c: c.training["resume_weights"], "0.dense.weight", np.ones(shape, "f4"))


def step(value: int) -> Callable:
    return lambda ckpt: setattr(ckpt.optimizer, "step", value)


def ragged(ckpt: Checkpoint) -> None:
    ckpt.training["history"]["loss"] = ckpt.training["history"]["loss"][:2]


def kind(name: str) -> Callable:
    return setter(lambda c: c.data, "kind", name)


# (edit, the field the line names, what it says was found)
CASES = {
    # issue 24, item 14
    "input shape [0]": (setter(lambda c: c.data, "input_shape", [0]), "/data/input_shape", "[0]"),
    "encoder scale of the wrong length": (
        lambda c: encoder(c)["numeric"].__setitem__("scale", np.ones(3)),
        "/data/encoder/numeric/scale",
        "expected 4 numbers, one per column, found shape (3,)",
    ),
    "duplicate labels": (
        both_labels(["setosa", "versicolor", "setosa"]),
        "/data/labels",
        "'setosa' appears twice",
    ),
    "a data kind that does not match the encoder": (
        kind("images"),
        "/data/kind",
        "expected the stored encoder's kind 'csv', found 'images'",
    ),
    "a text best_epoch": (
        setter(lambda c: c.training, "best_epoch", "1"),
        "/training: attribute 'best_epoch'",
        "found '1'",
    ),
    "a negative epoch": (
        setter(lambda c: c.training, "epoch", -1),
        "/training: attribute 'epoch'",
        "expected a whole number >= 0, found -1",
    ),
    "a negative optimizer step": (step(-3), "/optimizer: attribute 'step'", "found -3"),
    "ragged history": (ragged, "/training/history/loss", "expected 3 values, one per row"),
    "an optimizer slot of the wrong shape": (
        slot((3, 3)),
        "/optimizer/0.dense/weight/m",
        "expected shape (8, 4), the parameter's, found (3, 3)",
    ),
    "an optimizer slot of shape (1,)": (slot((1,)), "/optimizer/0.dense/weight/m", "found (1,)"),
    # issue 24, item 15
    "dtype float16": (
        setter(lambda c: c.data, "dtype", "float16"),
        "/data/dtype",
        "expected one of float32, float64, found 'float16'",
    ),
    "an encoder scale of 0": (
        scale_value(0.0),
        "/data/encoder/numeric/scale",
        "expected positive scales (x / scale), found 0 for column 'sepal_width_cm'",
    ),
    "NaN weights": (weight_value(np.nan), "/model/0.dense/weight", "found nan at [0, 0]"),
    # beside them: the other arrays and links a load reads
    "an infinite running variance": (
        weight_value(np.inf, 1, "running_var"),
        "/model/1.batchnorm/state/running_var",
        "expected finite numbers, found inf at [0]",
    ),
    "integer weights": (
        lambda c: c.layers[2].params.__setitem__("bias", np.zeros(3, np.int32)),
        "/model/2.dense/bias",
        "expected float32, float64 numbers, found int32",
    ),
    "an encoder scale of NaN": (
        scale_value(np.nan),
        "/data/encoder/numeric/scale",
        "expected finite numbers, found nan for column 'sepal_width_cm'",
    ),
    "more labels than outputs": (
        both_labels(["setosa", "versicolor", "virginica", "zz"]),
        "/data/labels",
        "cross_entropy over 4 labels needs 4 outputs, found /model/2.dense giving 3",
    ),
    "labels that differ from the encoder's": (
        setter(lambda c: c.data, "labels", ["virginica", "versicolor", "setosa"]),
        "/data/labels",
        "expected the stored encoder's ['setosa', 'versicolor', 'virginica']",
    ),
    "a slot of a parameter the network lacks": (
        lambda c: c.optimizer.state.__setitem__("0.dense.kernel", {"m": np.zeros(3, "f4")}),
        "/optimizer/0.dense/kernel",
        "names no parameter of the network (0.dense.weight",
    ),
    "a text best_value": (
        setter(lambda c: c.training, "best_value", "low"),
        "/training: attribute 'best_value'",
        "found 'low'",
    ),
    "a best epoch after the last": (
        setter(lambda c: c.training, "best_epoch", 4),
        "/training: attribute 'best_epoch'",
        "from 1 to 3 (the epochs run), found 4",
    ),
    "resume weights of the wrong shape": (
        resume_weight((3, 3)),
        "/training/resume_weights/0.dense.weight",
        "expected shape (8, 4), found (3, 3)",
    ),
    "resume weights without a running mean": (
        lambda c: c.training["resume_weights"].pop("1.batchnorm.running_mean"),
        "/training/resume_weights",
        "has no 1.batchnorm.running_mean, which the network needs",
    ),
    "an array its layer does not make": (
        lambda c: c.layers[0].params.__setitem__("kernel", np.ones((8, 4), "f4")),
        "the checkpoint's model cannot be rebuilt: /model/0.dense holds a kernel",
        "that its config (activation: relu, units: 8) on input (4,) does not make",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_inconsistent_checkpoint_exits_4_naming_the_field(trained, tmp_path, case):
    edit, field, found = CASES[case]
    bad = edited(trained / "out" / "model.h5", tmp_path / "bad.h5", edit)
    line = one_error_line(invoke("predict", bad, IRIS), 4, f"{bad}: {field}", found)
    assert "error: /" in line  # the file first: nothing blames the data


def test_the_untouched_checkpoint_loads_and_predicts(trained, tmp_path):
    copy = edited(trained / "out" / "model.h5", tmp_path / "same.h5", lambda c: None)
    assert invoke("predict", copy, IRIS, "--output", tmp_path / "p.csv").exit_code == 0
    assert invoke("train", trained / "iris.yaml", "--resume", copy, "--epochs", "4",
                  "--output", tmp_path / "more.h5", "--quiet").exit_code == 0  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "field", "found"),
    [
        (resume_weight((3, 3)), "/training/resume_weights/0.dense.weight", "found (3, 3)"),
        (weight_value(np.inf, 1, "weight"), "/model/1.batchnorm/weight", "found inf at [0]"),
        (setter(lambda c: c.data, "dtype", "float16"), "/data/dtype", "found 'float16'"),
    ],
    ids=["wrong-shape resume weights", "infinite weights", "dtype float16"],
)  # fmt: skip
def test_resume_from_an_inconsistent_checkpoint_exits_4_naming_it(trained, tmp_path, edit, field,
                                                                   found):  # fmt: skip
    bad = edited(trained / "out" / "model.h5", tmp_path / "bad.h5", edit)
    out = tmp_path / "out" / "model.h5"
    result = invoke("train", trained / "iris.yaml", "--resume", bad, "--output", out, "--quiet")
    one_error_line(result, 4, f"{bad}: {field}", found)
    assert not out.parent.exists()


# -- the declared sizes before anything is allocated (issue 24, item 6) ---------------------------
LIMIT = 3 * 2**29  # 1.5 GiB of address space: a load that allocates its config's sizes fails


def _limited() -> None:
    import resource  # POSIX only

    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS binds on Linux")
@pytest.mark.parametrize("units", [25_000_000, 10**12])
def test_a_huge_declared_layer_exits_4_within_a_memory_limit(trained, tmp_path, units):
    """27 KB that declare a (25000000, 4) weight cost 2.8 GB before the check was made before
    the build; larger values ended in MemoryError (exit 1)."""
    bad = edited(trained / "out" / "model.h5", tmp_path / "big.h5",
                 lambda c: c.layers[0].config.__setitem__("units", units))  # fmt: skip
    assert bad.stat().st_size < 64_000
    run = subprocess.run(
        [sys.executable, "-m", "nncli", "predict", str(bad), str(IRIS)],
        capture_output=True, text=True, preexec_fn=_limited, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 4, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"{bad}: the checkpoint's model cannot be rebuilt: /model/0.dense has a weight of " \
           f"shape (8, 4), but its config (activation: relu, units: {units}) on input (4,) " \
           f"builds ({units}, 4)" in lines[0]  # fmt: skip


def test_a_layer_is_refused_before_it_is_built(trained, tmp_path, monkeypatch):
    from nncli.engine.layer import Layer

    built, build = [], Layer.build

    def counted(self, *args, **kwargs):
        built.append(self.index)
        return build(self, *args, **kwargs)

    bad = edited(trained / "out" / "model.h5", tmp_path / "wide.h5",
                 lambda c: c.layers[2].config.__setitem__("units", 10**9))  # fmt: skip
    monkeypatch.setattr(Layer, "build", counted)
    with pytest.raises(CheckpointError, match=r"units: 1000000000\) on input \(8,\) builds"):
        model_io.load(bad)
    assert built == [0, 1]  # the layer that declares 4 GB was never built


LAYER_EXAMPLES = [  # a merge makes no arrays (and alone it has nothing to join)
    (name, settings, shape)
    for name in LAYERS.names()
    for settings, shape in LAYERS.get(name).examples
    if not LAYERS.get(name).several_inputs
]


@pytest.mark.parametrize(("name", "settings", "in_shape"), LAYER_EXAMPLES,
                         ids=[e[0] for e in LAYER_EXAMPLES])  # fmt: skip
def test_every_layer_declares_the_arrays_it_builds(name, settings, in_shape):
    """``array_shapes`` is what the loader trusts before a build; a layer that made arrays
    without declaring them would be built from any size a file claims."""
    layer = Sequential([{"type": name, **settings}], in_shape).layers[0]
    built = {k: tuple(a.shape) for k, a in {**layer.params, **layer.state}.items()}
    fresh = LAYERS.create(name, dict(settings))
    assert fresh.array_shapes(tuple(in_shape)) == built
    assert not fresh.params and not fresh.state  # declaring made nothing


# -- encoder states: the field inside /data/encoder ---------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "edit", "field"),
    [
        ("lstm", lambda s: s["inputs"].__setitem__("scale", np.zeros(1)), "inputs/scale"),
        ("lstm", lambda s: s["targets"].__setitem__("offset", np.ones(2)), "targets/offset"),
        ("gru", lambda s: s["table"]["numeric"].__setitem__("fill", np.array([np.inf])),
         "table/numeric/fill"),
        ("gru", lambda s: s["table"].__setitem__("labels", ["up", "up"]), "table/labels"),
    ],
)  # fmt: skip
def test_each_kind_names_the_damaged_part_of_its_state(fixture, edit, field):
    state = checkpoint.load(FIXTURES / f"{fixture}.h5").data["encoder"]
    data.encoder_from_state(state)  # whole, it rebuilds
    edit(state)
    with pytest.raises(CheckpointError) as caught:
        data.encoder_from_state(state)
    assert caught.value.field == field and caught.value.exit_code == 4


def test_a_target_scale_of_zero_is_refused(tmp_path):
    """evaluate multiplies errors by it to report them in the file's units."""
    zero = setter(lambda c: c.data, "target_scale", np.zeros(1))
    bad = edited(FIXTURES / "lstm.h5", tmp_path / "bad.h5", zero)
    result = invoke("evaluate", bad, DATASETS / "sunspots_yearly.csv")
    one_error_line(result, 4, f"{bad}: /data/target_scale", "positive numbers, found [0.0]")


def test_a_duplicate_category_is_refused(tmp_path):
    """pandas cannot look values up among categories that repeat (exit 1 before)."""
    shutil.copy(PENGUINS, tmp_path / "penguins.csv")
    spec = SPEC.replace("path: iris.csv,", "path: penguins.csv, missing: fill,")
    (tmp_path / "p.yaml").write_text(spec.replace("epochs: 3", "epochs: 1"))
    assert invoke("train", tmp_path / "p.yaml", "--quiet").exit_code == 0
    good = tmp_path / "out" / "model.h5"
    column = encoder(checkpoint.load(good))["categorical"]["columns"].index("island")

    def repeat(ckpt: Checkpoint) -> None:
        names = encoder(ckpt)["categorical"]["categories"][str(column)]
        names[1] = names[0]

    bad = edited(good, tmp_path / "bad.h5", repeat)
    field = f"/data/encoder/categorical/categories/{column}"
    one_error_line(invoke("predict", bad, PENGUINS), 4, f"{bad}: {field}", "appears twice")


# -- property: hostile checkpoints generated from a valid one ------------------------------------
def _arrays(ckpt: Checkpoint) -> dict[str, tuple[dict, str]]:
    """Every weight-like array of the file: its holder dict and key, by a readable name."""
    found = {}
    for layer in ckpt.layers:
        for group in (layer.params, layer.state):
            found |= {f"{layer.index}.{layer.type}.{k}": (group, k) for k in group}
    for name, slots in ckpt.optimizer.state.items():
        found |= {f"optimizer {name} {s}": (slots, s) for s in slots}
    weights = ckpt.training["resume_weights"]
    found |= {f"resume {k}": (weights, k) for k in weights}
    numeric = encoder(ckpt)["numeric"]
    found |= {f"encoder {k}": (numeric, k) for k in ("offset", "scale", "fill")}
    history = ckpt.training["history"]
    return found | {f"history {k}": (history, k) for k in history}


def reshaped(draw, ckpt: Checkpoint) -> str:
    name = draw(st.sampled_from(sorted(_arrays(ckpt))))
    holder, key = _arrays(ckpt)[name]
    old = holder[key].shape
    shape = draw(
        st.one_of(
            st.just((1,)),
            st.just(old + (1,)),
            st.just(old[1:] or (2,)),
            st.integers(0, len(old) - 1).flatmap(
                lambda i: st.integers(1, 3).map(lambda k: old[:i] + (old[i] + k,) + old[i + 1 :])
            ),
        ).filter(lambda s: s != old)
    )
    holder[key] = np.ones(shape, holder[key].dtype)
    return f"{name} {old} -> {shape}"


def retyped(draw, ckpt: Checkpoint) -> str:
    arrays = {k: v for k, v in _arrays(ckpt).items() if not k.startswith(("encoder", "history"))}
    name = draw(st.sampled_from(sorted(arrays)))
    holder, key = arrays[name]
    dtype = draw(st.sampled_from(["float16", "int32", "int8", "uint8", "bool"]))
    holder[key] = holder[key].astype(dtype)
    return f"{name} as {dtype}"


def spoiled(draw, ckpt: Checkpoint) -> str:
    arrays = {k: v for k, v in _arrays(ckpt).items() if not k.startswith("history")}
    name = draw(st.sampled_from(sorted(arrays)))
    holder, key = arrays[name]
    value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    a = holder[key].copy()
    a.reshape(-1)[draw(st.integers(0, a.size - 1))] = value
    holder[key] = a
    return f"{name} holds {value}"


def misattributed(draw, ckpt: Checkpoint) -> str:
    text = st.sampled_from(["1", "", "none", "3.0"])
    changes = {
        "epoch": (ckpt.training, "epoch", st.one_of(st.integers(-5, -1), text, st.just(2.5))),
        "best_epoch": (ckpt.training, "best_epoch", st.one_of(st.integers(-3, 0),
                                                               st.integers(4, 9), text)),
        "best_value": (ckpt.training, "best_value", text),
        "dtype": (ckpt.data, "dtype", st.sampled_from(["float16", "int8", "float", "bfloat16"])),
        "kind": (ckpt.data, "kind", st.sampled_from(["images", "text", "timeseries", "sequences"])),
        "input_shape": (ckpt.data, "input_shape", st.lists(st.integers(-2, 0), min_size=1,
                                                           max_size=3) | st.just([])),
        "units": (ckpt.layers[0].config, "units", st.integers(1, 10**12).filter(lambda u: u != 8)),
        "output units": (ckpt.layers[2].config, "units", st.integers(1, 9).filter(lambda u: u > 3)),
    }  # fmt: skip
    field = draw(st.sampled_from(sorted(changes) + ["step", "scale"]))
    if field == "step":
        ckpt.optimizer.step = draw(st.integers(-(10**6), -1))
        return f"optimizer step {ckpt.optimizer.step}"
    if field == "scale":
        scale = encoder(ckpt)["numeric"]["scale"]
        scale[draw(st.integers(0, 3))] = draw(st.sampled_from([0.0, -1.0, -1e-9]))
        return f"scale {scale}"
    holder, key, values = changes[field]
    holder[key] = draw(values)
    return f"{field} = {holder[key]!r}"


def relinked(draw, ckpt: Checkpoint) -> str:
    link = draw(st.sampled_from(["slot", "resume", "param", "labels", "order", "duplicate"]))
    if link == "slot":  # optimizer state for a parameter the network lacks
        state = ckpt.optimizer.state
        state[draw(st.sampled_from(["0.dense.kernel", "3.dense.weight", "1.batchnorm.bias_x"]))] = (
            state.pop(draw(st.sampled_from(sorted(state)))))  # fmt: skip
    elif link == "resume":  # resume weights for another network
        weights = ckpt.training["resume_weights"]
        key = draw(st.sampled_from(sorted(weights)))
        weights[key.replace(".", "_", 1) if draw(st.booleans()) else "9.dense.bias"] = (
            weights.pop(key))  # fmt: skip
    elif link == "param":  # a layer array under another name
        layer = ckpt.layers[draw(st.sampled_from([0, 1, 2]))]
        group = layer.state if layer.state and draw(st.booleans()) else layer.params
        key = draw(st.sampled_from(sorted(group)))
        group[key + "_x"] = group.pop(key)
    elif link == "labels":  # a label more or less than the network's outputs
        labels = ckpt.data["labels"] + ["zz"] if draw(st.booleans()) else ckpt.data["labels"][:2]
        ckpt.data["labels"] = encoder(ckpt)["labels"] = labels
    elif link == "order":  # the data's labels in another order than the encoder's
        ckpt.data["labels"] = draw(st.permutations(ckpt.data["labels"]).filter(
            lambda p: p != ckpt.data["labels"]))  # fmt: skip
    else:
        i = draw(st.integers(0, 1))
        encoder(ckpt)["labels"][i + 1] = encoder(ckpt)["labels"][i]
        ckpt.data["labels"] = list(encoder(ckpt)["labels"])
    return link


HOSTILE = {
    "shape": reshaped,
    "dtype": retyped,
    "value": spoiled,
    "attribute": misattributed,
    "link": relinked,
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change=st.data())
def test_any_hostile_checkpoint_exits_4_with_one_line(trained, change):
    """Shapes, dtypes, values, attributes and links changed in a valid file, its checksums
    recomputed: each load ends in exit 4 with one line naming the file, never 1."""
    family = change.draw(st.sampled_from(sorted(HOSTILE)), label="family")
    with tempfile.TemporaryDirectory() as folder:
        bad = Path(folder) / "hostile.h5"
        what = []
        edited(trained / "out" / "model.h5", bad,
               lambda c: what.append(HOSTILE[family](change.draw, c)))  # fmt: skip
        change.draw(st.just(what[0]), label="change")
        one_error_line(invoke("predict", bad, IRIS), 4, str(bad))
