"""Image folders: reading (formats, color, resize, labels), scaling fitted on training only,
seeded stratified splits, unreadable files (exit 3 or --skip-bad), and predict / evaluate on
folders and single files through the command line."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import assert_close_float32, invoke
from PIL import Image

from nncli import data
from nncli.data.image_encoder import ImageEncoder
from nncli.data.image_files import read_frame
from nncli.data.labels import label_order as sort_labels
from nncli.errors import DataError, SpecError


def save(path: Path, pixels: np.ndarray, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path, format=fmt)
    return path


def folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (6, 5)) -> Path:
    """Class folders of constant images; image k of a class has value 10 * class + k + 1, so a
    value names its file. Class c's images are brighter at column c (a learnable pattern)."""
    for c, (label, count) in enumerate(counts.items()):
        for k in range(count):
            pixels = np.full(size, 10 * c + k + 1)
            save(root / label / f"{k:03d}.png", pixels)
    return root


def cfg(path: Path, **settings) -> SimpleNamespace:
    base = dict(
        kind="images",
        path=path,
        image_size=None,
        color="grayscale",
        normalize="none",
        validation_split=0.0,
        test_split=0.0,
        validation=None,
        test=None,
        augment=None,
    )
    return SimpleNamespace(**{**base, **settings})


def load(path: Path, loss: str = "cross_entropy", seed: int = 0, **settings) -> data.Dataset:
    return data.load(cfg(path, **settings), path.parent, seed, loss)


# -- labels and reading ------------------------------------------------------------------------
def test_labels_are_folder_names_sorted_numbers_as_numbers(tmp_path: Path):
    assert sort_labels(["10", "2", "1", "1.5"]) == ["1", "1.5", "2", "10"]
    assert sort_labels(["cat", "ant", "10", "9"]) == ["10", "9", "ant", "cat"]
    ds = load(folder(tmp_path / "d", {"10": 2, "2": 2, "1": 2}))
    assert ds.labels == ["1", "2", "10"]
    # one-hot columns follow that order: the "1" folder's images (values 21, 22) are column 0
    first = np.flatnonzero(ds.parts["train"].y[:, 0])
    assert_close_float32(ds.parts["train"].x[first, 0, 0, 0] * 255, [21, 22], terms=2)


def test_png_jpeg_bmp_gif_first_frame(tmp_path: Path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(7, 9)).astype(np.uint8)
    save(tmp_path / "a" / "p.png", pixels)
    save(tmp_path / "a" / "b.bmp", pixels, "BMP")
    save(tmp_path / "a" / "j.jpg", np.full((7, 9), 200), "JPEG")
    frames = [Image.fromarray(np.full((7, 9), v, dtype=np.uint8)) for v in (40, 220)]
    frames[0].save(tmp_path / "a" / "g.gif", save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / "a" / "g.gif").n_frames == 2
    frame = read_frame(tmp_path / "a", None, "grayscale")
    assert [Path(f).name for f in frame.files] == ["b.bmp", "g.gif", "j.jpg", "p.png"]
    assert frame.labels is None and frame.pixels.shape == (4, 1, 7, 9)
    assert frame.pixels.dtype == np.float32
    np.testing.assert_array_equal(frame.pixels[0, 0], pixels / np.float32(255))  # bmp: exact
    np.testing.assert_array_equal(frame.pixels[3, 0], pixels / np.float32(255))  # png: exact
    assert_close_float32(frame.pixels[1], np.full((1, 7, 9), 40 / 255))  # the first frame
    np.testing.assert_allclose(frame.pixels[2], 200 / 255, atol=3 / 255)  # jpeg is lossy


