"""What several test modules share: the bundled data sets, a small iris spec, the command line
through CliRunner, the check that an error is one line on stderr, and how closely two float32
results must agree (``float32_tolerance``, ``assert_close_float32``; for a network's outputs
``assert_network_close`` with ``chain_terms`` and ``output_reach``).

A plain module (``from helpers import ...``): pyproject's ``pythonpath = ["tests"]`` puts this
folder on sys.path; fixtures stay in the modules or in conftest.py.
"""

from __future__ import annotations

import hashlib
import os
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nncli.cli import app

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "datasets"
IRIS = DATASETS / "iris.csv"
PENGUINS = DATASETS / "penguins.csv"


def iris_spec(training: str) -> str:
    """A small iris classifier spec (iris.csv next to it, output out/model.h5) with the given
    flow-style ``training:`` mapping, e.g. ``{epochs: 2, batch_size: 16}``."""
    return f"""\
version: 1
seed: 0
data: {{kind: csv, path: iris.csv, target: species, validation_split: 0.2}}
model:
  layers:
    - {{type: dense, units: 8, activation: relu}}
    - {{type: dense, units: auto, activation: softmax}}
loss: cross_entropy
optimizer: {{type: adam, learning_rate: 0.01}}
training: {training}
output: out/model.h5
"""


def text_spec(folder: Path, data: str, layers: str, top: str = "", optimizer: str = "") -> Path:
    """``folder/text.yaml`` on the first 3,000 characters of shakespeare.txt (copied beside it):
    ``data`` the text section's settings, ``layers`` a flow-style list, ``top`` more top-level
    lines, ``optimizer`` more adam settings; one epoch in batches of 32 into out/model.h5."""
    (folder / "text.txt").write_text((DATASETS / "shakespeare.txt").read_text()[:3000])
    spec = folder / "text.yaml"
    spec.write_text(
        f"version: 1\nseed: 0\n{top}data: {{kind: text, path: text.txt, {data}}}\n"
        f"model: {{layers: {layers}}}\nloss: cross_entropy\n"
        f"optimizer: {{type: adam, learning_rate: 0.01{optimizer}}}\n"
        "training: {epochs: 1, batch_size: 32}\noutput: out/model.h5\n"
    )
    return spec


def torch_reference() -> types.ModuleType:
    """PyTorch, the oracle of every comparison with another implementation.

    Skipped on a machine without it; required in CI (``CI=true``), which installs the
    ``reference`` extra, so a comparison can never skip where it gates a merge.
    """
    if os.environ.get("CI") == "true":
        import torch

        return torch
    return pytest.importorskip("torch")


def invoke(*args: object):
    """``nncli ARGS`` in this process -> click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, code: int, *needles: str) -> str:
    """Check the run exited with ``code`` after one ``nncli: error:`` line on stderr holding every
    needle, and no traceback anywhere -> that line."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nncli: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


IMAGE_SPEC = """\
data: {kind: images, path: d, validation_split: 0.0}
model: {layers: [flatten, {type: dense, units: auto, activation: softmax}]}
loss: cross_entropy
training: {epochs: 1, batch_size: 4}
output: out/model.h5
"""  # an image classifier of the folder d beside it (image_folder)


def image_folder(root: Path) -> Path:
    """Two class folders, dark and light, of six 8x8 grayscale PNGs each."""

    rng = np.random.default_rng(0)
    for c, label in enumerate(("dark", "light")):
        for k in range(6):
            pixels = (rng.integers(0, 90, (8, 8)) + 150 * c).astype(np.uint8)
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / label / f"{k}.png")
    return root


