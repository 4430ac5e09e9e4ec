"""``nncli plot --saliency IMAGE``: the heat map's data is the gradient of the predicted class's
output with respect to the input pixels, equal to central finite differences of the network's
own outputs on a tiny float64 model (tanh, so no kink is crossed); the heat is its largest
absolute value over the channels; the PNG is written by the output rules; a model that does not
read images and a second picture are refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, image_folder, invoke, iris_spec, one_error_line

pytest.importorskip("matplotlib")

from nncli.commands.plot import plot  # noqa: E402
from nncli.commands.predictor import Predictor  # noqa: E402

TINY = """\
version: 1
seed: 0
dtype: float64
data: {kind: images, path: d, validation_split: 0.0}
model:
  layers:
    - {type: conv2d, filters: 2, kernel_size: 3, padding: same, activation: tanh}
    - flatten
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 2, batch_size: 4}
output: out/model.h5
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("saliency")
    image_folder(root / "d")
    (root / "spec.yaml").write_text(TINY)
    result = invoke("train", root / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return root / "out" / "model.h5"


def test_the_heat_map_is_the_finite_difference_gradient_of_the_predicted_class(tiny, tmp_path):
    image = tiny.parents[1] / "d" / "light" / "0.png"
    output = tmp_path / "s.png"
    done = plot(tiny, saliency=image, output=output)
    picture = done["picture"]
    predictor = Predictor.load(tiny)
    x, _ = predictor.encoder.inputs(predictor.read_file(image))
    x = np.asarray(x[:1], dtype=np.float64)
    probabilities = predictor.outputs(x)[0]
    k = int(np.argmax(probabilities))
    assert picture.title.startswith(f"0.png: predicted {predictor.labels[k]}")
    h, pixels = 1e-5, x[0].size
    steps = (h * np.eye(pixels)).reshape(pixels, *x.shape[1:])  # one pixel moved a row
    up, down = predictor.outputs(x + steps)[:, k], predictor.outputs(x - steps)[:, k]
    numeric = ((up - down) / (2 * h)).reshape(x.shape[1:])
    scale = np.abs(numeric).max()
    assert scale > 0
    np.testing.assert_allclose(picture.gradient, numeric, rtol=1e-6, atol=1e-8 * scale)
    np.testing.assert_array_equal(picture.heat, np.abs(picture.gradient).max(axis=0))
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert done["size"] == (720, 380)


def test_saliency_keeps_the_output_rules_and_refuses_what_it_cannot_draw(tiny, tmp_path):
    image = tiny.parents[1] / "d" / "dark" / "0.png"
    result = invoke("plot", tiny, "--saliency", image)
    assert result.exit_code == 0, result.stderr
    assert (tiny.parent / "model.saliency.png").exists()
    one_error_line(invoke("plot", tiny, "--saliency", image), 2, "--force")
    one_error_line(invoke("plot", tiny, "--saliency", image, "--output", image), 2)
    one_error_line(invoke("plot", tiny, "--saliency", image, "--graph"), 2, "choose one")
    folder = tmp_path / "iris"
    folder.mkdir()
    (folder / "iris.csv").write_bytes(IRIS.read_bytes())
    (folder / "spec.yaml").write_text(iris_spec("{epochs: 1, batch_size: 16}"))
    assert invoke("train", folder / "spec.yaml", "--quiet").exit_code == 0
    one_error_line(
        invoke("plot", folder / "out" / "model.h5", "--saliency", image), 2, "CSV tables"
    )