def test_rgb_and_grayscale(tmp_path: Path):
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    save(tmp_path / "r.png", red)
    rgb = read_frame(tmp_path / "r.png", None, "rgb").pixels
    assert rgb.shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(rgb[0, :, 0, 0], [1.0, 0.0, 0.0])
    gray = read_frame(tmp_path / "r.png", None, "grayscale").pixels
    assert gray.shape == (1, 1, 4, 4)
    assert_close_float32(gray[0, 0, 0, 0], 76 / 255)  # ITU-R 601 luma of pure red
    # a grayscale file asked for as rgb gives three equal channels
    save(tmp_path / "g.png", np.full((4, 4), 100))
    pixels = read_frame(tmp_path / "g.png", None, "rgb").pixels
    assert_close_float32(pixels, np.full(pixels.shape, 100 / 255))


def test_sixteen_bit_grayscale_scales_by_65535(tmp_path: Path):
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "w.png")
    pixels = read_frame(tmp_path / "w.png", None, "grayscale").pixels
    assert_close_float32(pixels[0, 0], values / 65535, magnitude=values / 65535)


def test_image_size_resizes_and_sizes_must_agree_without_it(tmp_path: Path):
    save(tmp_path / "d" / "a" / "big.png", np.full((20, 12), 90))
    save(tmp_path / "d" / "b" / "small.png", np.full((6, 5), 90))
    ds = load(tmp_path / "d", image_size=[4, 3])
    assert ds.parts["train"].x.shape == (2, 1, 4, 3) and ds.input_shape == (1, 4, 3)
    assert_close_float32(ds.parts["train"].x, np.full(ds.parts["train"].x.shape, 90 / 255))
    with pytest.raises(DataError, match=r"small\.png.*6x5.*big\.png is 20x12.*image_size"):
        load(tmp_path / "d")


def test_hidden_files_are_ignored_and_stray_images_warned(tmp_path: Path):
    root = folder(tmp_path / "d", {"a": 2, "b": 2})
    (root / "a" / ".DS_Store").write_bytes(b"\0junk")
    (root / ".hidden").mkdir()
    save(root / "loose.png", np.zeros((6, 5)))
    ds = load(root)
    assert len(ds.parts["train"].x) == 4 and ds.labels == ["a", "b"]
    assert any("loose.png" in w and "ignored 1 image" in w for w in ds.warnings)


# -- scaling and splits ------------------------------------------------------------------------
def test_pixels_scaled_to_unit_range_without_normalize(tmp_path: Path):
    ds = load(folder(tmp_path / "d", {"a": 3, "b": 3}))
    assert ds.parts["train"].x.dtype == np.float32 and ds.parts["train"].x.shape == (6, 1, 6, 5)
    np.testing.assert_allclose(
        np.sort(ds.parts["train"].x[:, 0, 0, 0]) * 255, [1, 2, 3, 11, 12, 13]
    )


def test_float64_pixels_are_never_rounded_through_float32(tmp_path: Path):
    root = folder(tmp_path / "d", {"a": 3, "b": 3})
    ds = data.load(
        cfg(root, normalize="standard"), root.parent, 0, "cross_entropy", dtype="float64"
    )
    assert ds.parts["train"].x.dtype == ds.parts["train"].y.dtype == np.float64
    values = np.sort(np.unique(ds.parts["train"].x))
    raw = np.array([1, 2, 3, 11, 12, 13], dtype=np.float64) / 255  # float32 would differ
    mean, std = raw.mean(), raw.std()
    np.testing.assert_allclose(values, np.sort((raw - mean) / std), rtol=1e-14)  # f32: 1e-8
    assert not np.array_equal(raw, raw.astype(np.float32).astype(np.float64))
    again = ImageEncoder.from_state(ds.encoder.to_state())  # predict reads float64 too
    assert again.transform(root).dtype == np.float64
    assert "dtype" not in load(root).encoder.to_state()  # float32 states stay as before


