"""Sequence data: time-series windows, text windows and grouped sequences, through the loaders
and the command line (train, predict, predict --steps, evaluate)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import (
    ROOT,
    assert_close_float32,
    assert_network_close,
    chain_terms,
    invoke,
    one_error_line,
)

from nncli import data
from nncli.checkpoint import model as model_io
from nncli.data.sequences import SequenceEncoder
from nncli.data.text import OneHotWindows, TextEncoder, join_words, one_hot, tokens
from nncli.errors import DataError, SpecError
from nncli.training.loop import predict


def series_cfg(path: Path, **settings) -> SimpleNamespace:
    base = dict(kind="timeseries", path=str(path), columns=["a", "b"], target="a", window=5)
    base.update(horizon=1, stride=1, normalize="none", validation_split=0.2, test_split=0.0)
    return SimpleNamespace(**{**base, **settings})


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """30 rows: a = the row number, b = 100 + the row number, so values name their rows."""
    rows = [f"{t},{t}.0,{100 + t}.0" for t in range(30)]
    path = tmp_path / "series.csv"
    path.write_text("t,a,b\n" + "\n".join(rows) + "\n")
    return path


# -- time series -------------------------------------------------------------------------------
def test_windows_and_horizon_shapes(series: Path):
    ds = data.load(series_cfg(series, horizon=3, stride=2), series.parent, 0, "mse")
    n_train = 30 - 6  # validation: round(0.2 * 30) rows at the tail
    starts = np.arange(0, 30 - 5 - 3 + 1, 2)
    train_starts = starts[starts + 5 - 1 + 3 < n_train]
    assert ds.parts["train"].x.shape == (len(train_starts), 5, 2)
    assert ds.parts["train"].y.shape == (len(train_starts), 1)
    assert ds.input_shape == (5, 2) and ds.output_width == 1
    np.testing.assert_array_equal(
        ds.parts["train"].x[:, :, 0], train_starts[:, None] + np.arange(5)
    )
    np.testing.assert_array_equal(
        ds.parts["train"].x[:, :, 1], 100 + train_starts[:, None] + np.arange(5)
    )
    # the target is `horizon` rows after the window's last row
    np.testing.assert_array_equal(ds.parts["train"].y[:, 0], train_starts + 4 + 3)


def test_float64_series_are_not_rounded_through_float32(tmp_path: Path):
    rows = [f"{t},{t + 0.1:.1f},{t}.000000001" for t in range(30)]
    path = tmp_path / "fine.csv"
    path.write_text("t,a,b\n" + "\n".join(rows) + "\n")
    ds = data.load(series_cfg(path), tmp_path, 0, "mse", dtype="float64")
    assert ds.parts["train"].x.dtype == ds.parts["train"].y.dtype == np.float64
    np.testing.assert_array_equal(ds.parts["train"].x[0, :, 0], [0.1, 1.1, 2.1, 3.1, 4.1])
    np.testing.assert_array_equal(ds.parts["train"].x[0, :2, 1], [0.000000001, 1.000000001])
    again = type(ds.encoder).from_state(ds.encoder.to_state())
    assert again.scaled_series(again.read_frame(path)).dtype == np.float64


def test_split_is_chronological(series: Path):
    cfg = series_cfg(series, validation_split=0.2, test_split=0.1)
    ds = data.load(cfg, series.parent, 0, "mse")
    n_test, n_val = 3, 6
    n_train = 30 - n_test - n_val
    assert ds.parts["train"].y[:, 0].max() < n_train
    assert set(ds.parts["validation"].y[:, 0]) == set(range(n_train, n_train + n_val))
    assert set(ds.parts["test"].y[:, 0]) == set(range(30 - n_test, 30))
    # a validation window's history reaches back into the training rows: a forecaster knows them
    assert ds.parts["validation"].x[0, 0, 0] < n_train


def test_scaling_comes_from_the_training_part_only(series: Path, tmp_path: Path):
    ds = data.load(series_cfg(series, normalize="standard"), series.parent, 0, "mse")
    train_rows = np.arange(24.0)
    column = ds.encoder.input_columns[0]
    assert column.offset == pytest.approx(train_rows.mean())
    assert column.scale == pytest.approx(train_rows.std())
    # changing the validation tail changes nothing in the scaling
    lines = series.read_text().splitlines()
    lines[-1] = "29,5000.0,129.0"
    other = tmp_path / "other.csv"
    other.write_text("\n".join(lines) + "\n")
    ds2 = data.load(series_cfg(other, normalize="standard"), tmp_path, 0, "mse")
    assert ds2.encoder.input_columns[0].offset == column.offset
    np.testing.assert_array_equal(ds2.parts["train"].x, ds.parts["train"].x)
    # targets are scaled like the inputs, and decode maps them back to the file's units
    back = ds.encoder.decode(ds.parts["validation"].y)["prediction"]
    assert_close_float32(back, np.arange(24, 30), terms=3)  # scaled into float32 and back


def test_window_longer_than_the_series(series: Path):
    with pytest.raises(DataError, match=r"window 40 \+ horizon 1 needs at least 41 rows; the "):
        data.load(series_cfg(series, window=40), series.parent, 0, "mse")
    with pytest.raises(DataError, match="training part"):
        data.load(series_cfg(series, window=22, validation_split=0.3), series.parent, 0, "mse")


def test_series_errors_name_the_line_and_column(series: Path):
    text = series.read_text().replace("7,7.0,107.0", "7,seven,107.0")
    series.write_text(text)
    with pytest.raises(DataError, match=r"column 'a' expects numbers, found 'seven' on line 9"):
        data.load(series_cfg(series), series.parent, 0, "mse")
    with pytest.raises(DataError, match=r"column 'c' not in series.csv"):
        data.load(series_cfg(series, columns=["c"]), series.parent, 0, "mse")
    with pytest.raises(SpecError, match="regression loss"):
        data.load(series_cfg(series), series.parent, 0, "cross_entropy")


SERIES_SPEC = """\
seed: 0
data: {kind: timeseries, path: wave.csv, columns: [y], target: y, window: 8}
model:
  layers: [{type: lstm, units: 8}, {type: dense, units: 1}]
