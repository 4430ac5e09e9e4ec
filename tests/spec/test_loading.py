"""The spec loader: YAML with positions, validation, messages, overrides, limits."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncli.engine.registry import LAYERS
from nncli.errors import SpecError, SpecErrors
from nncli.spec import Spec, load, loads, resolved_yaml, to_dict
from nncli.spec import document as spec_yaml

# SPEC.md's first example, as written there
FULL = """\
version: 1
name: digits-cnn                # default output: runs/<name>/model.h5
seed: 0                         # every random choice: init, split, shuffle, dropout, augmentation
device: cpu                     # cpu | gpu | auto
dtype: float32                  # float32 | float64

data:
  kind: images                  # csv | images | timeseries | text | sequences
  path: ../datasets/digits_png  # relative to this file
  image_size: [8, 8]
  color: grayscale              # grayscale | rgb
  validation_split: 0.2         # random and stratified for classification
  test_split: 0.0
  augment: {shift: 1, rotate: 10}

model:
  input: [1, 8, 8]              # optional: inferred from the data when left out
  layers:
    - {type: conv2d, filters: 16, kernel_size: 3, padding: same, activation: relu}
    - {type: maxpool2d, pool_size: 2}
    - flatten                   # a layer without settings may be written as its bare name
    - {type: dense, units: 64, activation: relu}
    - {type: dropout, rate: 0.2}
    - {type: dense, units: auto, activation: softmax}   # auto: as many as the data's classes

loss: cross_entropy             # mse | mae | cross_entropy | binary_cross_entropy
optimizer: {type: adam, learning_rate: 0.001}

training:
  epochs: 30
  batch_size: 32                # an integer; 1 = one record at a time; full = the whole set
  shuffle: true
  early_stopping: {monitor: val_loss, patience: 5, min_delta: 0.0, restore_best: true}
  checkpoint_every: 1           # epochs; keeps the latest and the best checkpoint during the run
output: runs/digits-cnn/model.h5
"""

CSV = """\
data:
  kind: csv
  path: penguins.csv
  target: species
model:
  layers:
    - {type: dense, units: 16, activation: relu}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer:
  type: sgd
  learning_rate: 1e-3
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(text: str, **kwargs) -> SpecError:
    with pytest.raises(SpecError) as info:
        loads(text, "spec.yaml", **kwargs)
    return info.value


def lines_of(err: SpecError) -> list[str]:
    return err.lines() if isinstance(err, SpecErrors) else [str(err)]


# -- valid specs ------------------------------------------------------------------------------
def test_full_example_loads_with_defaults_filled(tmp_path):
    (tmp_path / "specs").mkdir()
    spec = load(write(tmp_path / "specs", FULL))
    assert spec.version == 1 and spec.name == "digits-cnn" and spec.device == "cpu"
    assert spec.data.kind == "images" and spec.data.image_size == [8, 8]
    assert spec.data.path == tmp_path / "datasets" / "digits_png"
    assert spec.data.normalize == "none" and spec.data.augment.shift == 1
    assert spec.data.augment.rotate == 10.0 and spec.data.augment.flip_horizontal is False
    assert spec.model.input == [1, 8, 8]
    assert spec.model.layers[2] == {"type": "flatten"}
    assert spec.model.layers[5] == {"type": "dense", "units": "auto", "activation": "softmax"}
    assert spec.loss == "cross_entropy"
    assert spec.optimizer["type"] == "adam" and spec.optimizer["learning_rate"] == 0.001
    assert spec.optimizer["beta1"] == 0.9  # the optimizer's own defaults are filled in
    assert spec.training.epochs == 30 and spec.training.checkpoint_every == 1
    assert spec.training.early_stopping.mode == "auto"
    assert spec.output == tmp_path / "specs" / "runs" / "digits-cnn" / "model.h5"
    assert spec.source == tmp_path / "specs" / "spec.yaml"
    assert spec.base_dir == tmp_path / "specs"


def test_minimal_csv_spec_gets_every_default(tmp_path):
    spec = load(write(tmp_path, CSV, "penguins.yaml"))
    assert (spec.version, spec.name, spec.seed, spec.device, spec.dtype) == (
        1,
        "penguins",
        0,
        "cpu",
        "float32",
    )
    data = spec.data
    assert data.path == tmp_path / "penguins.csv" and data.target == "species"
    assert (data.features, data.categorical, data.na_values) == (None, [], [])
    assert (data.normalize, data.missing) == ("standard", "error")
    assert (data.validation_split, data.test_split, data.validation, data.test) == (
        0.2,
        0.0,
        None,
        None,
    )
    t = spec.training
    assert (t.epochs, t.batch_size, t.shuffle, t.early_stopping, t.checkpoint_every) == (
        10,
        32,
        True,
        None,
        None,
    )
    assert spec.output == Path.cwd() / "runs" / "penguins" / "model.h5"  # under the current folder


