"""nncli export: every layer type and every bundled spec as ONNX, checked by onnx's full check
and run by ONNX Runtime, which must give what nncli gives (predict, or the network) within what
float32 allows two code paths (helpers.assert_close_float32 over the network's chain of sums)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import DATASETS, ROOT, assert_network_close, invoke, one_error_line, sha

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from nncli.checkpoint import model as model_io  # noqa: E402
from nncli.commands.apply import stored_encoder  # noqa: E402
from nncli.data.columns import NumericColumn  # noqa: E402
from nncli.engine.network import Sequential  # noqa: E402
from nncli.export.graph import Graph  # noqa: E402
from nncli.export.inputs import table_scaling  # noqa: E402
from nncli.export.onnx_graph import CONVERTERS, convert_network  # noqa: E402

SPECS = sorted(p.stem for p in (ROOT / "models").glob("*.yaml"))
QUICK = {  # one epoch of 200,000 characters is slow
    name: ["--set", "data.max_chars=4000"]
    for name in ("shakespeare-char", "shakespeare-transformer")
}


def session(path_or_model) -> ort.InferenceSession:
    source = path_or_model if isinstance(path_or_model, (str, Path)) else (
        path_or_model.SerializeToString())  # fmt: skip
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def run_onnx(path_or_model, x: np.ndarray) -> np.ndarray:
    return session(path_or_model).run(["output"], {"input": np.asarray(x, np.float32)})[0]


def assert_like_nncli(got, want, net: Sequential, x, steps=1, mask=None, more=0) -> None:
    """ONNX Runtime (MLAS) against nncli (numpy, BLAS, numba): two float32 code paths, as close
    as float32 allows over the network's chain of sums and the scaling nodes at either end, at
    the size its last sum reaches on ``x`` (the network's input: logits behind a softmax)."""
    assert_network_close(got, want, net, x, steps, mask, more=4 + more)


# ---------------------------------------------------------------- every layer type
def network_graph(net: Sequential, dims: list) -> onnx.ModelProto:
    g = Graph(17)
    y = convert_network(g, net, "input")
    out_dims = ["N", *net.output_shape]
    if "T" in dims and len(out_dims) == 3:
        out_dims[1] = "T_out"
    model = g.model("input", y, dims, out_dims, {})
    onnx.checker.check_model(model, full_check=True)
    return model


def with_running_stats(net: Sequential) -> Sequential:
    """Batchnorm's running statistics away from 0 and 1, so using them is checked."""
    rng = np.random.default_rng(3)
    for layer in net.layers:
        for array in layer.state.values():
            array[...] = rng.uniform(0.5, 1.5, array.shape)
    return net


NETWORKS = {
    "activations": (
        [{"type": "dense", "units": 5, "activation": "relu"}, "batchnorm",
         {"type": "dense", "units": 5, "activation": {"type": "leaky_relu", "slope": 0.2}},
         "layernorm", {"type": "dense", "units": 4, "activation": {"type": "elu", "alpha": 0.7}},
         {"type": "dense", "units": 4, "activation": "softplus"},
         {"type": "dense", "units": 4, "activation": "gelu"},
         {"type": "dense", "units": 4, "activation": "silu"}, "sin", "swish", "tanh", "linear",
         {"type": "dropout", "rate": 0.3}, {"type": "dense", "units": 3, "activation": "softmax",
                                            "use_bias": False}],
        (6,),
    ),
    "images": (
        [{"type": "conv2d", "filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
          "activation": "relu"}, "batchnorm",
         {"type": "avgpool2d", "pool_size": 3, "strides": 1, "padding": 1},
         {"type": "maxpool2d", "pool_size": 3, "strides": 2, "padding": 1},
         {"type": "conv2d", "filters": 2, "kernel_size": [2, 1], "padding": [1, 0],
          "use_bias": False}, "global_avgpool", {"type": "dense", "units": 1,
                                                 "activation": "sigmoid"}],
        (2, 7, 7),
    ),
    "global_maxpool2d": ([{"type": "conv2d", "filters": 3, "kernel_size": 2}, "global_maxpool"],
                         (2, 5, 5)),
    "sequences": (
        [{"type": "conv1d", "filters": 4, "kernel_size": 3, "strides": 2, "dilation": 2,
          "padding": "same", "activation": "tanh"},
         {"type": "maxpool1d", "pool_size": 2, "strides": 1, "padding": "same"},
         {"type": "avgpool1d", "pool_size": 3, "strides": 1, "padding": 1}, "batchnorm",
         "layernorm", {"type": "lstm", "units": 5, "return_sequences": True},
         {"type": "gru", "units": 4, "return_sequences": True},
         {"type": "rnn", "units": 3, "activation": "relu", "return_sequences": True},
         {"type": "rnn", "units": 3, "return_sequences": True}, "global_maxpool"],
        (9, 3),
    ),
    "sequence_pools": (
        [{"type": "avgpool1d", "pool_size": 2, "strides": 1, "padding": "same"},
         {"type": "conv1d", "filters": 2, "kernel_size": 2, "padding": 1},
         {"type": "maxpool1d", "pool_size": 2}, {"type": "lstm", "units": 3}],
        (8, 3),
    ),
    "bidirectional": (
        [{"type": "lstm", "units": 3, "bidirectional": True, "return_sequences": True},
         {"type": "gru", "units": 2, "bidirectional": True, "return_sequences": True},
         {"type": "rnn", "units": 2, "activation": "relu", "bidirectional": True,
          "return_sequences": True},
         {"type": "gru", "units": 3, "bidirectional": True}, {"type": "dense", "units": 2}],
        (5, 3),
    ),
    "bidirectional_last": (
        [{"type": "rnn", "units": 3, "bidirectional": True},
         {"type": "dense", "units": 2, "activation": "softmax"}],
        (4, 2),
    ),
    "sequence_average": (
        [{"type": "conv1d", "filters": 2, "kernel_size": 2, "padding": "same"}, "global_avgpool"],
        (6, 3),
    ),
    "embedding": (
        [{"type": "embedding", "input_dim": 7, "output_dim": 3}, {"type": "gru", "units": 4},
         {"type": "dense", "units": 2, "activation": "softmax"}],
        (5,),
    ),
    "transformer": (
        [{"type": "positional", "max_length": 12}, {"type": "attention", "heads": 2,
                                                      "causal": True},
         {"type": "transformer", "heads": 2, "feedforward": 6, "activation": "gelu",
          "norm_first": False, "causal": True},
         {"type": "positional", "encoding": "sinusoidal", "max_length": 12},
         {"type": "transformer", "heads": 1, "feedforward": 5}, {"type": "dense", "units": 2}],
        (9, 4),
    ),
    "graph": (
        [{"type": "dense", "units": 5, "activation": "tanh", "name": "stem"},
         {"type": "residual", "layers": [{"type": "dense", "units": 5, "activation": "relu"},
                                         "layernorm"], "activation": "relu"},
         {"type": "residual", "layers": [{"type": "dense", "units": 3}], "projection": True,
          "name": "down"},
         {"type": "dense", "units": 3, "activation": "sigmoid", "inputs": "stem", "name": "gate"},
         {"type": "multiply", "inputs": ["down", "gate"], "name": "gated"},
         {"type": "dense", "units": 3, "inputs": "input", "name": "wide"},
         {"type": "add", "inputs": ["gated", "wide"], "name": "total"},
         {"type": "concat", "inputs": ["total", "stem"]},
         {"type": "dense", "units": 2, "activation": "softmax"}],
        (6,),
    ),
    "residual_images": (
        [{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same",
          "activation": "relu"},
         {"type": "residual", "name": "block", "projection": True, "activation": "relu",
          "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3, "strides": 2, "padding": 1},
                     "batchnorm", "relu", {"type": "conv2d", "filters": 4, "kernel_size": 3,
                                           "padding": "same"}]},
         {"type": "conv2d", "filters": 2, "kernel_size": 1, "strides": 2, "inputs": "input",
          "name": "side"},
         {"type": "concat", "axis": 1, "inputs": ["block", "side"]}, "global_avgpool",
         {"type": "dense", "units": 2}],
        (1, 7, 7),
    ),
    "residual_sequences": (
        [{"type": "residual", "projection": True, "layers": [
            {"type": "conv1d", "filters": 4, "kernel_size": 3, "strides": 2, "padding": 1,
             "activation": "relu"}, {"type": "conv1d", "filters": 4, "kernel_size": 3,
                                     "padding": "same"}]},
         {"type": "residual", "layers": [{"type": "lstm", "units": 4, "return_sequences": True}]},
         "global_avgpool"],
        (9, 3),
    ),
    "reshape": (
        [{"type": "reshape", "shape": [3, 4]}, {"type": "lstm", "units": 3},
         {"type": "reshape", "shape": [3, 1, 1]}, {"type": "conv2d", "filters": 2,
                                                   "kernel_size": 1}, "flatten"],
        (12,),
    ),
}  # fmt: skip


