"""residual: y = f(x) + x (or + a learned projection of x) against PyTorch in float64 (a residual
MLP and a residual CNN with a projection shortcut, 3 full-batch SGD steps), its parameter names,
the shortcut it picks for each shape change, and the errors when none fits."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_sgd_like_torch, torch_reference

from nncli.backend import get_backend
from nncli.engine.layers.residual import stride
from nncli.engine.network import Network, make_layer
from nncli.errors import ShapeError, SpecError

F64 = get_backend("cpu", "float64")

MLP = [
    {"type": "dense", "units": 6, "activation": "relu"},
    {
        "type": "residual",
        "layers": [
            {"type": "dense", "units": 6, "activation": "tanh"},
            {"type": "dense", "units": 6},
        ],
        "activation": "relu",
    },
    {
        "type": "residual",
        "layers": [{"type": "dense", "units": 3, "activation": "relu"}],
        "projection": True,
    },
    {"type": "dense", "units": 2},
]

CNN = [
    {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {
        "type": "residual",
        "layers": [
            {
                "type": "conv2d",
                "filters": 6,
                "kernel_size": 3,
                "strides": 2,
                "padding": 1,
                "use_bias": False,
            },
            "batchnorm",
            "relu",
            {"type": "conv2d", "filters": 6, "kernel_size": 3, "padding": 1, "use_bias": False},
            "batchnorm",
        ],
        "projection": True,
        "activation": "relu",
    },
    "global_avgpool",
    {"type": "dense", "units": 3},
]


def linear_names(ours: str, theirs: str) -> dict[str, str]:
    return {f"{ours}.weight": f"{theirs}.weight", f"{ours}.bias": f"{theirs}.bias"}


def test_a_residual_mlp_trains_as_torch_does():
    torch = torch_reference()
    nn, f = torch.nn, torch.nn.functional

    class ResidualMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.a1, self.a2 = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 6)
            self.b1, self.proj, self.out = nn.Linear(6, 3), nn.Linear(6, 3), nn.Linear(3, 2)

        def forward(self, x):
            h = f.relu(self.inp(x))
            h = f.relu(h + self.a2(torch.tanh(self.a1(h))))
            return self.out(f.relu(self.b1(h)) + self.proj(h))

    net = Network(MLP, (4,), backend=F64, seed=3)
    names = {
        **linear_names("0.dense", "inp"),
        **linear_names("1.residual.0.dense", "a1"),
        **linear_names("1.residual.1.dense", "a2"),
        **linear_names("2.residual.0.dense", "b1"),
        **linear_names("2.residual.projection", "proj"),
        **linear_names("3.dense", "out"),
    }
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)), rng.normal(size=(16, 2))
    assert_sgd_like_torch(net, ResidualMLP().double(), names, x, y)


def test_a_residual_cnn_with_a_projection_shortcut_trains_as_torch_does():
    """ResNet's downsampling block: two 3x3 convs with batchnorm, the first of stride 2, and a
    1x1 conv of stride 2 on the shortcut; the running statistics are compared too."""
    torch = torch_reference()
    nn, f = torch.nn, torch.nn.functional

    class ResidualCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 4, 3, padding=1)
            self.c1, self.bn1 = nn.Conv2d(4, 6, 3, 2, 1, bias=False), nn.BatchNorm2d(6)
            self.c2, self.bn2 = nn.Conv2d(6, 6, 3, 1, 1, bias=False), nn.BatchNorm2d(6)
            self.proj, self.fc = nn.Conv2d(4, 6, 1, stride=2), nn.Linear(6, 3)

        def forward(self, x):
            h = f.relu(self.stem(x))
            block = self.bn2(self.c2(f.relu(self.bn1(self.c1(h)))))
            h = f.relu(block + self.proj(h))
            return self.fc(h.mean(dim=(2, 3)))

    net = Network(CNN, (1, 8, 8), backend=F64, seed=4)
    norm = ("weight", "bias", "running_mean", "running_var")
    names = {
        **linear_names("0.conv2d", "stem"),
        "1.residual.0.conv2d.weight": "c1.weight",
        **{f"1.residual.1.batchnorm.{k}": f"bn1.{k}" for k in norm},
        "1.residual.3.conv2d.weight": "c2.weight",
        **{f"1.residual.4.batchnorm.{k}": f"bn2.{k}" for k in norm},
        **linear_names("1.residual.projection", "proj"),
        **linear_names("3.dense", "fc"),
    }
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 1, 8, 8)), rng.normal(size=(10, 3))
    assert_sgd_like_torch(net, ResidualCNN().double(), names, x, y)


def test_a_sequence_block_with_a_strided_kernel_1_projection_is_torchs():
    torch = torch_reference()
    conv = {"type": "conv1d", "filters": 5, "kernel_size": 3, "strides": 2, "padding": 1}
    layer = make_layer({"type": "residual", "projection": True, "layers": [conv]}, 0)  # fmt: skip
    layer.build((9, 3), F64, np.random.default_rng(0))
    conv, proj = torch.nn.Conv1d(3, 5, 3, 2, 1).double(), torch.nn.Conv1d(3, 5, 1, 2).double()
    with torch.no_grad():
        for module, prefix in ((conv, "0.conv1d"), (proj, "projection")):
            module.weight.copy_(torch.tensor(layer.params[f"{prefix}.weight"]))
            module.bias.copy_(torch.tensor(np.random.default_rng(2).normal(size=5)))
            layer.params[f"{prefix}.bias"][...] = module.bias.numpy()
    x = np.random.default_rng(3).normal(size=(2, 9, 3))
    tx = torch.tensor(x, requires_grad=True)
    channels = tx.transpose(1, 2)
    want = (conv(channels) + proj(channels)).transpose(1, 2)
    y = layer.forward(x)
    assert y.shape == (2, 5, 5)
    np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = np.random.default_rng(4).normal(size=y.shape)
    (want * torch.tensor(dy)).sum().backward()
    np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.grads["projection.weight"], proj.weight.grad.numpy(), 1e-9)


@pytest.mark.parametrize(
    ("size", "out", "expected"), [(8, 4, 2), (7, 4, 2), (9, 3, 3), (8, 8, 1), (4, 6, None)]
)
def test_the_shortcut_stride_takes_the_size_to_the_output(size, out, expected):
    assert stride(size, out) == expected
    if expected:
        assert (size - 1) // expected + 1 == out


def test_the_parameters_are_named_by_part_and_the_parts_see_the_flat_buffer():
    net = Network(CNN, (1, 8, 8), backend=F64)
    block = net.layers[1]
    assert list(block.params)[:2] == ["0.conv2d.weight", "1.batchnorm.weight"]
    assert list(block.state) == [
        "1.batchnorm.running_mean", "1.batchnorm.running_var",
        "4.batchnorm.running_mean", "4.batchnorm.running_var",
    ]  # fmt: skip
    stored = {k: v + 1.0 for k, v in net.get_weights().items()}
    net.set_weights(stored)
    np.testing.assert_array_equal(
        block.shortcut.params["weight"], stored["1.residual.projection.weight"]
    )
    part = block.sublayers()["1.batchnorm"]
    np.testing.assert_array_equal(
        part.state["running_var"], stored["1.residual.1.batchnorm.running_var"]
    )
    assert part.grads["weight"] is block.grads["1.batchnorm.weight"]
    assert list(block.sublayers()) == [
        "0.conv2d", "1.batchnorm", "2.relu", "3.conv2d", "4.batchnorm", "projection"
    ]  # fmt: skip


def test_without_dx_the_parameter_gradients_are_the_same():
    """First in the network while training, the block computes no dL/dx: its stack stops at its
    first part with parameters, and every parameter gradient is what the full pass gives."""
    net = Network(CNN[1:], (4, 8, 8), backend=F64, seed=2)
    x = np.random.default_rng(5).normal(size=(3, 4, 8, 8))
    y = net.forward(x, training=True)
    dy = np.random.default_rng(6).normal(size=y.shape)
    assert net.backward(dy) is None
    skipped = {k: v.copy() for k, v in net.named_gradients().items()}
    net.forward(x, training=True)
    assert net.backward(dy, input_grad=True).shape == x.shape
    for name, grad in net.named_gradients().items():
        np.testing.assert_allclose(skipped[name], grad, rtol=1e-12, atol=1e-15, err_msg=name)


def test_a_shape_change_without_projection_names_both_shapes():
    layers = [
        {"type": "dense", "units": 4},
        {"type": "residual", "layers": [{"type": "dense", "units": 3}]},
    ]
    with pytest.raises(SpecError) as caught:
        Network(layers, (5,))
    message = str(caught.value)
    assert "layers[1] (residual) adds its input (N, 4) to its layers' output (N, 3)" in message
    assert "projection: true" in message and caught.value.field == "layers[1].projection"


@pytest.mark.parametrize(
    ("inner", "in_shape", "found"),
    [
        (["flatten"], (2, 3, 3), "(N, 2, 3, 3) to its layers' output (N, 18)"),
        (
            [{"type": "conv2d", "filters": 2, "kernel_size": 1, "padding": 2}],
            (1, 3, 3),
            "(N, 2, 7, 7)",
        ),
    ],
)
def test_no_learned_shortcut_fits_a_change_of_rank_or_a_growth(inner, in_shape, found):
    with pytest.raises(SpecError, match="has no learned shortcut") as caught:
        Network([{"type": "residual", "layers": inner, "projection": True}], in_shape)
    assert found in str(caught.value)


def test_a_part_names_its_place_inside_the_block():
    net = Network(
        [
            {"type": "dense", "units": 3},
            {"type": "residual", "layers": ["tanh", {"type": "dense", "units": 3}]},
        ],
        (2,),
    )
    assert net.layers[1].parts[1].label == "layers[1].layers[1] (dense)"
    with pytest.raises(SpecError) as caught:
        Network([{"type": "residual", "layers": [{"type": "dense", "unit": 2}]}], (2,))
    assert caught.value.field == "layers[0].layers[0].unit"
    inside = {"type": "residual", "layers": [{"type": "dense", "units": 2, "inputs": "input"}]}
    with pytest.raises(SpecError, match="expected no 'inputs'") as caught:
        Network([inside], (2,))
    assert caught.value.field == "layers[0].layers[0].inputs"
    with pytest.raises(ShapeError, match=r"layers\[0\]\.layers\[0\] \(dense\) expects \(N, 2\)"):
        Network([{"type": "residual", "layers": [{"type": "dense", "units": 2}]}], (2,)).forward(
            np.ones((1, 3))
        )


def test_the_config_rebuilds_the_block():
    layer = make_layer(CNN[1], 1)
    config = layer.config()
    assert config["layers"][0] == {**make_layer(CNN[1]["layers"][0], 0).config()}
    assert make_layer(config, 1).config() == config