def sha(path: Path) -> str:
    """SHA-256 of a file's bytes, to show a file was left exactly as it was."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def csv_cfg(path: Path, **settings) -> types.SimpleNamespace:
    """A ``data: {kind: csv}`` section as the loaders see it: the spec's defaults, no splits,
    target ``species``; ``settings`` override."""
    values = dict(
        kind="csv",
        path=path,
        target="species",
        features=None,
        categorical=[],
        normalize="standard",
        missing="error",
        na_values=[],
        validation_split=0.0,
        test_split=0.0,
        validation=None,
        test=None,
    )
    values.update(settings)
    return types.SimpleNamespace(**values)


FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 2**-23: the gap between 1 and the next float32
LIBM_ULPS = 16  # roundings allowed a layer's exp/tanh/sigmoid: libm, numba and MLAS differ by ulps


def float32_tolerance(magnitude, terms: int = 1):
    """How far apart two float32 computations of the same sum may lie:
    ``2 * gamma_n * magnitude`` with ``gamma_n = n u / (1 - n u)``, ``u = eps / 2`` (about
    ``n * eps * magnitude``), n = ``terms``, eps = ``np.finfo(np.float32).eps``.

    Why: a float32 sum of n terms (or a dot product of length n), computed in any order (one
    after another, pairwise, in a BLAS kernel's blocks, with or without fused multiply-adds), is
    within ``gamma_n * sum|terms|`` of the exact sum (Higham, Accuracy and Stability of Numerical
    Algorithms, 2nd ed., sections 3.1 and 4.2); two such computations, on two processors or by
    two code paths, are therefore within twice that of each other. ``magnitude`` is
    ``sum|terms|``: the largest |value| where the terms do not cancel (a mean, a loss). For a
    chain of sums (a network), pass the sum of the chain's lengths (``chain_terms``) and a
    magnitude in the result's units: a first-order bound, sound while the chain does not amplify
    an early error by more than its own growth, and generous in practice, since rounding errors
    of independent signs grow like sqrt(n), not n. A sound bound, not a tight one: it says what
    a processor may do, not what this one does.
    """
    if terms < 1:
        raise ValueError(f"terms: expected at least 1, got {terms}")
    u = FLOAT32_EPS / 2
    gamma = terms * u / (1 - terms * u)
    return 2 * gamma * np.abs(np.asarray(magnitude, dtype=np.float64))


def assert_close_float32(actual, expected, terms: int = 1, magnitude=None) -> None:
    """Check float32 results against expected ones as float32 arithmetic allows:
    ``|actual - expected| <= float32_tolerance(magnitude, terms)`` for every element, where
    ``magnitude`` defaults to the largest |value| expected (the scale of the values compared;
    pass ``sum|terms|`` where the sum cancels, or an array for per-element scales).
    NaN matches NaN only. The message names the worst element and the tolerance it missed."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if magnitude is None:
        finite = np.abs(expected[np.isfinite(expected)])
        magnitude = finite.max(initial=0.0)
    tolerance = np.broadcast_to(float32_tolerance(magnitude, terms), actual.shape)
    both_nan = np.isnan(actual) & np.isnan(expected)
    off = np.where(both_nan, 0.0, np.abs(actual - expected))
    bad = ~(off <= tolerance)  # NaN against a number is bad
    if bad.any():
        excess = np.where(bad, np.nan_to_num(off - tolerance, nan=np.inf), -np.inf)
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(excess), off.shape))
        raise AssertionError(
            f"{int(bad.sum())} of {off.size} float32 results differ by more than "
            f"{terms} terms of eps allow; worst at {worst}: got {float(actual[worst])!r}, "
            f"expected {float(expected[worst])!r}, off by {float(off[worst]):.3g} > tolerance "
            f"{float(tolerance[worst]):.3g}"
        )