def test_default_optimizer_is_adam():
    spec = loads(CSV.split("optimizer:")[0], "s.yaml")
    assert spec.optimizer["type"] == "adam" and spec.optimizer["learning_rate"] == 0.001


@pytest.mark.parametrize(
    "data",
    [
        "{kind: timeseries, path: s.csv, columns: [sunactivity], target: sunactivity, window: 24}",
        "{kind: text, path: shakespeare.txt, level: char, sequence_length: 64}",
        "{kind: sequences, path: walks.csv, id: walk_id, order: step, target: label}",
        "{kind: csv, path: p.csv, target: [a, b], features: [x, y], validation: v.csv}",
    ],
)
def test_every_data_kind_from_spec_md_loads(data):
    text = f"data: {data}\nmodel:\n  layers:\n    - {{type: lstm, units: 8}}\n"
    spec = loads(text + "    - {type: dense, units: auto}\nloss: mse\n", "s.yaml", "/base")
    assert spec.data.path.parent == Path("/base")
    if spec.data.kind == "text":
        assert spec.data.stride == 64 and spec.data.validation_split == 0.1
    if spec.data.kind == "csv":
        assert spec.data.validation == Path("/base/v.csv")


# -- YAML traps -------------------------------------------------------------------------------
def test_exponent_without_dot_is_a_float():
    spec = loads(CSV, "s.yaml")
    assert spec.optimizer["learning_rate"] == 0.001
    assert isinstance(spec.optimizer["learning_rate"], float)


def test_yes_on_no_are_text_and_only_true_false_are_booleans():
    spec = loads(CSV.replace("species", "on") + "training: {shuffle: FALSE}\nseed: 010\n", "s")
    assert spec.data.target == "on" and spec.training.shuffle is False
    assert spec.seed == 10  # not YAML 1.1's octal 8
    err = error_of(CSV + "training: {shuffle: yes}\n")
    assert str(err) == "spec.yaml:13:21: training.shuffle: expected true or false, got 'yes'"


def test_on_as_activation_is_an_error_not_a_boolean():
    err = error_of(CSV.replace("activation: relu", "activation: on"))
    assert err.field == "model.layers[0].activation" and err.where == "spec.yaml:7:44"
    assert "activation name" in err.message and "got 'on'" in err.message


# -- messages ---------------------------------------------------------------------------------
def test_negative_units_has_exact_place():
    text = CSV.replace("units: 16", "units: -3")
    assert str(error_of(text)) == (
        "spec.yaml:7:28: model.layers[0].units: expected a positive integer, got -3"
    )


def test_misspelled_keys_get_did_you_mean():
    err = error_of(CSV + "training:\n  epoch: 5\n")
    assert str(err) == "spec.yaml:14:3: training: unknown key 'epoch' (did you mean 'epochs'?)"
    err = error_of(CSV.replace("learning_rate", "learning_rat"))
    assert str(err) == (
        "spec.yaml:12:3: optimizer: unknown key 'learning_rat' (did you mean 'learning_rate'?)"
    )


@pytest.mark.parametrize(
    ("old", "new", "field", "suggestion"),
    [
        ("type: dense, units: 16", "type: dens, units: 16", "model.layers[0].type", "dense"),
        ("activation: relu", "activation: rellu", "model.layers[0].activation", "relu"),
        ("loss: cross_entropy", "loss: crossentropy", "loss", "cross_entropy"),
        ("type: sgd", "type: sdg", "optimizer.type", "sgd"),
        ("kind: csv", "kind: cvs", "data.kind", "csv"),
    ],
)
def test_unknown_names_get_did_you_mean(old, new, field, suggestion):
    err = error_of(CSV.replace(old, new))
    assert err.field == field and f"(did you mean {suggestion!r}?)" in err.message
    assert err.where.startswith("spec.yaml:")


