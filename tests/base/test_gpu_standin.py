"""The GPU path without a GPU: the strict CuPy stand-in (``NNCLI_FAKE_GPU=1``,
nncli/testing/fakegpu.py) refuses host/device mixes as CuPy does, and the whole train, resume,
predict, evaluate and generate path runs on it with the CPU's numbers, moving one batch at a
time and reading the loss and metrics once an epoch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import DATASETS, IRIS, invoke, one_error_line, text_spec

from nncli.backend import get_backend, parse_device, to_host
from nncli.checkpoint import load as load_checkpoint
from nncli.commands.evaluate import evaluate_file
from nncli.commands.generate import generate
from nncli.commands.predict import predict_files
from nncli.commands.train import train
from nncli.errors import BackendError
from nncli.spec import load
from nncli.testing import fakegpu
from nncli.training.callbacks import Callback


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.setenv("NNCLI_FAKE_GPU", "1")
    fakegpu.COUNTS.clear()
    yield fakegpu.COUNTS
    fakegpu.COUNTS.clear()


# -- the stand-in is strict where CuPy is ------------------------------------------------------
def test_device_arrays_refuse_host_arrays_and_implicit_conversion(standin):
    b = get_backend("gpu", "float32")
    assert b.stand_in and b.label == "gpu (strict stand-in, NNCLI_FAKE_GPU)"
    x = b.asarray(np.arange(6.0).reshape(2, 3))
    host = np.ones((2, 3), dtype=np.float32)
    for mix in (lambda: x + host, lambda: host + x, lambda: x * host[0], lambda: np.asarray(x)):
        with pytest.raises(fakegpu.HostDeviceMix):
            mix()
    with pytest.raises(fakegpu.HostDeviceMix):
        b.xp.asarray(host)  # only the backend moves data
    with pytest.raises(fakegpu.HostDeviceMix):
        b.xp.concatenate([x, host])
    with pytest.raises(fakegpu.HostDeviceMix):
        x[0] = host[0]
    # what CuPy allows: scalars, numpy's functions and ufuncs on device arrays alone
    y = np.exp(x * 2.0 + np.float32(1)) - b.xp.ones_like(x)
    assert isinstance(y, fakegpu.DeviceArray)
    total = y.sum()
    assert isinstance(total, fakegpu.DeviceArray) and total.ndim == 0  # no host scalar
    assert standin["sync"] == 0
    float(total)
    assert standin["sync"] == 1
    assert standin["h2d"] == 1 and standin["d2h"] == 0
    np.testing.assert_array_equal(to_host(x), np.arange(6.0).reshape(2, 3))
    assert standin["d2h"] == 1 and standin["sync"] == 2


def test_a_batch_moves_in_one_transfer(standin):
    b = get_backend("gpu", "float64")
    host = (np.zeros((4, 3)), None, np.ones((4, 3), bool))
    x, y, mask = b.to_device(*host, dtypes=(None, None, bool))
    assert y is None and mask.dtype == bool and x.dtype == np.float64
    assert standin["h2d"] == 1 and standin["h2d_arrays"] == 2


# -- devices ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "parsed"),
    [("cpu", ("cpu", 0)), ("gpu", ("gpu", 0)), ("gpu:2", ("gpu", 2)), ("cuda:1", ("gpu", 1))],
)
def test_device_values(text, parsed):
    assert parse_device(text) == parsed


@pytest.mark.parametrize("text", ["gpu:", "cuda", "tpu", "gpu:-1", "gpu1"])
def test_bad_device_values(text):
    with pytest.raises(BackendError, match="expected one of cpu, gpu, gpu:N, cuda:N, auto"):
        parse_device(text)


def test_bad_device_is_one_line_exit_2(tmp_path):
    spec = _spec(tmp_path, "dense")
    result = invoke("train", spec, "--device", "cuda", "--output", tmp_path / "m.h5")
    one_error_line(result, 2, "gpu:N, cuda:N", "'cuda'")
    result = invoke("train", spec, "--set", "device=gpu:x", "--output", tmp_path / "m.h5")
    one_error_line(result, 2, "device", "gpu:x")


def test_gpu_without_cupy_says_how_to_install(tmp_path, monkeypatch):
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CuPy is installed here")
    monkeypatch.delenv("NNCLI_FAKE_GPU", raising=False)
    spec = _spec(tmp_path, "dense", epochs=1)
    assert invoke("train", spec, "--output", tmp_path / "m.h5").exit_code == 0
    for command in (
        ("train", spec, "--output", tmp_path / "other.h5"),
        ("predict", tmp_path / "m.h5", IRIS),
        ("evaluate", tmp_path / "m.h5", IRIS),
        ("validate", spec),
        ("gradcheck", spec),
    ):
        result = invoke(*command, "--device", "gpu:1")
        one_error_line(result, 2, "CuPy", 'pip install -e ".[gpu]"')


def test_first_line_names_the_stand_in(tmp_path, standin):
    for device, line in [
        ("gpu", "device: gpu (strict stand-in, NNCLI_FAKE_GPU)"),
        ("cuda:1", "device: gpu:1 (strict stand-in, NNCLI_FAKE_GPU)"),
        ("auto", "device: gpu (strict stand-in, NNCLI_FAKE_GPU) (auto: NNCLI_FAKE_GPU is set)"),
    ]:
        spec = _spec(tmp_path, "dense", epochs=1)
        result = invoke("train", spec, "--device", device, "--output", tmp_path / "m.h5", "--force")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines()[0] == line


# -- the whole path on the stand-in gives the CPU's numbers ----------------------------------
LAYERS = {
    "dense": "[{type: dense, units: 8, activation: relu}, {type: dropout, rate: 0.2},"
    " {type: dense, units: auto, activation: softmax}]",
    "batchnorm": "[{type: dense, units: 8}, batchnorm, relu, {type: dense, units: auto,"
    " activation: softmax}]",
    "conv": "[{type: reshape, shape: [1, 8, 8]}, {type: conv2d, filters: 4, kernel_size: 3},"
    " relu, {type: maxpool2d, pool_size: 2}, flatten, {type: dense, units: auto,"
    " activation: softmax}]",
    "recurrent": "[{type: lstm, units: 6, return_sequences: true}, {type: gru, units: 5},"
    " {type: dense, units: auto, activation: softmax}]",
    "transformer": "[{type: dense, units: 4}, {type: positional, max_length: 40},"
    " {type: attention, heads: 2, causal: true, dropout: 0.1},"
    " {type: positional, encoding: sinusoidal, max_length: 40},"
    " {type: transformer, heads: 2, feedforward: 8, dropout: 0.2, activation: gelu},"
    " global_avgpool, {type: dense, units: auto, activation: softmax}]",
    "graph": "[{type: dense, units: 8, activation: relu, name: stem}, {type: residual,"
    " name: deep, layers: [{type: dense, units: 8}, batchnorm, relu, {type: dropout, rate: 0.2}]},"
    " {type: dense, units: 8, activation: sigmoid, inputs: stem, name: gate},"
    " {type: multiply, inputs: [deep, gate], name: gated},"
    " {type: dense, units: 4, inputs: input, name: wide}, {type: concat, inputs: [gated, wide]},"
    " {type: dense, units: auto, activation: softmax}]",
    "resnet": "[{type: reshape, shape: [1, 8, 8]}, {type: conv2d, filters: 4, kernel_size: 3,"
    " padding: same, activation: relu}, {type: residual, projection: true, activation: relu,"
    " layers: [{type: conv2d, filters: 6, kernel_size: 3, strides: 2, padding: 1}, batchnorm,"
    " relu]}, global_avgpool, {type: dense, units: auto, activation: softmax}]",
}
DATA = {
    "dense": "{kind: csv, path: iris.csv, target: species, validation_split: 0.2}",
    "batchnorm": "{kind: csv, path: iris.csv, target: species, validation_split: 0.2}",
    "conv": "{kind: csv, path: digits.csv, target: label, validation_split: 0.25}",
    "recurrent": "{kind: sequences, path: walks.csv, id: walk, order: t, features: [value],"
    " target: drift, target_per: sequence, validation_split: 0.25}",
    "transformer": "{kind: sequences, path: walks.csv, id: walk, order: t, features: [value],"
    " target: drift, target_per: sequence, validation_split: 0.25}",
    "graph": "{kind: csv, path: iris.csv, target: species, validation_split: 0.2}",
    "resnet": "{kind: csv, path: digits.csv, target: label, validation_split: 0.25}",
}
OPTIMIZERS = {
    "dense": "{type: adam, learning_rate: 0.01, clip_norm: 1.0}",
    "batchnorm": "{type: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true}",
    "conv": "{type: adamw, learning_rate: 0.01}",
    "recurrent": "{type: rmsprop, learning_rate: 0.01}",
    "transformer": "{type: adam, learning_rate: 0.01}",
    "graph": "{type: adam, learning_rate: 0.01}",
    "resnet": "{type: sgd, learning_rate: 0.05, momentum: 0.9}",
}


def _spec(folder: Path, kind: str, epochs: int = 2, batch_size: int = 16) -> Path:
    """A small float64 spec of ``kind`` beside a copy of (a slice of) its data."""
    _data(folder)
    path = folder / f"{kind}.yaml"
    path.write_text(
        f"version: 1\nseed: 3\ndtype: float64\ndata: {DATA[kind]}\n"
        f"model: {{layers: {LAYERS[kind]}}}\n"
        f"loss: cross_entropy\noptimizer: {OPTIMIZERS[kind]}\n"
        f"training: {{epochs: {epochs}, batch_size: {batch_size}}}\n"
    )
    return path


def _data(folder: Path) -> None:
    if (folder / "iris.csv").exists():
        return
    shutil.copy(IRIS, folder / "iris.csv")
    digits = (DATASETS / "digits.csv").read_text().splitlines()
    (folder / "digits.csv").write_text("\n".join(digits[:81]) + "\n")
    walks = (DATASETS / "walks.csv").read_text().splitlines()
    (folder / "walks.csv").write_text("\n".join(walks[:601]) + "\n")  # 20 walks


def _run(spec: Path, device: str, out: Path, epochs: int, resume: Path | None = None):
    result = train(
        load(spec, [f"training.epochs={epochs}"]),
        output=out,
        device=device,
        resume=resume,
        force=True,
    )
    return [{k: v for k, v in e.items() if k != "time"} for e in result.history.epochs]


def _close(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            assert row_a[key] == pytest.approx(row_b[key], abs=1e-10, rel=1e-10), key


@pytest.mark.parametrize("kind", list(LAYERS))
def test_train_resume_predict_evaluate_match_the_cpu(tmp_path, standin, kind):
    spec = _spec(tmp_path, kind)
    cpu = _run(spec, "cpu", tmp_path / "cpu" / "model.h5", 2)
    gpu = _run(spec, "gpu", tmp_path / "gpu" / "model.h5", 2)
    _close(cpu, gpu)
    stored = load_checkpoint(tmp_path / "gpu" / "model.h5")
    assert stored.training["device"] == "gpu (strict stand-in, NNCLI_FAKE_GPU)"
    assert stored.training["versions"]["numpy"] == np.__version__
    assert all(type(a) is np.ndarray for r in stored.layers for a in r.params.values())
    # resumed across devices: a GPU epoch then a CPU one (the other way round for half)
    first, second = ("gpu", "cpu") if kind in ("dense", "conv") else ("cpu", "gpu")
    out = tmp_path / f"{first}-{second}" / "model.h5"
    _run(spec, first, out, 1)
    _close(cpu, _run(spec, second, out, 2, resume=out))
    data = tmp_path / DATA[kind].split("path: ")[1].split(",")[0]
    for checkpoint in (tmp_path / "cpu" / "model.h5", tmp_path / "gpu" / "model.h5"):
        frames = [predict_files(checkpoint, [data], proba=True, device=d) for d in ("cpu", "gpu")]
        proba = [f.filter(like="proba_").to_numpy() for f in frames]
        np.testing.assert_allclose(proba[0], proba[1], rtol=0, atol=1e-12)
        scores = [evaluate_file(checkpoint, data, device=d) for d in ("cpu", "gpu")]
        assert scores[0]["metrics"] == pytest.approx(scores[1]["metrics"], abs=1e-10)


def test_generate_matches_the_cpu(tmp_path, standin):
    spec = text_spec(
        tmp_path,
        "level: word, sequence_length: 8",
        "[{type: embedding, input_dim: auto, output_dim: 4},"
        " {type: lstm, units: 8, return_sequences: true},"
        " {type: dense, units: auto, activation: softmax}]",
        top="dtype: float64\n",
        optimizer=", clip_norm: 5.0",
    )
    cpu = _run(spec, "cpu", tmp_path / "cpu.h5", 1)
    _close(cpu, _run(spec, "gpu", tmp_path / "gpu.h5", 1))
    texts = {
        (ckpt, device): generate(tmp_path / ckpt, "the king", length=12, seed=1, device=device)
        for ckpt in ("cpu.h5", "gpu.h5")
        for device in ("cpu", "gpu")
    }
    assert len(set(texts.values())) == 1, texts


# -- one batch at a time in, the loss and metrics out once an epoch ---------------------------
class _PerEpoch(Callback):
    def __init__(self) -> None:
        self.counts: list[dict[str, int]] = []

    def on_train_begin(self, info) -> None:
        self.batches = info["batches"]
        fakegpu.COUNTS.clear()  # the network's weights went over before: not an epoch's work

    def on_epoch_end(self, epoch, logs) -> None:
        self.counts.append(dict(fakegpu.COUNTS))
        fakegpu.COUNTS.clear()


@pytest.mark.parametrize("kind", ["batchnorm", "conv"])
def test_transfers_follow_batches_and_syncs_stay_constant(tmp_path, standin, kind):
    syncs = {}
    for batch_size in (4, 16):
        spec = _spec(tmp_path, kind, epochs=2, batch_size=batch_size)
        counter = _PerEpoch()
        train(load(spec), output=tmp_path / "m.h5", device="gpu", callbacks=[counter], force=True)
        batches = counter.batches
        assert batches > 8 if batch_size == 4 else batches < 20
        for counts in counter.counts:
            # the training batches (x, y and mask together), the validation set's, and the
            # validation batches' one
            assert counts["h2d"] <= batches + 4, (counts, batches)
            assert counts["sync"] <= 20, counts
        syncs[batch_size] = [c["sync"] for c in counter.counts]
    assert syncs[4] == syncs[16]  # four times the batches, not one sync more


def test_the_next_batch_is_copied_before_the_current_one_is_used(standin):
    """Training hands batch b to the network only after batch b + 1's copy has started (on a
    GPU: from pinned memory on a copy stream, overlapping b's compute); one copy a batch."""
    backend = get_backend("gpu", "float64")
    items = ((k, (np.full((2, 3), float(k)), np.ones((2, 1)), None)) for k in range(4))
    started = []
    for k, (x, _, mask) in backend.prefetched(items, (None, None, bool)):
        started.append(standin.get("h2d", 0))
        assert isinstance(x, fakegpu.DeviceArray) and mask is None
        np.testing.assert_array_equal(to_host(x), np.full((2, 3), float(k)))
    assert started == [2, 3, 4, 4]  # batch 0 used after 2 copies began, the last after all 4
    cpu = get_backend("cpu", "float64")
    plain = list(cpu.prefetched((k, (np.full(2, k), None, None)) for k in range(3)))
    assert [k for k, _ in plain] == [0, 1, 2] and plain[2][1][0].tolist() == [2.0, 2.0]
