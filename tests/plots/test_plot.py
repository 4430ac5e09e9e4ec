"""``nncli plot``: learning curves (with the best epoch, an early stop, the learning rate and a
log axis for a loss that falls by orders of magnitude), the confusion matrix evaluate computes,
a regression's predictions against the actual values and its residuals, a conv layer's filters
and one image's feature maps; checked on the data handed to matplotlib (its ``plot``,
``scatter``, ``axvline``, ``axhline``, ``set_yscale`` and ``imshow`` calls are recorded), the
PNG's documented size, the missing-matplotlib line and the output rules."""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    DATASETS,
    IRIS,
    assert_close_float32,
    chain_terms,
    invoke,
    iris_spec,
    one_error_line,
    sha,
)

pytest.importorskip("matplotlib")

from matplotlib.axes import Axes  # noqa: E402

from nncli.checkpoint import model as model_io  # noqa: E402
from nncli.commands.plot import plot  # noqa: E402
from nncli.plots import draw, panels  # noqa: E402

SCHEDULED = "{epochs: 4, batch_size: 16}"
STOPPING = "{epochs: 30, batch_size: 16, early_stopping: {monitor: val_accuracy, patience: 1}}"
DIGITS_SPEC = """\
version: 1
seed: 0
data: {kind: images, path: digits, color: grayscale, validation_split: 0.2}
model:
  layers:
    - {type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu}
    - {type: maxpool2d, pool_size: 2}
    - {type: conv2d, filters: 6, kernel_size: 3, padding: same, activation: relu}
    - flatten
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 2, batch_size: 16}
output: out/model.h5
"""
REGRESSION_SPEC = """version: 1
seed: 0
data: {kind: csv, path: iris.csv, target: petal_width_cm, validation_split: 0.2}
model:
  layers: [{type: dense, units: 8, activation: relu}, {type: dense, units: 1}]
loss: mse
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 3, batch_size: 16}
output: out/model.h5
"""