def test_standardisation_is_fitted_on_the_training_part_only(tmp_path: Path):
    rng = np.random.default_rng(3)
    for label in ("a", "b"):
        for k in range(20):
            save(tmp_path / "d" / label / f"{k}.png", rng.integers(0, 256, (5, 5, 3)))
    ds = load(tmp_path / "d", color="rgb", normalize="standard", test_split=0.25)
    x = ds.parts["train"].x.astype(np.float64)
    reach = np.abs(x).max()  # each pixel standardised then rounded to float32 once or twice
    assert_close_float32(x.mean(axis=(0, 2, 3)), np.zeros(3), terms=2, magnitude=reach)
    assert_close_float32(x.std(axis=(0, 2, 3)), np.ones(3), terms=4, magnitude=reach**2)
    # not fitted on the test part
    assert np.abs(ds.parts["test"].x.mean(axis=(0, 2, 3))).max() > 1e-3
    encoder = ds.encoder
    pixels = ds.parts["train"].x * encoder.std[:, None, None] + encoder.mean[:, None, None]
    reach = np.abs(ds.parts["train"].x).max() * encoder.std.max() + encoder.mean.max()
    assert_close_float32(pixels.mean(axis=(0, 2, 3)), encoder.mean, terms=4, magnitude=reach)
    assert encoder.mean.shape == (3,) and encoder.feature_names == ["red", "green", "blue"]


def test_splits_are_seeded_and_stratified(tmp_path: Path):
    root = folder(tmp_path / "d", {"a": 10, "b": 20})

    def values(ds: data.Dataset, part: str) -> list[int]:
        x = ds.parts[part].x
        return sorted(np.rint(x[:, 0, 0, 0] * 255).astype(int).tolist())

    ds = load(root, seed=5, validation_split=0.2, test_split=0.3)
    assert (len(ds.parts["train"].x), len(ds.parts["validation"].x), len(ds.parts["test"].x)) == (
        15,
        6,
        9,
    )
    for part, (n_a, n_b) in (("test", (3, 6)), ("validation", (2, 4))):
        y = ds.parts[part].y
        assert y.sum(axis=0).tolist() == [n_a, n_b]  # each class in proportion
    every = values(ds, "train") + values(ds, "validation") + values(ds, "test")
    assert sorted(every) == list(range(1, 11)) + list(range(11, 31))  # each image once
    again = load(root, seed=5, validation_split=0.2, test_split=0.3)
    assert values(again, "test") == values(ds, "test")
    other = load(root, seed=6, validation_split=0.2, test_split=0.3)
    assert values(other, "test") != values(ds, "test")


def test_separate_validation_folder(tmp_path: Path):
    train = folder(tmp_path / "train", {"a": 4, "b": 4})
    folder(tmp_path / "val", {"a": 1, "b": 2})
    ds = load(train, validation=tmp_path / "val")
    assert len(ds.parts["train"].x) == 8 and ds.parts["validation"].y.sum(axis=0).tolist() == [1, 2]
    folder(tmp_path / "odd", {"a": 1, "zebra": 1})
    with pytest.raises(DataError, match="'zebra' is not one of the model's classes"):
        load(train, validation=tmp_path / "odd")


# -- problems ----------------------------------------------------------------------------------
def test_empty_class_folder_single_class_and_no_class_folders(tmp_path: Path):
    root = folder(tmp_path / "d", {"a": 2, "b": 2})
    (root / "c").mkdir()
    with pytest.raises(DataError, match=r"class folder 'c' has no images"):
        load(root)
    one = folder(tmp_path / "one", {"a": 3})
    with pytest.raises(DataError, match="at least 2 classes; found 1 class folder: a"):
        load(one)
    flat = tmp_path / "flat"
    save(flat / "x.png", np.zeros((3, 3)))
    with pytest.raises(DataError, match="expected one sub-folder per class"):
        load(flat)
    with pytest.raises(DataError, match="no such image file or folder"):
        load(tmp_path / "nowhere")


def test_regression_loss_is_refused(tmp_path: Path):
    with pytest.raises(SpecError, match="image folders are labelled by class"):
        load(folder(tmp_path / "d", {"a": 2, "b": 2}), loss="mse")