def test_names_are_matched_in_any_case_and_stored_in_lower_case():
    text = (
        CSV.replace(
            "type: dense, units: 16", "type: Dense, units: 16, kernel_initializer: He_Normal"
        )
        .replace("activation: relu", "activation: ReLU")
        .replace("activation: softmax", "activation: {type: SoftMax}")
        .replace("loss: cross_entropy", "loss: Cross_Entropy")
        .replace("type: sgd", "type: SGD")
    )
    spec = loads(text, "spec.yaml")
    assert spec.model.layers[0] == {
        "type": "dense",
        "units": 16,
        "activation": "relu",
        "kernel_initializer": "he_normal",
    }
    assert spec.model.layers[1]["activation"] == {"type": "softmax"}
    assert (spec.loss, spec.optimizer["type"]) == ("cross_entropy", "sgd")
    assert "Dense" not in resolved_yaml(spec) and "SGD" not in resolved_yaml(spec)


@pytest.mark.parametrize(
    ("old", "new", "suggestion"),
    [
        ("loss: cross_entropy", "loss: categorical_crossentropy", "cross_entropy"),
        ("loss: cross_entropy", "loss: sparse_categorical_crossentropy", "cross_entropy"),
        ("loss: cross_entropy", "loss: CategoricalCrossentropy", "cross_entropy"),
        ("loss: cross_entropy", "loss: binary_crossentropy", "binary_cross_entropy"),
        ("loss: cross_entropy", "loss: mean_squared_error", "mse"),
        ("loss: cross_entropy", "loss: mean_absolute_error", "mae"),
        ("type: dense, units: 16", "type: AveragePooling2D, units: 16", "avgpool2d"),
        ("type: dense, units: 16", "type: MaxPooling2D, units: 16", "maxpool2d"),
        ("type: dense, units: 16", "type: SimpleRNN, units: 16", "rnn"),
        ("activation: relu", "activation: LeakyReLU", "leaky_relu"),
        (
            "activation: relu",
            "activation: relu, kernel_initializer: xavier_uniform",
            "glorot_uniform",
        ),
        ("learning_rate", "lr", "learning_rate"),
        ("units: 16", "units: 16, input_shape: [4]", "model.input"),
        ("target: species", "target: species\nepochs: 3", "training.epochs"),
        ("type: sgd", "type: sgd\n  epochs: 3", "training.epochs"),
    ],
)
def test_keras_and_pytorch_names_get_our_name_suggested_not_accepted(old, new, suggestion):
    lines = lines_of(error_of(CSV.replace(old, new)))
    assert len(lines) == 1 and lines[0].endswith(f"(did you mean {suggestion!r}?)"), lines


SPATIAL = "(nearest: 'dropout', which drops single values rather than whole channels)"
KERAS_LAYERS = {  # issue 23: Keras layer types -> the end of the error line
    "BatchNormalization": "(did you mean 'batchnorm'?)",
    "GlobalAveragePooling2D": "(did you mean 'global_avgpool'?)",
    "GlobalMaxPooling1D": "(did you mean 'global_maxpool'?)",
    "LayerNormalization": "(did you mean 'layernorm'?)",
    "MaxPooling1D": "(did you mean 'maxpool1d'?)",
    "Bidirectional": "(here a setting: rnn, lstm and gru take bidirectional: true)",
    "SpatialDropout": SPATIAL,
    "SpatialDropout1D": SPATIAL,
    "Activation": "(an activation is a layer: type: relu, or activation: relu on dense)",
    "TimeDistributed": "(a dense layer after return_sequences: true acts on each step)",
}


@pytest.mark.parametrize("name", sorted(KERAS_LAYERS))
def test_keras_layer_names_get_ours_or_what_to_write(name):
    lines = lines_of(error_of(CSV.replace("type: dense, units: 16", f"type: {name}, units: 16")))
    assert len(lines) == 1 and lines[0].endswith(KERAS_LAYERS[name]), lines


@pytest.mark.parametrize("name", ["Embedding", "Conv1D"])
def test_keras_layer_names_that_are_ours_in_another_case_are_taken(name):
    assert LAYERS.canonical(name) == name.lower()


def test_pytorch_keys_of_layers_get_ours():
    for layer, key, ours in [
        ("embedding, output_dim: 4", "num_embeddings", "input_dim"),
        ("embedding, input_dim: 9", "embedding_dim", "output_dim"),
        ("lstm", "hidden_size", "units"),
    ]:
        text = CSV.replace("type: dense, units: 16", f"type: {layer}, {key}: 9")
        lines = lines_of(error_of(text))
        assert any(line.endswith(f"'{key}' (did you mean '{ours}'?)") for line in lines), lines