def train(folder: Path, spec: str, *extra: str) -> Path:
    folder.mkdir()
    shutil.copy(IRIS, folder / "iris.csv")
    (folder / "spec.yaml").write_text(spec)
    result = invoke("train", folder / "spec.yaml", "--quiet", *extra)
    assert result.exit_code == 0, result.stderr
    return folder / "out" / "model.h5"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three small iris runs (a cosine schedule; a plain one; an early stop) and a small CNN
    on three digits' images."""
    root = tmp_path_factory.mktemp("plot")
    digits = root / "cnn"
    for label in ("0", "1", "7"):
        source = sorted((DATASETS / "digits_png" / label).iterdir())[:15]
        (digits / "digits" / label).mkdir(parents=True)
        for path in source:
            shutil.copy(path, digits / "digits" / label / path.name)
    (digits / "spec.yaml").write_text(DIGITS_SPEC)
    result = invoke("train", digits / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return {
        "scheduled": train(
            root / "scheduled",
            iris_spec(SCHEDULED),
            "--set",
            "optimizer.schedule={type: cosine, warmup_epochs: 1}",
        ),
        "plain": train(root / "plain", iris_spec("{epochs: 3, batch_size: 16}")),
        "stopped": train(root / "stopped", iris_spec(STOPPING)),
        "regression": train(root / "regression", REGRESSION_SPEC),
        "cnn": digits / "out" / "model.h5",
    }


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Every ``plot``, ``scatter``, ``axvline``, ``axhline``, ``set_yscale`` and ``imshow``
    call matplotlib gets, with its arrays."""
    names = ("plot", "scatter", "axvline", "axhline", "set_yscale", "imshow")
    calls: dict[str, list] = {name: [] for name in names}
    for name in calls:
        original = getattr(Axes, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls[_name].append((args, kwargs))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Axes, name, spy)
    return calls


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def history_of(checkpoint: Path) -> dict[str, np.ndarray]:
    return model_io.load(checkpoint).training["history"]


# -- learning curves -------------------------------------------------------------------------
def test_curves_plot_the_history_with_the_learning_rate_in_a_png_of_the_documented_size(
    runs, drawn, tmp_path
):
    output = tmp_path / "curves.png"
    done = plot(runs["scheduled"], output=output)
    history = history_of(runs["scheduled"])
    picture = done["picture"]
    assert [p.title for p in picture.panels] == ["loss", "accuracy", "learning rate"]
    assert png_size(output) == done["size"] == (2 * 560, 2 * 420)  # 3 panels, 2 a row
    lines = [(np.asarray(args[0]), np.asarray(args[1])) for args, _ in drawn["plot"]]
    expected = [history[k] for k in ("loss", "val_loss", "accuracy", "val_accuracy", "lr")]
    assert len(lines) == len(expected)
    for (epochs, values), want in zip(lines, expected, strict=True):
        np.testing.assert_array_equal(epochs, history["epoch"])
        np.testing.assert_array_equal(values, want)
    assert len(np.unique(history["lr"])) > 1  # the cosine schedule changed the rate


def test_no_learning_rate_panel_and_no_marks_without_a_schedule_or_early_stopping(
    runs, drawn, tmp_path
):
    done = plot(runs["plain"], output=tmp_path / "plain.png")
    assert [p.title for p in done["picture"].panels] == ["loss", "accuracy"]
    assert done["picture"].marks == panels.Marks()
    assert drawn["axvline"] == []
    assert png_size(tmp_path / "plain.png") == (2 * 560, 420)


def test_best_epoch_and_early_stop_are_marked(runs, drawn, tmp_path):
    training = model_io.load(runs["stopped"]).training
    last, best = int(training["epoch"]), int(training["best_epoch"])
    assert last < 30 and last - best == 2  # patience 1 ran out
    done = plot(runs["stopped"], output=tmp_path / "stopped.png")
    marks = done["picture"].marks
    assert (marks.best_epoch, marks.stop_epoch, marks.restored) == (best, last, True)
    assert marks.monitor == "val_accuracy" and marks.best_value == training["best_value"]
    lines = [(args[0], kwargs["label"]) for args, kwargs in drawn["axvline"]]
    assert lines == [(best, f"best epoch {best}"), (last, "early stop, best restored")] * 2


def test_a_run_that_kept_its_patience_has_a_best_epoch_but_no_stop():
    history = {"epoch": np.arange(1, 6)}
    stopping = {"monitor": "val_loss", "patience": 3, "restore_best": True}
    marks = panels.early_stop_marks(history, 2, 0.5, stopping)
    assert (marks.best_epoch, marks.stop_epoch) == (2, None)


def test_confusion_counts_and_labels_are_evaluates(runs, drawn, tmp_path):
    data = runs["plain"].parents[1] / "iris.csv"
    done = plot(runs["plain"], data=data, output=tmp_path / "c.png")
    confusion = done["picture"].confusion
    evaluated = json.loads(
        invoke("evaluate", runs["plain"], data, "--json", "--part", "all").stdout
    )
    assert confusion.labels == evaluated["labels"] == ["setosa", "versicolor", "virginica"]
    assert confusion.counts.tolist() == evaluated["confusion"]
    np.testing.assert_allclose(confusion.colours.sum(axis=1), 1.0)
    (colours,), _ = drawn["imshow"][0]
    np.testing.assert_array_equal(colours, confusion.colours)
    assert png_size(tmp_path / "c.png") == (2 * 560, 2 * 420)  # 2 curve panels + confusion


def test_a_regression_on_data_plots_predicted_against_actual_and_the_residuals(
    runs, drawn, tmp_path
):
    data = runs["regression"].parents[1] / "iris.csv"
    done = plot(runs["regression"], data=data, output=tmp_path / "r.png")
    (fit,) = done["picture"].fits
    assert done["picture"].confusion is None and fit.name == "petal_width_cm"
    truth = np.loadtxt(data, delimiter=",", skiprows=1, usecols=3)  # the file's own units
    assert_close_float32(fit.actual, truth, magnitude=truth)  # read as float32: one rounding
    written = tmp_path / "predicted.csv"
    assert invoke("predict", runs["regression"], data, "--output", written).exit_code == 0
    predicted = np.loadtxt(written, delimiter=",", skiprows=1)
    net = model_io.load(runs["regression"]).net
    assert_close_float32(fit.predicted, predicted, chain_terms(net))
    np.testing.assert_array_equal(fit.residuals, fit.actual - fit.predicted)
    evaluated = json.loads(
        invoke("evaluate", runs["regression"], data, "--part", "all", "--json").stdout
    )
    rmse = np.sqrt(np.mean(fit.residuals**2))
    assert_close_float32(rmse, evaluated["metrics"]["rmse"], terms=2 * len(truth))
    assert fit.title.startswith("iris.csv: 150 rows, rmse ")
    # matplotlib got exactly these: the scatter, y = x over both ranges, the residuals, y = 0
    (args, _), (residual_args, _) = drawn["scatter"]
    np.testing.assert_array_equal(args[0], fit.actual)
    np.testing.assert_array_equal(args[1], fit.predicted)
    np.testing.assert_array_equal(residual_args[0], fit.predicted)
    np.testing.assert_array_equal(residual_args[1], fit.residuals)
    both = np.concatenate([fit.actual, fit.predicted])
    low, high = both.min(), both.max()
    diagonal = [(list(a[0]), list(a[1])) for a, k in drawn["plot"] if k.get("label") == "y = x"]
    assert diagonal == [([low, high], [low, high])]
    assert [args[0] for args, _ in drawn["axhline"]] == [0.0]
    # loss, mae, rmse panels; the pair of fit panels on a row of its own
    assert [p.title for p in done["picture"].panels] == ["loss", "mae", "rmse"]
    assert png_size(tmp_path / "r.png") == done["size"] == (2 * 560, 3 * 420)


def test_a_regression_fit_through_the_command_line(runs, tmp_path):
    data = runs["regression"].parents[1] / "iris.csv"
    result = invoke("plot", runs["regression"], "--data", data, "--output", tmp_path / "r.png")
    assert result.exit_code == 0, result.stderr
    assert f"wrote {tmp_path / 'r.png'} (1120x1260 px)" in result.stderr


def test_a_loss_falling_by_orders_of_magnitude_gets_a_log_axis(drawn):
    epochs = np.arange(1, 6)
    falling = {"epoch": epochs, "loss": np.array([12.0, 1.5, 0.2, 0.05, 0.01]),
               "val_loss": np.array([9.0, 2.0, 0.3, 0.1, 0.08]),
               "accuracy": np.array([0.3, 0.6, 0.8, 0.9, 0.95])}  # fmt: skip
    loss, accuracy = panels.curve_panels(falling, schedule=False)
    assert (loss.title, loss.log) == ("loss", True)  # 12 / 0.01: three decades
    assert (accuracy.title, accuracy.log) == ("accuracy", False)  # 0.95 / 0.3
    draw.render(panels.Curves("t", [loss, accuracy]))
    assert [args for args, _ in drawn["set_yscale"]] == [("log",)]
    flat = {"epoch": epochs, "loss": np.array([1.0, 0.5, 0.3, 0.2, 0.011])}  # 91x: linear
    assert not panels.curve_panels(flat, schedule=False)[0].log
    odd = ([10.0, 1.0, 0.0, 0.0, 0.0], [10.0, 1.0, -0.5, 0.01, 0.001], [1e3, np.nan, 1, 1, 1])
    for values in odd:  # a zero, a negative, a NaN
        history = {"epoch": epochs, "loss": np.array(values)}
        assert not panels.curve_panels(history, schedule=False)[0].log, values


# -- filters and feature maps ------------------------------------------------------------------
def test_filters_one_tile_per_filter(runs, drawn):
    weight = model_io.load(runs["cnn"]).net.layers[0].params["weight"]  # (4, 1, 3, 3)
    done = plot(runs["cnn"], filters=True, force=True)
    assert done["path"] == runs["cnn"].with_name("model.filters.png")
    grid = done["picture"]
    assert grid.mode == "grey" and len(grid.tiles) == 4 == len(drawn["imshow"])
    for tile, (args, _) in zip(grid.tiles, drawn["imshow"], strict=True):
        np.testing.assert_array_equal(args[0], tile)
    np.testing.assert_array_equal(np.asarray(grid.tiles), weight[:, 0])
    assert png_size(done["path"]) == (800, 60 + 100)  # one row of 8 tiles


def test_filters_of_a_chosen_layer_average_its_channels(runs, tmp_path):
    weight = model_io.load(runs["cnn"]).net.layers[2].params["weight"]  # (6, 4, 3, 3)
    done = plot(runs["cnn"], filters=True, layer=2, output=tmp_path / "l2.png")
    assert done["picture"].mode == "mean" and len(done["picture"].tiles) == 6
    np.testing.assert_allclose(done["picture"].tiles, weight.astype(np.float64).mean(axis=1))
    assert "channels averaged" in done["picture"].title


def test_filter_tiles_rgb_and_conv1d():
    rgb = panels.filter_grid("t", np.random.default_rng(0).normal(size=(5, 3, 2, 2)))
    assert rgb.mode == "rgb" and len(rgb.tiles) == 5 and rgb.tiles[0].shape == (2, 2, 3)
    assert min(t.min() for t in rgb.tiles) >= 0.0 and max(t.max() for t in rgb.tiles) <= 1.0
    taps = panels.filter_grid("t", np.ones((7, 4, 3)))
    assert taps.mode == "taps" and len(taps.tiles) == 7 and taps.tiles[0].shape == (4, 3)
    for grid in (rgb, taps):  # both draw, at the documented size
        assert draw.size(grid) == (800, 60 + 100)
        assert draw.render(grid)[:8] == b"\x89PNG\r\n\x1a\n"


def test_activations_one_panel_per_conv_layer_from_the_image_predict_encodes(runs):
    from nncli.commands.apply import read_data, stored_encoder

    image = next((runs["cnn"].parents[1] / "digits" / "7").iterdir())
    done = plot(runs["cnn"], activations=image, force=True)
    maps = done["picture"]
    assert [len(layer.maps) for layer in maps.layers] == [4, 6]  # the two conv2d layers
    assert maps.layers[0].maps[0].shape == (8, 8) and maps.layers[1].maps[0].shape == (4, 4)
    encoder = stored_encoder(model_io.load(runs["cnn"]))
    x, _ = encoder.inputs(read_data(encoder, image))
    np.testing.assert_array_equal(maps.image, x[0, 0])
    assert png_size(done["path"]) == (800, (40 + 100) + (40 + 100) + (40 + 100))


def test_activations_and_filters_need_the_right_model(runs, tmp_path):
    output = ("--output", tmp_path / "x.png")
    result = invoke("plot", runs["plain"], "--filters", *output)
    one_error_line(result, 2, "--filters", "has none (dense, dense)")
    result = invoke("plot", runs["cnn"], "--filters", "--layer", "3", *output)
    one_error_line(result, 2, "--layer", "0 (conv2d), 2 (conv2d)", "flatten")
    result = invoke("plot", runs["plain"], "--activations", IRIS, *output)
    one_error_line(result, 2, "--activations", "CSV tables")
    assert not (tmp_path / "x.png").exists()


# -- the command line: matplotlib missing, options, output rules ------------------------------
def test_without_matplotlib_one_line_with_the_install_hint(runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    result = invoke("plot", runs["plain"])
    one_error_line(result, 2, 'pip install -e ".[plot]"')
    assert not runs["plain"].with_name("model.png").exists()


def test_default_output_beside_the_checkpoint_and_no_overwrite_without_force(runs, tmp_path):
    checkpoint = tmp_path / "a.h5"
    shutil.copy(runs["plain"], checkpoint)
    first = invoke("plot", checkpoint)
    assert first.exit_code == 0, first.stderr
    output = tmp_path / "a.png"
    assert f"wrote {output} (1120x420 px)" in first.stderr
    before = sha(output)
    one_error_line(invoke("plot", checkpoint), 2, str(output), "--force")
    assert sha(output) == before
    again = invoke("plot", checkpoint, "--force")
    assert again.exit_code == 0 and f"replaced {output}" in again.stderr
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temporary file


def test_output_never_lands_on_an_input(runs):
    image = next((runs["cnn"].parents[1] / "digits" / "0").iterdir())
    for args in (
        (runs["cnn"], "--output", runs["cnn"]),
        (runs["cnn"], "--activations", image, "--output", image),
    ):
        target = args[-1]
        before = sha(target)
        one_error_line(invoke("plot", *args), 2, "input", str(target))
        assert sha(target) == before


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--filters", "--activations", "x.png"), "choose one"),
        (("--layer", "0"), "add --filters"),
        (("--filters", "--data", "iris.csv"), "--data"),
        (("--output", "curves.jpg"), ".png"),
    ],
)
def test_options_that_mean_nothing_together_exit_2(runs, args, needle):
    one_error_line(invoke("plot", runs["plain"], *args), 2, needle)


def test_the_stop_mark_counts_patience_by_the_runs_spec_version():
    """Version 2 stops once ``patience`` epochs went without improvement, version 1 after one
    more: 3 epochs after the best is a stop for patience 3 under version 2 only."""
    history = {"epoch": np.arange(1, 6)}
    stopping = {"monitor": "val_loss", "patience": 3, "restore_best": True}
    assert panels.early_stop_marks(history, 2, 0.5, {**stopping, "version": 2}).stop_epoch == 5
    assert panels.early_stop_marks(history, 2, 0.5, {**stopping, "version": 1}).stop_epoch is None
    assert panels.early_stop_marks(history, 5, 0.5, {**stopping, "version": 2}).stop_epoch is None