def test_binary_cross_entropy_takes_two_classes(tmp_path: Path):
    ds = load(folder(tmp_path / "d", {"no": 2, "yes": 3}), loss="binary_cross_entropy")
    assert ds.parts["train"].y.shape == (5, 1) and ds.parts["train"].y.sum() == 3
    assert ds.encoder.decode(np.array([[0.2], [0.9]]))["prediction"].tolist() == ["no", "yes"]


def bad_files(root: Path) -> list[Path]:
    """A non-image, a truncated PNG and a corrupt PNG, one in each class folder."""
    good = (root / "a" / "000.png").read_bytes()
    bad = [root / "a" / "notes.txt", root / "b" / "cut.png", root / "b" / "broken.png"]
    bad[0].write_text("not an image\n")
    bad[1].write_bytes(good[: len(good) // 2])
    corrupt = bytearray(good)
    corrupt[40:60] = b"\xff" * 20  # inside the compressed pixel data
    bad[2].write_bytes(bytes(corrupt))
    return bad


@pytest.mark.parametrize("which", [0, 1, 2])
def test_unreadable_file_is_a_data_error_naming_it(tmp_path: Path, which: int):
    root = folder(tmp_path / "d", {"a": 3, "b": 3}, size=(16, 16))
    bad = bad_files(root)
    for i, path in enumerate(bad):
        if i != which:
            path.unlink()
    with pytest.raises(DataError) as err:
        load(root)
    assert str(bad[which]) in str(err.value) and err.value.hint.option == "--skip-bad"


def test_decompression_bomb_limit_stays_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    save(tmp_path / "big.png", np.zeros((30, 30)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)  # 900 pixels: over the limit (a warning)
    with pytest.raises(DataError, match="decompression bomb"):
        read_frame(tmp_path / "big.png", None, "grayscale")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # over twice the limit (an error)
    with pytest.raises(DataError, match=r"big\.png.*decompression bomb"):
        read_frame(tmp_path / "big.png", None, "grayscale")


SPEC = """\
version: 1
seed: 0
data: {{kind: images, path: d, validation_split: 0.0, test_split: {test}}}
model:
  layers:
    - {{type: conv2d, filters: 2, kernel_size: 3, activation: relu}}
    - flatten
    - {{type: dense, units: auto, activation: softmax}}
loss: cross_entropy
optimizer: {{type: adam, learning_rate: 0.05}}
training: {{epochs: 2, batch_size: 4}}
output: out/model.h5
"""


def spec_with(tmp_path: Path, test: float = 0.0) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(test=test))
    return path


def test_train_stops_with_exit_3_or_skips_bad_files_and_counts_them(tmp_path: Path):
    root = folder(tmp_path / "d", {"a": 4, "b": 4}, size=(16, 16))
    bad = bad_files(root)
    spec = spec_with(tmp_path)
    result = invoke("train", spec)
    assert result.exit_code == 3, result.stderr
    line = result.stderr.strip()
    assert line.startswith("nncli: error: ") and str(bad[0]) in line  # the first bad file
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "out").exists()

    result = invoke("train", spec, "--skip-bad", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "nncli: warning: skipped 3 unreadable images" in result.stderr
    assert (tmp_path / "out" / "model.h5").exists()


def test_a_class_with_only_unreadable_files_is_empty(tmp_path: Path):
    root = folder(tmp_path / "d", {"a": 2, "b": 2})
    (root / "c").mkdir()
    (root / "c" / "x.png").write_text("nope")
    with pytest.raises(DataError, match="'c' has no readable images"):
        data.load(cfg(root), tmp_path, 0, "cross_entropy", skip_bad=True)


# -- checkpoint, predict and evaluate through the command line ---------------------------------
@pytest.fixture
def trained(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for c, label in enumerate(("dark", "light")):
        for k in range(12):
            pixels = rng.integers(0, 90, (8, 8)) + 150 * c
            save(tmp_path / "d" / label / f"{k}.png", pixels)
    result = invoke("train", spec_with(tmp_path, test=0.25), "--set", "data.image_size=[8, 8]")
    assert result.exit_code == 0, result.stderr
    return tmp_path / "out" / "model.h5"


def test_encoder_state_round_trip(tmp_path: Path):
    ds = load(folder(tmp_path / "d", {"1": 2, "10": 2}), color="rgb", normalize="standard")
    state = ds.encoder.to_state()
    again = data.encoder_from_state(state)
    assert isinstance(again, ImageEncoder) and again.labels == ["1", "10"]
    assert again.image_size == (6, 5) and again.color == "rgb" and not again.resize
    np.testing.assert_array_equal(again.mean, ds.encoder.mean)
    np.testing.assert_array_equal(
        again.transform(tmp_path / "d" / "1" / "000.png")[0], ds.parts["train"].x[0]
    )


def test_train_reports_and_stores_test_metrics(trained: Path, tmp_path: Path):
    from nncli.checkpoint import model as model_io

    training = model_io.load(trained).training
    assert 0.0 <= training["test_accuracy"] <= 1.0 and training["test_loss"] > 0
    result = invoke("train", tmp_path / "spec.yaml", "--force", "--set", "data.image_size=[8,8]")
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("test: loss ") and " accuracy " in last


def test_predict_on_a_folder_and_on_single_files(trained: Path, tmp_path: Path):
    result = invoke("predict", trained, tmp_path / "d", "--proba", "--keep", "label")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "file,label,prediction,proba_dark,proba_light"
    assert len(lines) == 25 and lines[1].startswith(str(tmp_path / "d" / "dark" / "0.png"))
    rows = [line.split(",") for line in lines[1:]]
    assert sum(r[1] == r[2] for r in rows) >= 22  # an easy task
    # a float32 softmax over 2 classes: an exp and a sum each, then the division
    assert_close_float32([float(r[3]) + float(r[4]) for r in rows], np.ones(24), terms=8)

    # single files of another size are resized like the training images; output order kept
    big = save(tmp_path / "new" / "big.png", np.full((32, 20), 230))
    small = save(tmp_path / "new" / "small.png", np.full((8, 8), 20))
    result = invoke("predict", trained, big, small)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "file,prediction",
        f"{big},light",
        f"{small},dark",
    ]
    # an unlabelled folder gives the same rows; the same images predict the same every time
    again = invoke("predict", trained, tmp_path / "new")
    assert again.stdout == result.stdout


def test_predict_skips_bad_files_when_asked(trained: Path, tmp_path: Path):
    good = save(tmp_path / "new" / "ok.png", np.full((8, 8), 20))
    bad = tmp_path / "new" / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    result = invoke("predict", trained, good, bad)
    assert result.exit_code == 3 and str(bad) in result.stderr
    result = invoke("predict", trained, tmp_path / "new", "--skip-bad")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [f"{good},dark"]
    assert "nncli: warning: skipped 1 unreadable image (the first: " in result.stderr


def test_evaluate_on_a_labelled_folder(trained: Path, tmp_path: Path):
    result = invoke("evaluate", trained, tmp_path / "d", "--part", "all")
    assert result.exit_code == 0, result.stderr
    assert "(24 rows)" in result.stdout and "accuracy" in result.stdout
    assert "dark" in result.stdout and "confusion" in result.stdout
    # an unlabelled folder, or a class the model does not know, is a data error
    save(tmp_path / "flat" / "x.png", np.zeros((8, 8)))
    result = invoke("evaluate", trained, tmp_path / "flat")
    assert result.exit_code == 3 and "expected a labelled folder" in result.stderr
    save(tmp_path / "odd" / "dark" / "x.png", np.zeros((8, 8)))
    save(tmp_path / "odd" / "grey" / "x.png", np.zeros((8, 8)))
    result = invoke("evaluate", trained, tmp_path / "odd")
    assert result.exit_code == 3 and "'grey' is not one of the model's classes" in result.stderr