loss: mse
optimizer: {type: adam, learning_rate: 0.02}
training: {epochs: 3, batch_size: 16}
output: out/model.h5
"""


@pytest.fixture
def wave_model(tmp_path: Path) -> Path:
    t = np.arange(120)
    y = 10 + 5 * np.sin(t / 4)
    x2 = np.cos(t / 4)
    rows = [f"{a},{b:.5f},{c:.5f}" for a, b, c in zip(t, y, x2, strict=True)]
    (tmp_path / "wave.csv").write_text("t,y,x2\n" + "\n".join(rows) + "\n")
    (tmp_path / "wave.yaml").write_text(SERIES_SPEC)
    result = invoke("train", tmp_path / "wave.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return tmp_path / "out" / "model.h5"


def test_forecast_and_rolling_steps_through_the_cli(wave_model: Path):
    folder = wave_model.parent.parent
    recent = folder / "recent.csv"
    recent.write_text("\n".join((folder / "wave.csv").read_text().splitlines()[:31]) + "\n")
    result = invoke("predict", wave_model, recent)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "step,prediction" and len(lines) == 2
    first = float(lines[1].split(",")[1])

    model = model_io.load(wave_model)
    encoder = data.encoder_from_state(model.encoder_state)
    frame = encoder.read_frame(recent)
    window = encoder.inputs(frame)[0]
    expected = encoder.decode(predict(model.net, window))["prediction"][0]
    assert_close_float32(first, expected, chain_terms(model.net, 8))  # in the file's units

    result = invoke("predict", wave_model, recent, "--steps", "3")
    assert result.exit_code == 0, result.stderr
    rows = [line.split(",") for line in result.stdout.strip().splitlines()[1:]]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert_close_float32(float(rows[0][1]), first)
    # step 2 is the model applied to the window with the first forecast fed back
    scaled = predict(model.net, window)
    fed = np.concatenate([window[:, 1:], scaled[:, None, :]], axis=1)
    second = encoder.decode(predict(model.net, fed))["prediction"][0]
    assert_close_float32(float(rows[1][1]), second, chain_terms(model.net, 8))

    result = invoke("evaluate", wave_model, folder / "wave.csv", "--part", "all")
    assert result.exit_code == 0, result.stderr
    assert "(112 rows)" in result.stdout  # every window with a target: 120 - 8 - 1 + 1


def test_series_metrics_are_in_the_files_units(wave_model: Path):
    """RMSE and MAE in the history and from evaluate are in the target's units (y swings by 5
    around 10); the loss stays the training objective, the MSE of the scaled targets."""
    from nncli import spec as spec_module
    from nncli.commands.evaluate import evaluate_file

    folder = wave_model.parent.parent
    loaded = spec_module.load(folder / "wave.yaml")
    ds = data.load(loaded.data, loaded.base_dir, loaded.seed, loaded.loss)
    model = model_io.load(wave_model)
    scale = float(model.target_scale[0])
    assert scale > 3  # so scaled and unscaled metrics differ clearly

    def errors(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ds.encoder.unscale_targets(predict(model.net, x)) - ds.encoder.unscale_targets(y)

    def check(metrics: dict, x: np.ndarray, y: np.ndarray) -> None:
        """float32 predictions (another batch size: another BLAS path) then float32 batch means
        of 16: an error dp in a scaled prediction moves RMSE and MAE by scale * dp at most, the
        loss by 2 sqrt(loss) dp."""
        diff, reach = errors(x, y), float(np.abs(predict(model.net, x)).max())
        terms, loss = chain_terms(model.net, 8) + 16, np.mean((diff / scale) ** 2)
        for name, want, magnitude in [
            ("rmse", np.sqrt(np.mean(diff**2)), scale * reach),
            ("mae", np.mean(np.abs(diff)), scale * reach),
            ("loss", loss, 2 * np.sqrt(loss) * reach),
        ]:
            assert_close_float32(metrics[name], want, terms, magnitude=magnitude + want)

    last = model.training["history"]
    check(
        {k: last[f"val_{k}"][-1] for k in ("rmse", "mae", "loss")},
        ds.parts["validation"].x,
        ds.parts["validation"].y,
    )
    result = evaluate_file(wave_model, folder / "wave.csv")
    x, y, _ = ds.encoder.labelled(ds.encoder.read_frame(folder / "wave.csv"))
    assert result["rows"] == len(x) == 112
    check(result["metrics"], x, y)


def test_rolling_needs_the_inputs_among_the_targets(tmp_path: Path, wave_model: Path):
    spec = tmp_path / "wave.yaml"
    spec.write_text(SERIES_SPEC.replace("columns: [y]", "columns: [y, x2]"))
    out = tmp_path / "two" / "model.h5"
    assert invoke("train", spec, "--quiet", "--output", out).exit_code == 0
    result = invoke("predict", out, tmp_path / "wave.csv", "--steps", "2")
    one_error_line(result, 2, "--steps", "every input column must be a target", "'x2'")
    result = invoke("predict", out, tmp_path / "wave.csv")
    assert result.exit_code == 0 and len(result.stdout.strip().splitlines()) == 2


def test_cli_data_errors_for_series(tmp_path: Path, wave_model: Path):
    short = tmp_path / "short.csv"
    short.write_text("t,y,x2\n0,1.0,0.5\n1,2.0,0.5\n")
    one_error_line(invoke("predict", wave_model, short), 3, "short.csv", "last 8 rows", "has 2")
    spec = tmp_path / "long.yaml"
    spec.write_text(SERIES_SPEC.replace("window: 8", "window: 500"))
    result = invoke("train", spec, "--quiet", "--output", tmp_path / "long" / "model.h5")
    one_error_line(result, 3, "window 500", "the series has 120")


# -- text ----------------------------------------------------------------------------------------
def text_cfg(path: Path, **settings) -> SimpleNamespace:
    base = dict(kind="text", path=str(path), level="char", sequence_length=4, stride=None)
    base.update(validation_split=0.25, max_chars=None)
    return SimpleNamespace(**{**base, **settings})


def test_char_vocabulary_and_shifted_targets(tmp_path: Path):
    path = tmp_path / "t.txt"
    path.write_text("abcabdabcabdabcabdxyzw")
    ds = data.load(text_cfg(path), tmp_path, 0, "cross_entropy")
    encoder = ds.encoder
    assert encoder.vocabulary == sorted(set("abcabdabcabdabcabdxyzw"))
    assert ds.input_shape == (4, len(encoder.vocabulary)) and ds.output_width == 8
    x, y = ds.parts["train"].x[:], ds.parts["train"].y[:]
    assert x.shape == y.shape == (len(ds.parts["train"].x), 4, 8) and x.dtype == np.float32
    assert (x.sum(axis=2) == 1).all()
    # the target at step t is the symbol at step t + 1
    ids_x, ids_y = x.argmax(axis=2), y.argmax(axis=2)
    np.testing.assert_array_equal(ids_x[:, 1:], ids_y[:, :-1])
    assert encoder.join(ids_x[0]) == "abca" and encoder.join(ids_y[0]) == "bcab"
    # non-overlapping windows (stride = sequence_length); validation is the tail
    assert [encoder.join(w) for w in ids_x] == ["abca", "bdab", "cabd"]
    assert encoder.join(ds.parts["validation"].x[:].argmax(axis=2)[0]) == "bdxy"


def test_word_vocabulary(tmp_path: Path):
    text = "To be, or not to be.\nThat is the question.\n" * 3
    path = tmp_path / "w.txt"
    path.write_text(text)
    ds = data.load(text_cfg(path, level="word", validation_split=0.0), tmp_path, 0, "cross_entropy")
    words = tokens(text, "word").tolist()
    assert words[:6] == ["To", "be", ",", "or", "not", "to"] and "\n" in words
    assert ds.encoder.vocabulary == sorted(set(words))
    assert join_words(words[:14]) == "To be, or not to be.\nThat is the question."


def test_one_hot_windows_behave_like_the_full_array():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, size=50).astype(np.int32)
    starts = np.array([0, 5, 10, 40])
    view = OneHotWindows(ids, starts, 6, 7, shift=1)
    full = one_hot(ids[starts[:, None] + 1 + np.arange(6)], 7)
    assert view.shape == full.shape and len(view) == 4 and view.ndim == 3
    np.testing.assert_array_equal(view[np.array([3, 1])], full[[3, 1]])
    np.testing.assert_array_equal(view[1:3], full[1:3])
    np.testing.assert_array_equal(view[2], full[2])


def test_text_errors(tmp_path: Path):
    path = tmp_path / "t.txt"
    path.write_text("abc")
    with pytest.raises(DataError, match="shorter than sequence_length"):
        data.load(text_cfg(path), tmp_path, 0, "cross_entropy")
    with pytest.raises(SpecError, match="expected loss cross_entropy"):
        data.load(text_cfg(path), tmp_path, 0, "mse")
    path.write_text("   \n")
    with pytest.raises(DataError, match="holds no text"):
        data.load(text_cfg(path), tmp_path, 0, "cross_entropy")
    encoder = TextEncoder(list("\nabc"), "char", 4, 4)
    with pytest.raises(DataError, match=r"the character 'z' \(line 2\) is not in the model's"):
        encoder.ids("ab\ncz")


def test_max_chars_caps_the_text(tmp_path: Path):
    path = tmp_path / "t.txt"
    path.write_text("abcd" * 100)
    ds = data.load(text_cfg(path, max_chars=40, validation_split=0.0), tmp_path, 0, "cross_entropy")
    assert len(ds.parts["train"].x) == 9  # 40 symbols: starts 0, 4, .., 32 (each needs 5)


# -- grouped sequences -----------------------------------------------------------------------------
GROUPED = """\
id,t,x,kind,label
b,2,0.5,p,up
a,0,1.0,q,down
b,0,0.1,p,up
b,1,0.3,q,up
a,1,0.0,q,down
c,0,2.0,p,up
a,2,-1.0,p,down
a,3,-2.0,q,down
d,0,0.2,q,down
d,1,0.1,q,down
e,0,1.0,p,up
e,1,2.0,p,up
f,0,0.0,q,down
f,1,-0.5,q,down
f,2,-1.0,q,down
"""


def seq_cfg(path: Path, **settings) -> SimpleNamespace:
    base = dict(kind="sequences", path=str(path), id="id", order="t", features=None)
    base.update(target="label", target_per="sequence", categorical=[], normalize="none")
    base.update(missing="error", validation_split=0.0, test_split=0.0)
    return SimpleNamespace(**{**base, **settings})


@pytest.fixture
def grouped(tmp_path: Path) -> Path:
    path = tmp_path / "grouped.csv"
    path.write_text(GROUPED)
    return path


def test_grouped_sequences_are_padded_with_a_mask(grouped: Path):
    ds = data.load(seq_cfg(grouped), grouped.parent, 0, "cross_entropy")
    encoder = ds.encoder
    assert isinstance(encoder, SequenceEncoder)
    assert encoder.feature_names == ["x", "kind=p", "kind=q"]
    # ids in the order they first appear; steps sorted by t; padding at the end
    assert ds.parts["train"].x.shape == (6, 4, 3) and ds.parts["train"].mask.shape == (6, 4)
    np.testing.assert_array_equal(ds.parts["train"].mask.sum(axis=1), [3, 4, 1, 2, 2, 3])
    assert_close_float32(ds.parts["train"].x[0, :3, 0], [0.1, 0.3, 0.5], magnitude=[0.1, 0.3, 0.5])
    np.testing.assert_array_equal(ds.parts["train"].x[1, :, 0], [1.0, 0.0, -1.0, -2.0])
    assert (ds.parts["train"].x[~ds.parts["train"].mask] == 0).all()
    assert encoder.labels == ["down", "up"]
    np.testing.assert_array_equal(ds.parts["train"].y.argmax(axis=1), [1, 0, 1, 0, 1, 0])
    ids = encoder.id_columns(encoder.read_frame(grouped))
    assert list(ids) == ["id"] and list(ids["id"]) == ["b", "a", "c", "d", "e", "f"]


def test_per_step_targets(grouped: Path):
    cfg = seq_cfg(grouped, target="x", features=["kind"], target_per="step")
    ds = data.load(cfg, grouped.parent, 0, "mse")
    assert ds.parts["train"].y.shape == (6, 4, 1) and ds.output_width == 1
    assert_close_float32(
        ds.parts["train"].y[0, :, 0], [0.1, 0.3, 0.5, 0.0], magnitude=[0.1, 0.3, 0.5, 0]
    )
    columns = ds.encoder.id_columns(ds.encoder.read_frame(grouped))
    assert list(columns) == ["id", "t"]
    assert list(columns["id"][:4]) == ["b", "b", "b", "a"] and list(columns["t"][:3]) == list("012")
    output = np.arange(24.0).reshape(6, 4, 1)
    decoded = ds.encoder.decode(output, mask=ds.parts["train"].mask)["prediction"]
    np.testing.assert_array_equal(decoded[:4], [0, 1, 2, 4])  # real steps only, in order


def test_grouped_errors(grouped: Path):
    changed = grouped.read_text().replace("a,2,-1.0,p,down", "a,2,-1.0,p,up")
    grouped.write_text(changed)
    with pytest.raises(DataError, match=r"sequence 'a' changes its target 'label' from 'down'"):
        data.load(seq_cfg(grouped), grouped.parent, 0, "cross_entropy")
    data.load(seq_cfg(grouped, target_per="step"), grouped.parent, 0, "cross_entropy")
    grouped.write_text(GROUPED.replace("d,0,0.2,q,down", ",0,0.2,q,down"))
    with pytest.raises(DataError, match=r"column 'id' \(the sequence id\) is empty on line 10"):
        data.load(seq_cfg(grouped), grouped.parent, 0, "cross_entropy")
    grouped.write_text(GROUPED.replace("d,1,0.1,q,down", "d,0,0.1,q,down"))
    with pytest.raises(DataError, match=r"sequence 'd' has t '0' on more than one row"):
        data.load(seq_cfg(grouped), grouped.parent, 0, "cross_entropy")
    grouped.write_text(GROUPED.replace("d,1,0.1,q,down", "d,1,0.x,q,down"))
    with pytest.raises(DataError, match=r"column 'x' holds numbers except '0.x' on line 11"):
        data.load(seq_cfg(grouped), grouped.parent, 0, "cross_entropy")
    with pytest.raises(DataError, match=r"column 'idd' not in grouped.csv \(did you mean 'id'"):
        data.load(seq_cfg(grouped, id="idd"), grouped.parent, 0, "cross_entropy")


WALKS_SPEC = """\
seed: 0
data: {kind: sequences, path: grouped.csv, id: id, order: t, target: label,
       validation_split: 0.0}