def test_a_line_instead_is_said_only_where_it_applies():
    # 'bidirectional' on a dense layer is no layer type: no line about rnn, lstm and gru
    text = CSV.replace("units: 16,", "units: 16, bidirectional: true,")
    assert "rnn, lstm and gru" not in str(error_of(text))


def test_synonyms_for_keys_of_sections():
    text = CSV + "training:\n  epochs: 3\n  early_stopping: {restore_best_weights: true}\n"
    assert str(error_of(text)).endswith(
        "unknown key 'restore_best_weights' (did you mean 'restore_best'?)"
    )
    text = CSV + "training:\n  patience: 3\n"
    assert "(did you mean 'training.early_stopping.patience'?)" in str(error_of(text))


def test_every_unknown_key_is_reported_with_its_place():
    text = CSV.replace("units: 16,", "units: 16, input_shape: [4], use_bais: true,")
    text = text.replace("learning_rate: 1e-3", "lr: 1e-3\n  momentun: 0.9")
    text += "training: {epochs: 2, batch: 8, shufle: true}\nseeed: 1\n"
    assert lines_of(error_of(text)) == [
        "spec.yaml:7:32: model.layers[0]: unknown key 'input_shape' (did you mean 'model.input'?)",
        "spec.yaml:7:50: model.layers[0]: unknown key 'use_bais' (did you mean 'use_bias'?)",
        "spec.yaml:12:3: optimizer: unknown key 'lr' (did you mean 'learning_rate'?)",
        "spec.yaml:13:3: optimizer: unknown key 'momentun' (did you mean 'momentum'?)",
        "spec.yaml:14:23: training: unknown key 'batch' (did you mean 'batch_size'?)",
        "spec.yaml:14:33: training: unknown key 'shufle' (did you mean 'shuffle'?)",
        "spec.yaml:15:1: unknown key 'seeed' (did you mean 'seed'?)",
    ]


def test_choices_and_missing_keys():
    err = error_of(CSV + "device: gpuu\n")
    expected = "expected one of cpu, gpu, gpu:N, cuda:N, auto, got 'gpuu' (did you mean 'gpu'?)"
    assert err.message == expected
    err = error_of(CSV.replace("  target: species\n", ""))
    assert str(err) == "spec.yaml:1:1: data: missing required key 'target'"
    err = error_of(CSV.replace("target: species", "target: y\n  features: []"))
    assert err.field == "data.features" and "non-empty list" in err.message
    err = error_of(CSV.replace("species", "y\n  validation_split: 0.5\n  test_split: 0.5"))
    assert err.field == "data.test_split" and "must be below 1" in err.message


def test_yaml_syntax_error_is_one_spec_error_with_place():
    err = error_of("data: {kind: csv\nmodel: [\n")
    assert not isinstance(err, SpecErrors)
    assert err.where == "spec.yaml:2:6" and err.message.startswith("invalid YAML")


def test_duplicate_key_names_both_lines():
    err = error_of(CSV + "training:\n  epochs: 3\n  shuffle: true\n  epochs: 4\n")
    assert str(err) == "spec.yaml:16:3: training.epochs: duplicate key (first at line 14)"


