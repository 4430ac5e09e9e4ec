"""``model.init_from`` (nncli/commands/init_from.py): a run starts from a checkpoint's weights
for every layer that matches by name or place, type and shapes; a new head is drawn fresh; the
data's encoding may differ; ``train`` says where each layer came from."""

from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line

from nncli import spec as spec_module
from nncli.checkpoint import model as model_io
from nncli.commands.train import train


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A 3-class iris model, trained for 3 epochs: src/out/model.h5."""
    folder = tmp_path_factory.mktemp("src")
    (folder / "iris.csv").write_text(IRIS.read_text())
    (folder / "spec.yaml").write_text(iris_spec("{epochs: 3, batch_size: 16}"))
    assert invoke("train", folder / "spec.yaml").exit_code == 0
    return folder / "out" / "model.h5"


def two_class_spec(folder: Path, source: Path, layers: str = "") -> Path:
    """setosa against versicolor (iris's first 100 rows), starting from ``source``."""
    lines = IRIS.read_text().splitlines()
    (folder / "iris.csv").write_text("\n".join(lines[:101]) + "\n")
    text = iris_spec("{epochs: 2, batch_size: 16}")
    text = text.replace("model:\n", f"model:\n  init_from: {source}\n")
    if layers:
        text = text.replace(text[text.index("  layers:") : text.index("loss:")], layers)
    spec = folder / "spec.yaml"
    spec.write_text(text)
    return spec


def test_matching_layers_start_from_the_checkpoint_and_a_new_head_is_drawn(tmp_path, source):
    (tmp_path / "pre").mkdir()
    (tmp_path / "pre" / "model.h5").write_bytes(source.read_bytes())
    spec = two_class_spec(tmp_path, Path("pre") / "model.h5")
    loaded = spec_module.load(spec)
    assert loaded.model.init_from == tmp_path / "pre" / "model.h5"  # from the spec's folder
    before = {}  # after init_from, before the first step
    result = train(loaded, on_resolved=lambda ready: before.update(ready.net.get_weights()))
    trained = model_io.load(source).net.get_weights()
    for key in ("0.dense.weight", "0.dense.bias"):
        assert before[key].tobytes() == trained[key].tobytes(), key
    assert before["1.dense.weight"].shape == (2, 8) != trained["1.dense.weight"].shape
    rows = [(s.layer, s.source) for s in result.started]
    assert rows == [("layers[0] (dense)", "layers[0] (dense)"), ("layers[1] (dense)", None)]
    assert "weight is (2, 8) here, (3, 8) in the checkpoint" in result.started[1].why
    drawn = {}  # the head is the one the seed draws without init_from
    fresh = spec_module.load(spec, ["model.init_from=null"])
    train(
        fresh,
        output=tmp_path / "scratch.h5",
        on_resolved=lambda r: drawn.update(r.net.get_weights()),
    )
    np.testing.assert_array_equal(drawn["1.dense.weight"], before["1.dense.weight"])
    assert not np.array_equal(drawn["0.dense.weight"], before["0.dense.weight"])


def test_train_prints_where_each_layer_came_from(tmp_path, source):
    spec = two_class_spec(tmp_path, source)
    result = invoke("train", spec)
    assert result.exit_code == 0, result.output
    assert "layers[0] (dense): from model.h5 layers[0] (dense)" in result.stdout
    assert "layers[1] (dense): drawn fresh (weight is (2, 8) here" in result.stdout


def test_a_named_layer_takes_the_checkpoints_layer_of_its_name(tmp_path):
    named = (
        "  layers:\n"
        "    - {type: dense, units: 8, activation: relu, name: body}\n"
        "    - {type: dense, units: auto, activation: softmax, name: head}\n"
    )
    (tmp_path / "src").mkdir()
    first = two_class_spec(tmp_path / "src", Path("none.h5"), named)
    first.write_text(first.read_text().replace("  init_from: none.h5\n", ""))
    assert invoke("train", first).exit_code == 0
    renamed = named.replace("name: head", "name: out").replace(
        "units: 8,", "units: 8, inputs: input,"
    )
    spec = two_class_spec(tmp_path, Path("src/out/model.h5"), renamed)
    result = train(spec_module.load(spec))
    assert [s.source for s in result.started] == ["'body' (layers[0], dense)", None]
    assert result.started[1].why == "the checkpoint has no layer named 'out'"


def test_no_matching_layer_is_a_spec_error(tmp_path, source):
    layers = "  layers:\n    - {type: dense, units: auto, activation: softmax}\n"
    spec = two_class_spec(tmp_path, source, layers)
    one_error_line(invoke("train", spec), 2, "spec.yaml:", "model.init_from", "no layer of")


def test_a_run_never_writes_onto_the_checkpoint_it_starts_from(tmp_path, source):
    spec = two_class_spec(tmp_path, source)
    result = invoke("train", spec, "--output", source, "--force")
    assert result.exit_code == 2, result.output
    assert model_io.load(source).training["epoch"] == 3


def test_a_missing_checkpoint_is_named(tmp_path):
    spec = two_class_spec(tmp_path, Path("nowhere.h5"))
    one_error_line(invoke("train", spec), 4, "nowhere.h5", "no such file")


def test_validate_reads_and_matches_the_checkpoint_as_train_does(tmp_path, source):
    result = invoke("validate", two_class_spec(tmp_path, source))
    assert result.exit_code == 0, result.output
    assert "layers[1] (dense): drawn fresh (weight is (2, 8) here" in result.stdout
    layers = "  layers:\n    - {type: dense, units: auto, activation: softmax}\n"
    spec = two_class_spec(tmp_path, source, layers)
    one_error_line(invoke("validate", spec), 2, "model.init_from", "no layer of")