def chain_terms(net, steps: int = 1) -> int:
    """A generous count of the float32 roundings on the way to one output of ``net`` (a built
    ``Sequential``), for ``float32_tolerance``: each layer's fan-in (the 2-D-or-more weights'
    ``size / rows``) plus its bias plus ``LIBM_ULPS`` for its activation, repeated each step for
    a recurrent layer (one with ``weight_hh``), plus ``steps`` for a pool over time and the
    output's width for a softmax's sum."""
    total = 0
    for layer in net.layers:
        fan_in = sum(p.size // p.shape[0] for p in layer.params.values() if p.ndim >= 2)
        per_call = fan_in + 1 + LIBM_ULPS
        total += per_call * (steps if "weight_hh" in layer.params else 1)
    return total + steps + int(np.prod(net.output_shape))


def assert_network_close(
    actual, expected, net, x, steps: int = 1, mask=None, more: int = 0, unscale=(0.0, 1.0)
):
    """Two float32 computations of ``net``'s outputs on ``x`` (another batch size, padding,
    another runtime) agree as float32 allows: ``chain_terms(net, steps) + more`` terms at the
    size the last sum reaches (``output_reach``); outputs in a file's units, ``offset + scale *
    output``, pass ``unscale=(offset, scale)``."""
    offset, scale = unscale
    reach = abs(offset) + scale * output_reach(net, x, mask)
    magnitude = max(np.abs(np.asarray(expected, np.float64)).max(), reach)
    assert_close_float32(actual, expected, chain_terms(net, steps) + more, magnitude)


def output_reach(net, x, mask=None) -> float:
    """The largest |value| the last sum of ``net`` reaches on ``x``: its pre-activation (logits)
    or its output, whichever is larger. The magnitude for comparing outputs of a network whose
    output activation squashes that sum (softmax, sigmoid: slope at most 1/2, so an error in
    the sum moves a probability by less)."""
    last = net.layers[-1]
    kept = last.fused_output, last.logits
    last.fused_output = True  # the layer keeps its pre-activation as it does for a fused loss
    try:
        y = net.forward(np.asarray(x, dtype=net.backend.dtype), mask=mask)
        z = y if last.logits is None else last.logits
    finally:
        last.fused_output, last.logits = kept
    return float(max(np.abs(y).max(initial=0.0), np.abs(z).max(initial=0.0)))


def assert_sgd_like_torch(
    net, module, names: dict[str, str], x, y, loss: str = "mse", mask=None
) -> None:
    """A float64 network and a PyTorch ``module`` (double) from the same weights (``names``:
    ours -> the module's), each trained by full-batch SGD for 3 steps (ours through
    ``training.fit``): every weight, the running statistics included, and the predictions
    (inference mode) within 1e-9. ``loss``: ``mse``, or ``cross_entropy`` on the module's
    logits against one-hot ``y`` (our last layer's softmax fused with it). ``mask`` (N, T):
    the real steps of padded sequences, handed to ours; the module takes x alone, so it must
    hold the same padding itself."""
    from nncli.engine import LOSSES, OPTIMIZERS
    from nncli.training.loop import fit

    torch = torch_reference()
    ours = {**net.named_parameters(), **net.named_state()}
    assert sorted(names) == sorted(ours), sorted(set(names) ^ set(ours))
    theirs = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    with torch.no_grad():
        for name, key in names.items():
            theirs[key].copy_(torch.tensor(np.asarray(ours[name])))
    optimizer = OPTIMIZERS.create("sgd", {"learning_rate": 0.1})
    fit(
        net, LOSSES.create(loss), optimizer, x, y, epochs=3, batch_size="full", shuffle=False,
        mask=mask,
    )  # fmt: skip
    reference = torch.optim.SGD(module.parameters(), lr=0.1)
    tx, ty = torch.tensor(x), torch.tensor(y)
    if loss == "cross_entropy":
        criterion, ty = torch.nn.CrossEntropyLoss(), ty.argmax(dim=1)
    else:
        criterion = torch.nn.MSELoss()
    module.train()
    for _ in range(3):
        reference.zero_grad()
        criterion(module(tx), ty).backward()
        reference.step()
    weights = net.get_weights()
    for name, key in names.items():
        np.testing.assert_allclose(
            weights[name], theirs[key].detach().numpy(), rtol=1e-9, atol=1e-9, err_msg=name
        )
    module.eval()
    with torch.no_grad():
        want = module(tx)
        want = torch.softmax(want, dim=1) if loss == "cross_entropy" else want
    np.testing.assert_allclose(net.forward(x, mask=mask), want.numpy(), rtol=1e-9, atol=1e-9)


# Keras's EarlyStopping, as its documentation words it: "patience: Number of epochs with no
# improvement after which training will be stopped" (tests/training/test_keras_patience.py)
def keras_stop_epoch(losses: list[float], patience: int, min_delta: float = 0.0) -> int | None:
    """The 1-based epoch after which Keras stops: the first at the end of which ``patience``
    epochs in a row have brought no improvement (lower by more than ``min_delta``); None when
    the losses run out first."""
    best, without = float("inf"), 0
    for epoch, loss in enumerate(losses, start=1):
        if loss < best - min_delta:
            best, without = loss, 0
        else:
            without += 1
        if without == patience and without > 0:
            return epoch
    return None