@pytest.mark.parametrize(
    "value", ['!!python/object/apply:os.system ["touch X"]', "!!python/name:os.system", "!foo x"]
)
def test_unsafe_and_unknown_tags_are_refused_without_side_effects(tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    err = error_of(CSV + f"seed: {value}\n")
    assert err.where == "spec.yaml:13:7" and "unsupported YAML tag" in err.message
    assert not (tmp_path / "X").exists()


@pytest.mark.parametrize(
    "value, found",
    [("1e23", "1e+23"), ("100000000000000000000000", "100000000000000000000000"),
     ("4294967296", "4294967296"), ("-1", "-1"), ("1.5", "1.5")],
)  # fmt: skip
def test_a_seed_is_an_integer_in_numpys_seed_range(value, found):
    """A seed past 2**32 - 1 used to validate and then crash the checkpoint's save (exit 1)."""
    err = error_of(CSV + f"seed: {value}\n")
    assert err.where == "spec.yaml:13:7" and err.field == "seed"
    assert (
        err.message == f"expected an integer from 0 to 4294967295 (numpy's seed range), got {found}"
    )
    assert loads(CSV + "seed: 4294967295\n", "spec.yaml").seed == 2**32 - 1


@pytest.mark.parametrize(
    "value, message",
    [
        ("a" * 251, "expected a name of at most 250 bytes (it names the folder runs/<name>), "
         "got one of 251"),
        ("é" * 126, "at most 250 bytes (it names the folder runs/<name>), got one of 252"),
        ('"a\\tb"', "expected a name without slashes or control characters"),
        ("a/b", "expected a name without slashes or control characters"),
        ("..", "expected a name without slashes or control characters"),
    ],
)  # fmt: skip
def test_a_name_is_one_file_name_everywhere_it_is_used(value, message):
    """``name`` becomes runs/<name> and runs/<name>-tune: a 300-character name used to validate
    and then fail the run with "file name too long"."""
    err = error_of(CSV + f"name: {value}\n")
    assert err.field == "name" and message in err.message, err.message
    assert loads(CSV + f"name: {'a' * 250}\n", "spec.yaml").name == "a" * 250


def test_several_errors_are_reported_at_once_in_file_order():
    text = CSV.replace("units: 16", "units: 0").replace("type: sgd", "type: adamm")
    with pytest.raises(SpecErrors) as info:
        loads(text + "device: tpu\ntraining: {epochs: -1}\n", "spec.yaml")
    fields = [e.field for e in info.value.errors]
    assert fields == ["model.layers[0].units", "optimizer.type", "device", "training.epochs"]
    assert info.value.lines()[0].startswith("spec.yaml:7:")


def test_version():
    assert loads(CSV, "s").version == 1
    err = error_of("version: 3\nwhatever: true\n")
    assert str(err) == "spec.yaml:1:10: version: spec version 3 is newer than this nncli reads (2)"
    assert "positive integer" in error_of("version: '1'\n" + CSV).message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SpecError, match="no such spec file") as info:
        load(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"seed: 1\nname: \xff\n")
    with pytest.raises(SpecError, match="not UTF-8") as info:
        load(path)
    assert info.value.where.endswith("bad.yaml:2:7")


def test_line_of_points_into_the_file():
    spec = loads(CSV, "spec.yaml")
    assert spec.line_of("optimizer.learning_rate") == "spec.yaml:12:18"
    assert spec.line_of("model.layers[1].units") == "spec.yaml:8:28"
    assert spec.line_of("training.epochs") is None  # not written anywhere


# -- overrides --------------------------------------------------------------------------------
def test_overrides_apply_before_validation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = [
        "model.layers[1].units=128",
        "optimizer.learning_rate=0.01",
        "training.early_stopping.patience=3",
        "data.path=other.csv",
        "model.layers[0]={type: dense, units: 4}",
        "loss.type=mse",
    ]
    spec = loads(CSV, "spec.yaml", "/elsewhere", overrides=sets)
    assert spec.model.layers[1]["units"] == 128 and spec.model.layers[0]["units"] == 4
    assert spec.optimizer["learning_rate"] == 0.01 and spec.loss == "mse"
    assert spec.training.early_stopping.patience == 3
    assert spec.training.early_stopping.monitor == "val_loss"
    assert spec.data.path == tmp_path / "other.csv"  # command-line paths: the current folder
    assert spec.line_of("optimizer.learning_rate") == "--set"


def test_override_of_a_bare_name_and_of_the_default_optimizer():
    text = CSV.replace("- {type: dense, units: 16, activation: relu}", "- relu").split("optim")[0]
    spec = loads(text, "s", overrides=["optimizer.learning_rate=1e-2"])
    assert spec.optimizer["type"] == "adam" and spec.optimizer["learning_rate"] == 0.01
    with pytest.raises(SpecError, match=r"model.layers\[0\]: unknown key 'units'"):
        loads(text, "s", overrides=["model.layers[0].units=3"])


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("model.layers[9].units=3", "--set model.layers[9].units: no layer 9 (the model has 2)"),
        (
            "model.layers[1].units=-3",
            "--set model.layers[1].units: expected a positive integer, got -3",
        ),
        ("optimizer.learning_rate=[1", "--set optimizer.learning_rate: invalid YAML"),
        ("data.kind.x=1", "--set data.kind.x: data.kind is the value 'csv', not a mapping"),
        ("model..units=3", "--set: expected KEY=VALUE"),
        ("training.epochs", "--set training.epochs: expected KEY=VALUE"),
    ],
)
def test_bad_overrides_name_the_override(assignment, expected):
    err = error_of(CSV, overrides=[assignment])
    assert str(err).startswith(expected)
    assert err.where == "--set"


