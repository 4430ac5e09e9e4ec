"""``training.class_weight``: the weighted cross-entropy (fused and not) against its closed form,
its gradient in float64 and PyTorch's ``CrossEntropyLoss(weight=...)``; the spec's checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS, invoke, iris_spec, one_error_line, torch_reference

from nncli.engine.activations import softmax
from nncli.engine.losses import CrossEntropy

WEIGHTS = [0.5, 2.0, 1.5]


def batch(n: int = 7, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k))
    y = np.eye(k)[rng.integers(0, k, n)]
    return z, y


def test_weighted_mean_over_the_weights_of_the_labels():
    z, y = batch()
    loss = CrossEntropy(class_weight=WEIGHTS)
    got = float(loss.forward(softmax(z), y, logits=z))
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    c = np.asarray(WEIGHTS)[y.argmax(axis=1)]
    want = -(c * (y * log_p).sum(axis=1)).sum() / c.sum()
    assert got == pytest.approx(want, rel=1e-12)
    unfused = float(CrossEntropy(class_weight=WEIGHTS).forward(softmax(z), y))
    assert unfused == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_gradient_matches_central_differences_in_float64(fused: bool, smoothing: float):
    z, y = batch(n=5, k=4, seed=1)
    mask = np.array([1, 1, 0, 1, 1], dtype=bool)[:, None].repeat(2, axis=1)
    z, y = np.stack([z, z[::-1]], axis=1), np.stack([y, y[::-1]], axis=1)  # (N, T, K)
    loss = CrossEntropy(label_smoothing=smoothing, class_weight=[0.5, 2.0, 1.5, 3.0])

    def value(v: np.ndarray) -> float:
        if fused:
            return float(loss.forward(softmax(v), y, mask=mask, logits=v))
        return float(loss.forward(v, y, mask=mask))

    point = z if fused else softmax(z)
    value(point)
    analytic = loss.backward()
    numeric = np.zeros_like(point)
    h = 1e-6
    for i in np.ndindex(point.shape):  # test code: a handful of entries
        up, down = point.copy(), point.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (value(up) - value(down)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_pytorch(smoothing: float):
    torch = torch_reference()
    z, y = batch(n=9, seed=2)
    zt = torch.tensor(z, requires_grad=True)
    criterion = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(WEIGHTS, dtype=torch.float64), label_smoothing=smoothing
    )
    want = criterion(zt, torch.tensor(y.argmax(axis=1)))
    want.backward()
    loss = CrossEntropy(label_smoothing=smoothing, class_weight=WEIGHTS)
    got = float(loss.forward(softmax(z), y, logits=z))
    assert got == pytest.approx(float(want.detach()), rel=1e-10)
    np.testing.assert_allclose(loss.backward(), zt.grad.numpy(), rtol=1e-9, atol=1e-12)


# -- the spec ---------------------------------------------------------------------------------
@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(IRIS, tmp_path / "iris.csv")
    return tmp_path


def spec_with(work: Path, class_weight: str, loss: str = "cross_entropy") -> Path:
    text = iris_spec(f"{{epochs: 1, class_weight: {class_weight}}}")
    if loss != "cross_entropy":  # a regression of the sepal length
        text = text.replace("loss: cross_entropy", f"loss: {loss}")
        text = text.replace("target: species", "target: sepal_length_cm")
        text = text.replace("activation: softmax", "activation: linear")
    path = work / "iris.yaml"
    path.write_text(text)
    return path


def test_balanced_weighs_n_over_classes_times_count(work: Path):
    from nncli import spec as spec_module
    from nncli.spec.resolve import resolve

    rows = (work / "iris.csv").read_text().splitlines()
    (work / "iris.csv").write_text("\n".join(rows[:121]) + "\n")  # 50, 50 and 20 of each
    ready = resolve(spec_module.load(spec_with(work, "balanced")))
    counts = ready.ds.parts["train"].y.sum(axis=0, dtype=np.float64)
    want = counts.sum() / (3 * counts)
    np.testing.assert_allclose(ready.loss.class_weight, want, rtol=1e-12)
    assert len(set(counts.tolist())) > 1  # the split is uneven, so the weights differ


def test_a_mapping_names_labels_and_the_rest_weigh_one(work: Path):
    from nncli import spec as spec_module
    from nncli.spec.resolve import resolve

    ready = resolve(spec_module.load(spec_with(work, "{virginica: 3}")))
    assert ready.ds.labels == ["setosa", "versicolor", "virginica"]
    assert ready.loss.class_weight == [1.0, 1.0, 3.0]


@pytest.mark.parametrize(
    ("class_weight", "loss", "needles"),
    [
        ("{virginca: 2}", "cross_entropy", ("training.class_weight.virginca", "'virginica'")),
        ("{setosa: -1}", "cross_entropy", ("training.class_weight", "got -1")),
        ("balance", "cross_entropy", ("training.class_weight", "'balanced'")),
        ("balanced", "mse", ("training.class_weight", "cross_entropy")),
    ],
)
def test_bad_class_weights_are_spec_errors(work: Path, class_weight, loss, needles):
    one_error_line(invoke("validate", spec_with(work, class_weight, loss)), 2, *needles)