model:
  layers: [{type: gru, units: 6}, {type: dense, units: auto, activation: softmax}]
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.05}
training: {epochs: 2, batch_size: 4}
output: out/model.h5
"""


def test_predictions_equal_each_sequence_alone(grouped: Path):
    folder = grouped.parent
    (folder / "spec.yaml").write_text(WALKS_SPEC)
    result = invoke("train", folder / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    checkpoint = folder / "out" / "model.h5"
    result = invoke("predict", checkpoint, grouped, "--proba")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "id,prediction,proba_down,proba_up"
    assert [line.split(",")[0] for line in lines[1:]] == ["b", "a", "c", "d", "e", "f"]
    together = np.array([[float(v) for v in line.split(",")[2:]] for line in lines[1:]])

    model = model_io.load(checkpoint)
    encoder = data.encoder_from_state(model.encoder_state)
    frame = encoder.read_frame(grouped)
    for i, name in enumerate(["b", "a", "c", "d", "e", "f"]):
        alone = frame[frame["id"] == name]
        x, mask = encoder.inputs(alone)
        assert mask.all()  # one sequence: no padding
        assert_network_close(predict(model.net, x)[0], together[i], model.net, x, 4)

    result = invoke("evaluate", checkpoint, grouped)
    assert result.exit_code == 0 and "(6 rows)" in result.stdout
    # --keep: a column constant within each sequence, one value a sequence; one that changes: 3
    kept = invoke("predict", checkpoint, grouped, "--keep", "label", "--keep", "id")
    assert kept.exit_code == 0, kept.stderr
    rows = [line.split(",") for line in kept.stdout.strip().splitlines()]
    assert rows[0][:3] == ["id", "label", "prediction"]  # the id once, first
    assert [r[1] for r in rows[1:]] == ["up", "down", "up", "down", "up", "down"]
    one_error_line(
        invoke("predict", checkpoint, grouped, "--keep", "x"),
        3,
        "--keep column 'x' changes within sequence 'b'",
    )


def test_per_step_model_trains_and_predicts(grouped: Path):
    folder = grouped.parent
    spec = WALKS_SPEC.replace("target: label,", "target: x, target_per: step, features: [kind],")
    spec = spec.replace("{type: gru, units: 6}", "{type: gru, units: 6, return_sequences: true}")
    spec = spec.replace("units: auto, activation: softmax", "units: 1").replace(
        "cross_entropy", "mse"
    )
    (folder / "step.yaml").write_text(spec)
    result = invoke("train", folder / "step.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    result = invoke("predict", folder / "out" / "model.h5", grouped)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "id,t,prediction" and len(lines) == 16
    assert lines[1].startswith("b,0,") and lines[4].startswith("a,0,")
    kept = invoke("predict", folder / "out" / "model.h5", grouped, "--keep", "kind")
    rows = [line.split(",") for line in kept.stdout.strip().splitlines()]
    assert [r[2] for r in rows[:5]] == ["kind", "p", "q", "p", "q"]  # b: t 0, 1, 2; then a


def test_cli_target_change_is_one_line(grouped: Path):
    folder = grouped.parent
    grouped.write_text(GROUPED.replace("a,2,-1.0,p,down", "a,2,-1.0,p,up"))
    (folder / "spec.yaml").write_text(WALKS_SPEC)
    one_error_line(invoke("train", folder / "spec.yaml"), 3, "grouped.csv", "sequence 'a'")


# -- the example specs ---------------------------------------------------------------------------
def test_sunspots_lstm_beats_the_naive_forecast(tmp_path: Path):
    """Validation RMSE of the LSTM against "next year = this year" on the same windows."""
    spec = ROOT / "models" / "sunspots-lstm.yaml"
    out = tmp_path / "model.h5"
    assert invoke("train", spec, "--quiet", "--output", out).exit_code == 0
    model = model_io.load(out)
    from nncli import spec as spec_module

    loaded = spec_module.load(spec)
    ds = data.load(loaded.data, loaded.base_dir, loaded.seed, loaded.loss)
    encoder = ds.encoder
    truth = encoder.unscale_targets(ds.parts["validation"].y)[:, 0]
    naive = encoder.unscale_targets(ds.parts["validation"].x[:, -1, :1])[
        :, 0
    ]  # the window's last year
    lstm = encoder.unscale_targets(predict(model.net, ds.parts["validation"].x))[:, 0]
    naive_rmse = float(np.sqrt(np.mean((naive - truth) ** 2)))
    lstm_rmse = float(np.sqrt(np.mean((lstm - truth) ** 2)))
    print(f"sunspots validation RMSE: lstm {lstm_rmse:.2f}, naive {naive_rmse:.2f}")
    assert lstm_rmse < 0.8 * naive_rmse
    best = model.training["best_epoch"]  # restored: the history's line for it is the README's
    # float32 predictions then batch means: a scaled prediction's error dp moves RMSE by scale dp
    reach = (
        float(model.target_scale[0]) * np.abs(predict(model.net, ds.parts["validation"].x)).max()
    )
    terms = chain_terms(model.net, encoder.window) + len(ds.parts["validation"].x)
    held = model.training["history"]["val_rmse"][best - 1]
    assert_close_float32(held, lstm_rmse, terms, magnitude=reach + lstm_rmse)


def test_a_categorical_token_column_goes_in_as_ids(grouped: Path):
    cfg = seq_cfg(grouped, features=["kind"], categorical=["kind"])
    ds = data.load(cfg, grouped.parent, 0, "cross_entropy", input_form="ids")
    encoder = ds.encoder
    assert ds.parts["train"].x.shape == (6, 4) and ds.parts["train"].x.dtype == np.int32
    np.testing.assert_array_equal(ds.parts["train"].x[0, :3], [0, 1, 0])  # b: p q p (t 0, 1, 2)
    assert encoder.vocabulary_size == 3  # p, q and one id for a value training never saw
    frame = encoder.read_frame(grouped).replace({"kind": {"q": "r"}})
    x, _ = encoder.inputs(frame, unknown="ignore")
    assert x[0, 1] == 2  # the unseen 'r'
    again = SequenceEncoder.from_state(encoder.to_state())
    assert again.input_form == "ids" and again.vocabulary_size == 3
    state = encoder.to_state()
    del state["input_form"]  # a checkpoint from before embeddings took ids
    assert SequenceEncoder.from_state(state).input_form == "onehot"
    assert "input_form" not in SequenceEncoder.from_state(state).to_state()  # resumes unchanged


def test_ids_need_one_categorical_feature(grouped: Path):
    cfg = seq_cfg(grouped, features=["x", "kind"], categorical=["kind"])
    with pytest.raises(SpecError, match="one categorical column"):
        data.load(cfg, grouped.parent, 0, "cross_entropy", input_form="ids")