def network_input(name: str, shape: tuple, rng: np.random.Generator, steps: int | None = None):
    if name == "embedding":
        return rng.integers(0, 7, size=(4, *shape)).astype(np.float32)
    if steps is not None:
        shape = (steps, *shape[1:])
    return rng.normal(size=(4, *shape)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_layer_type_runs_in_onnx_runtime_as_in_nncli(name):
    layers, shape = NETWORKS[name]
    net = with_running_stats(Sequential(layers, shape, seed=1))
    sequences = len(shape) == 2 and name != "reshape"
    dims = ["N", "T", shape[1]] if sequences else ["N", *shape]
    model = network_graph(net, dims)
    rng = np.random.default_rng(0)
    for steps in [shape[0], shape[0] + 3] if sequences else [None]:  # any number of steps
        x = network_input(name, shape, rng, steps)
        assert_like_nncli(run_onnx(model, x), net.forward(x), net, x, steps or 1)


@pytest.mark.parametrize("name", ["bidirectional", "transformer"])
def test_a_padded_sequence_runs_alone_in_onnx_as_in_a_masked_nncli_batch(name):
    """The graph has no mask (one length per batch): each sequence of a padded batch, fed alone
    at its own length, gives what nncli gives it in the batch, the reverse direction and the
    attention's masked keys included."""
    layers, shape = NETWORKS[name]
    net = Sequential(layers, shape, seed=1)
    model = network_graph(net, ["N", "T", shape[1]])
    lengths = [5, 2, 4]
    x = np.random.default_rng(2).normal(size=(3, 5, shape[1])).astype(np.float32)
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    together = net.forward(x, mask=mask)
    for i, length in enumerate(lengths):
        got = run_onnx(model, x[i : i + 1, :length])[0]
        want = together[i] if together.ndim == 2 else together[i, :length]  # real steps
        assert_like_nncli(got, want, net, x, 5, mask)


def test_a_causal_transformer_on_a_fixed_number_of_steps_runs_in_onnx_runtime():
    """A time axis ONNX Runtime knows (a text model of ids, a time series' window): the causal
    mask's Range must get true scalars, not 1-element tensors, or the model does not load."""
    layers, shape = NETWORKS["transformer"]
    net = Sequential(layers, shape, seed=1)
    model = network_graph(net, ["N", *shape])
    x = network_input("transformer", shape, np.random.default_rng(0))
    assert_like_nncli(run_onnx(model, x), net.forward(x), net, x, shape[0])


def test_the_networks_above_cover_every_registered_layer_type():
    from nncli.engine import LAYERS

    used = {
        (entry if isinstance(entry, str) else entry["type"])
        for layers, _ in NETWORKS.values()
        for entry in layers
    }
    activations = {
        entry["activation"] if isinstance(entry["activation"], str) else entry["activation"]["type"]
        for layers, _ in NETWORKS.values()
        for entry in layers
        if isinstance(entry, dict) and "activation" in entry and entry["type"] != "rnn"
    }
    assert set(LAYERS.names()) <= used | activations
    assert set(LAYERS.names()) <= set(CONVERTERS)


# ---------------------------------------------------------------- the bundled specs
@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Every spec in models/ trained one epoch and exported: name -> (checkpoint, onnx)."""
    folder = tmp_path_factory.mktemp("export")
    done = {}
    for name in SPECS:
        ckpt, out = folder / name / "model.h5", folder / f"{name}.onnx"
        result = invoke("train", ROOT / "models" / f"{name}.yaml", "--epochs", 1, "--output",
                        ckpt, "--quiet", *QUICK.get(name, []))  # fmt: skip
        assert result.exit_code == 0, result.stderr
        result = invoke("export", ckpt, "--output", out)
        assert result.exit_code == 0, result.stderr
        assert f"wrote {out} (ONNX opset 17" in result.stderr
        done[name] = (ckpt, out)
    return done


def predicted(ckpt: Path, data: Path, tmp_path: Path) -> pd.DataFrame:
    out = tmp_path / "predictions.csv"
    result = invoke("predict", ckpt, data, "--proba", "--output", out)
    assert result.exit_code == 0, result.stderr
    return pd.read_csv(out)


def expected_columns(frame: pd.DataFrame) -> np.ndarray:
    proba = [c for c in frame.columns if c.startswith("proba_")]
    return frame[proba or [c for c in frame.columns if c.startswith("prediction")]].to_numpy()


def raw_table(table):
    """The table encoder with its scaling taken out: what the ONNX input takes."""
    columns = [replace(c, offset=0.0, scale=1.0) if isinstance(c, NumericColumn) else c
               for c in table.columns]  # fmt: skip
    return replace_columns(table, columns)


def replace_columns(table, columns):
    copy = type(table).from_state(table.to_state())
    copy.columns = columns
    return copy


def first_rows(source: Path, tmp_path: Path, rows: int = 40) -> Path:
    frame = pd.read_csv(source).dropna().head(rows)
    path = tmp_path / source.name
    frame.to_csv(path, index=False)
    return path


def rounding_terms(encoder, raw: np.ndarray, scaled: np.ndarray) -> int:
    """The ONNX input is the table rounded to float32 (predict scales the file's float64
    numbers): that rounding in scaled units, counted in terms of the scaled values' size."""
    _, scale = table_scaling(encoder)
    off = np.nan_to_num(np.abs(raw.astype(np.float32) - raw)) / scale
    return int(np.ceil(off.max() / (np.finfo(np.float32).eps * np.abs(scaled).max())))


def onnx_rows(encoder, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A frame as the ONNX input -> (float64 values, float32 input): numbers in the file's
    units, categories one-hot, an empty cell NaN (all of a category's one-hot columns)."""
    table = raw_table(encoder)
    table.dtype = np.float64
    x = table.transform(frame.fillna(frame.mode().iloc[0]))  # any value; NaN goes in below
    start = 0
    for column in encoder.columns:
        width = len(column.names)
        x[frame[column.name].isna().to_numpy(), start : start + width] = np.nan
        start += width
    return x, x.astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["penguins", "penguins-wide-deep", "iris", "xor", "neuron", "digits-mlp"]
)
def test_a_table_model_in_onnx_runtime_gives_what_predict_gives(exported, name, tmp_path):
    ckpt, path = exported[name]
    model = model_io.load(ckpt)
    encoder = stored_encoder(model)
    source = DATASETS / Path(model.spec_yaml.split("path: ")[1].split()[0]).name
    data = first_rows(source, tmp_path)
    raw, x = onnx_rows(encoder, pd.read_csv(data))
    got = run_onnx(path, x)
    want = expected_columns(predicted(ckpt, data, tmp_path))
    if model.data.get("loss") == "binary_cross_entropy":
        got = np.concatenate([1 - got, got], axis=1)
    scaled = encoder.transform(pd.read_csv(data))
    assert_like_nncli(got, want, model.net, scaled, more=rounding_terms(encoder, raw, scaled))


@pytest.mark.slow
def test_penguins_metadata_lists_the_columns_categories_labels_and_spec(exported):
    ckpt, path = exported["penguins"]
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    inputs = json.loads(props["nncli.inputs"])
    assert inputs["shape"] == ["N", 10] and inputs["columns"][:3] == [
        "island=Biscoe", "island=Dream", "island=Torgersen"]  # fmt: skip
    assert inputs["categories"]["sex"] == ["female", "male"]
    assert json.loads(props["nncli.labels"]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert props["nncli.version"] and "name: penguins" in props["nncli.spec"]
    onnx.checker.check_model(onnx.load(path), full_check=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits-cnn", "digits-resnet"])
def test_an_image_model_takes_pixels_and_gives_predicts_probabilities(exported, tmp_path, name):
    ckpt, path = exported[name]
    encoder = stored_encoder(model_io.load(ckpt))
    folder = tmp_path / "digits"
    for label in ("3", "7"):
        (folder / label).mkdir(parents=True)
        for image in sorted((DATASETS / "digits_png" / label).iterdir())[:5]:
            (folder / label / image.name).write_bytes(image.read_bytes())
    pixels = encoder.read_frame(folder).pixels
    assert pixels.min() >= 0 and pixels.max() <= 1
    got = run_onnx(path, pixels)
    want = expected_columns(predicted(ckpt, folder, tmp_path))
    assert_like_nncli(got, want, model_io.load(ckpt).net, encoder.transform(folder))


def sequence_inputs(encoder, frame: pd.DataFrame) -> list[np.ndarray]:
    """One (1, T, F) raw input per sequence, in predict's order."""
    groups = encoder.group(frame)
    x = raw_table(encoder.table).transform(frame.iloc[groups.rows])
    return np.split(x, np.cumsum(groups.lengths)[:-1])


@pytest.mark.slow
def test_a_sequence_model_with_several_recurrent_layers_gives_what_predict_gives(
    exported, tmp_path
):
    spec = (ROOT / "models" / "walks-gru.yaml").read_text().replace(
        "    - {type: gru, units: 16}",
        "    - {type: lstm, units: 8, return_sequences: true}\n"
        "    - {type: gru, units: 6, return_sequences: true}\n"
        "    - {type: rnn, units: 5}",
    ).replace("../datasets/", f"{DATASETS}/")  # fmt: skip
    (tmp_path / "walks.yaml").write_text(spec)
    stacked, out = tmp_path / "run" / "model.h5", tmp_path / "walks.onnx"
    assert invoke("train", tmp_path / "walks.yaml", "--epochs", 1, "--output", stacked,
                  "--quiet").exit_code == 0  # fmt: skip
    assert invoke("export", stacked, "--output", out).exit_code == 0
    for ckpt, path in ((stacked, out), exported["walks-gru"], exported["walks-transformer"]):
        encoder = stored_encoder(model_io.load(ckpt))
        frame = pd.read_csv(DATASETS / "walks.csv")
        data = tmp_path / "few.csv"
        frame[frame["walk"].isin(frame["walk"].unique()[:6])].to_csv(data, index=False)
        want = expected_columns(predicted(ckpt, data, tmp_path))
        inputs = sequence_inputs(encoder, pd.read_csv(data))
        got = np.concatenate([run_onnx(path, x[None]) for x in inputs])
        steps = max(len(x) for x in inputs)
        x, mask = encoder.inputs(pd.read_csv(data))
        assert_like_nncli(got, want, model_io.load(ckpt).net, x, steps, mask)


@pytest.mark.slow
def test_a_time_series_model_forecasts_in_the_files_units(exported, tmp_path):
    ckpt, path = exported["sunspots-lstm"]
    model = model_io.load(ckpt)
    encoder = stored_encoder(model)
    frame = pd.read_csv(DATASETS / "sunspots_yearly.csv")
    values = frame[encoder.feature_names].to_numpy(np.float32)
    want = expected_columns(predicted(ckpt, DATASETS / "sunspots_yearly.csv", tmp_path))
    x, _, _ = encoder.labelled(frame)
    target = encoder.target_columns[0]
    got = run_onnx(path, values[None, -encoder.window :])
    unscale = (target.offset, target.scale)  # in the file's units
    assert_network_close(got, want, model.net, x, encoder.window, more=4, unscale=unscale)
    # every window, against the network, in the model's scaled units (file units / the
    # target's scale)
    raw = values[np.arange(len(x))[:, None] + np.arange(encoder.window)]
    scaled = (run_onnx(path, raw).astype(np.float64) - target.offset) / target.scale
    assert_like_nncli(scaled, model.net.forward(x), model.net, x, encoder.window)


@pytest.mark.slow
def test_a_text_model_takes_one_hot_symbols(exported, tmp_path):
    ckpt, path = exported["shakespeare-char"]
    encoder = stored_encoder(model_io.load(ckpt))
    text = tmp_path / "prompt.txt"
    text.write_text((DATASETS / "shakespeare.txt").read_text()[:300])
    x, _ = encoder.inputs(encoder.read_frame(text))
    got = run_onnx(path, x)[:, -1]
    want = expected_columns(predicted(ckpt, text, tmp_path))
    assert_like_nncli(got, want, model_io.load(ckpt).net, x, x.shape[1])


@pytest.mark.slow
def test_a_causal_transformer_takes_symbol_ids_and_gives_predicts_probabilities(exported, tmp_path):
    """shakespeare-transformer.yaml: an embedding first, so the graph takes ids (as floats)."""
    ckpt, path = exported["shakespeare-transformer"]
    encoder = stored_encoder(model_io.load(ckpt))
    text = tmp_path / "prompt.txt"
    text.write_text((DATASETS / "shakespeare.txt").read_text()[:300])
    x, _ = encoder.inputs(encoder.read_frame(text))
    assert x.ndim == 2  # ids, not one-hot rows
    got = run_onnx(path, x)[:, -1]
    want = expected_columns(predicted(ckpt, text, tmp_path))
    assert_like_nncli(got, want, model_io.load(ckpt).net, x, x.shape[1])


# ---------------------------------------------------------------- the command's rules
@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    ckpt = folder / "model.h5"
    result = invoke("train", ROOT / "models" / "iris.yaml", "--epochs", 1, "--output", ckpt,
                    "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return ckpt


def test_an_existing_output_needs_force(small, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    one_error_line(invoke("export", small, "--output", out), 2, "exists", "--force")
    assert out.read_bytes() == b"old"
    result = invoke("export", small, "--output", out, "--force")
    assert result.exit_code == 0 and f"replaced {out}" in result.stderr
    onnx.checker.check_model(onnx.load(out), full_check=True)


def test_an_output_that_is_the_checkpoint_is_refused(small):
    before = sha(small)
    one_error_line(invoke("export", small, "--output", small, "--format", "onnx", "--force"), 2,
                   "would overwrite the input file")  # fmt: skip
    assert sha(small) == before


def test_an_unknown_format_and_a_too_old_opset_are_refused(small, tmp_path):
    one_error_line(invoke("export", small, "--output", tmp_path / "m.pt"), 2, "onnx", "'.pt'")
    one_error_line(invoke("export", small, "--output", tmp_path / "m.onnx", "--opset", 11), 2,
                   "--opset", "from 17", "got 11")  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_a_newer_opset_is_written_when_asked(small, tmp_path):
    out = tmp_path / "m.onnx"
    assert invoke("export", small, "--output", out, "--opset", 18).exit_code == 0
    assert onnx.load(out).opset_import[0].version == 18
    assert run_onnx(out, np.ones((2, 4), np.float32)).shape == (2, 3)


def test_a_checkpoint_from_a_newer_nncli_exits_4(small, tmp_path):
    import h5py

    from nncli.checkpoint import writer

    newer = tmp_path / "newer.h5"
    newer.write_bytes(small.read_bytes())
    with h5py.File(newer, "a") as f:
        f.attrs["format_version"] = 2
        writer._stamp(f)
    one_error_line(invoke("export", newer, "--output", tmp_path / "m.onnx"), 4, "newer nncli")
    assert not (tmp_path / "m.onnx").exists()


def test_without_the_onnx_package_export_says_what_to_install(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails
    one_error_line(invoke("export", small, "--output", tmp_path / "m.onnx"), 2,
                   'pip install -e ".[onnx]"')  # fmt: skip
    assert not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------- missing values
CARS_SPEC = """\
version: 1
seed: 0
data: {kind: csv, path: cars.csv, target: mpg, categorical: [origin], missing: fill,
       validation_split: 0.2}
model:
  layers: [{type: dense, units: 8, activation: relu}, {type: dense, units: 1}]
loss: mse
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 3, batch_size: 16}
"""


@pytest.fixture(scope="module")
def cars(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A car table like auto_mpg with empty cells in numbers and a category, trained with
    ``missing: fill`` and exported: (data, checkpoint, onnx)."""
    folder = tmp_path_factory.mktemp("cars")
    rng = np.random.default_rng(0)
    n = 60
    weight = rng.normal(3000, 800, n).round()
    year = rng.integers(70, 83, n).astype(float)
    origin = rng.choice(["usa", "europe", "japan"], n, p=[0.6, 0.2, 0.2])
    mpg = (50 - weight / 150 + (year - 70) * 0.8 + rng.normal(0, 2, n)).round(1)
    frame = pd.DataFrame({"weight": weight, "year": year, "origin": origin, "mpg": mpg})
    frame.loc[[3, 17, 41], "weight"] = np.nan
    frame.loc[[17, 29], "year"] = np.nan
    frame.loc[[5, 41, 52], "origin"] = np.nan
    frame.to_csv(folder / "cars.csv", index=False)
    (folder / "cars.yaml").write_text(CARS_SPEC)
    ckpt, out = folder / "model.h5", folder / "cars.onnx"
    assert invoke("train", folder / "cars.yaml", "--output", ckpt, "--quiet").exit_code == 0
    assert invoke("export", ckpt, "--output", out).exit_code == 0
    return folder / "cars.csv", ckpt, out


def test_empty_cells_get_the_training_fill_in_the_graph_as_predict_gives_them(cars, tmp_path):
    data, ckpt, path = cars
    model = model_io.load(ckpt)
    encoder = stored_encoder(model)
    frame = pd.read_csv(data)
    raw, x = onnx_rows(encoder, frame)
    assert np.isnan(x).any(axis=1).sum() == 6  # rows 3, 5, 17, 29, 41, 52
    got = run_onnx(path, x)
    want = expected_columns(predicted(ckpt, data, tmp_path))
    assert np.isfinite(got).all()
    scaled = encoder.transform(frame)
    assert_like_nncli(got, want, model.net, scaled, more=rounding_terms(encoder, raw, scaled))
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    inputs = json.loads(props["nncli.inputs"])
    assert inputs["missing"] == "fill"
    assert inputs["fill"]["origin"] == "usa"
    assert inputs["fill"]["weight"] == pytest.approx(frame["weight"].mean(), rel=0.05)