# -- round trip and limits --------------------------------------------------------------------
def test_resolved_yaml_round_trips_to_an_equal_spec(tmp_path):
    text = CSV.replace("target: species", "target: '1e3'") + "name: 'yes'\n"
    spec = load(write(tmp_path, text))
    again = loads(resolved_yaml(spec), "other.yaml", base_dir="/somewhere/else")
    assert again == spec and to_dict(again) == to_dict(spec)
    assert again.data.target == "1e3" and again.name == "yes"
    full = load(write(tmp_path, FULL))
    assert loads(resolved_yaml(full)) == full
    assert loads(resolved_yaml(full)) != spec


@pytest.fixture
def yaml_work(monkeypatch):
    """Counts the loader's work instead of timing it: loaders made, nodes composed, values built."""
    work = {"loaders": 0, "nodes": 0, "values": 0}

    def counted(cls, name, key):
        real = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            work[key] += 1
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    counted(spec_yaml._Loader, "__init__", "loaders")
    counted(spec_yaml._Composer, "compose_node", "nodes")
    counted(spec_yaml._Builder, "value", "values")
    return work


def test_large_spec_is_refused_before_it_is_read(tmp_path, yaml_work):
    text = CSV + "# " + "x" * (1 << 20) + "\n"
    with pytest.raises(SpecError, match="larger than"):
        load(write(tmp_path, text))
    with pytest.raises(SpecError, match="larger than"):
        loads(text)
    assert yaml_work["loaders"] == 0  # refused on its size, before the YAML scanner starts


@pytest.mark.parametrize(
    "text",
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "a: &a [*a]\n",
        "a: &x 1\nb: [" + ", ".join(["*x"] * 1000) + "]\n",
        "[" * 2000 + "]" * 2000,
        "a: [" + "1, " * 21_000 + "1]",
    ],
    ids=["billion-laughs", "recursive", "many-aliases", "deep", "many-values"],
)
def test_alias_bombs_and_deep_nesting_are_refused_after_bounded_work(text, yaml_work):
    with pytest.raises(SpecError):
        loads(text)
    # each limit stops its own stage: the composer at MAX_VALUES nodes or MAX_DEPTH levels, the
    # builder at MAX_VALUES values after alias expansion (billion laughs would build 9**9)
    assert yaml_work["nodes"] <= spec_yaml.MAX_VALUES + 1
    assert yaml_work["values"] <= spec_yaml.MAX_VALUES + 1


# -- any input: a SpecError or a Spec, nothing else -------------------------------------------
YAMLISH = st.text(alphabet=st.sampled_from(list(" \n\t:-[]{},#&*!|>'\"%@`?~.0123456789eE_abyn")))
MUTATION = st.tuples(
    st.sampled_from(["delete", "duplicate", "replace", "char"]),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.text(max_size=12) | YAMLISH.filter(lambda s: len(s) < 12),
)


def mutate(text: str, mutations: list[tuple[str, int, int, str]]) -> str:
    lines = text.split("\n")
    for op, i, j, new in mutations:
        k = i % len(lines)
        if op == "delete" and len(lines) > 1:
            del lines[k]
        elif op == "duplicate":
            lines.insert(j % len(lines), lines[k])
        elif op == "replace":
            lines[k] = new
        elif op == "char" and lines[k]:
            c = j % len(lines[k])
            lines[k] = lines[k][:c] + new[:1] + lines[k][c + 1 :]
    return "\n".join(lines)


def loads_or_spec_error(text: str) -> None:
    with contextlib.suppress(SpecError):
        assert isinstance(loads(text, "s.yaml", overrides=[]), Spec)


@settings(max_examples=120, deadline=None)
@given(st.sampled_from([CSV, FULL]), st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_specs_give_a_spec_or_a_spec_error(text, mutations):
    loads_or_spec_error(mutate(text, mutations))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200) | YAMLISH)
def test_random_text_gives_a_spec_error(text):
    loads_or_spec_error(text)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=200))
def test_random_bytes_give_a_spec_error(tmp_path, data):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    with pytest.raises(SpecError):
        load(path)


def test_module_exports_the_public_api(tmp_path):
    namespace: dict = {}
    exec("from nncli.spec import *", namespace)  # what __all__ really hands out
    exported = {name for name in namespace if not name.startswith("__")}
    assert exported == {"Spec", "build", "load", "loads", "resolve", "resolved_yaml", "to_dict"}
    assert callable(namespace["build"].network) and callable(namespace["resolve"].resolve)
    spec = namespace["loads"](FULL, base_dir=tmp_path)
    assert isinstance(spec, namespace["Spec"])
    again = namespace["loads"](namespace["resolved_yaml"](spec), base_dir=tmp_path)
    assert namespace["to_dict"](again) == namespace["to_dict"](spec)
