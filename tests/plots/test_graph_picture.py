"""``nncli plot --graph``: the boxes (labels, output shapes, parameters), their positions and
the arrows handed to matplotlib for a stack, two branches joined by concat and a residual
network; the PNG's documented size; the command line."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import IRIS, invoke, one_error_line, sha

pytest.importorskip("matplotlib")

from matplotlib.axes import Axes  # noqa: E402

from nncli.commands.plot import layer_graph  # noqa: E402
from nncli.engine.network import Network  # noqa: E402
from nncli.plots import draw, panels  # noqa: E402

BLOCK = [
    {"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "same"},
    "batchnorm",
    "relu",
    {"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "same"},
    "batchnorm",
]
STACK = [{"type": "dense", "units": 5, "activation": "relu"}, {"type": "dense", "units": 3}]
BRANCHES = [
    {"type": "dense", "units": 2, "name": "wide", "inputs": "input"},
    {"type": "dense", "units": 6, "activation": "relu", "inputs": "input"},
    {"type": "dense", "units": 3, "activation": "tanh", "name": "deep"},
    {"type": "concat", "inputs": ["wide", "deep"]},
    {"type": "dense", "units": 3, "activation": "softmax"},
]
RESIDUAL = [
    {"type": "conv2d", "filters": 2, "kernel_size": 3, "activation": "relu"},
    {"type": "residual", "layers": BLOCK},
    "flatten",
    {"type": "dense", "units": 3},
]
GRAPH_SPEC = """\
version: 1
seed: 0
data: {kind: csv, path: iris.csv, target: species, validation_split: 0.2}
model:
  layers:
    - {type: dense, units: 2, name: wide, inputs: input}
    - {type: dense, units: 6, activation: relu, inputs: input, name: deep}
    - {type: concat, inputs: [wide, deep]}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.01}
training: {epochs: 1, batch_size: 16}
output: out/model.h5
"""


def picture_of(layers: list, input_shape: tuple[int, ...]) -> panels.GraphPicture:
    model = SimpleNamespace(net=Network(layers, input_shape, seed=0))
    return layer_graph(model, Path("run/model.h5"))


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Every ``add_patch``, ``text`` and ``annotate`` call matplotlib gets."""
    calls: dict[str, list] = {name: [] for name in ("add_patch", "text", "annotate")}
    for name in calls:
        original = getattr(Axes, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls[_name].append((args, kwargs))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Axes, name, spy)
    return calls


def boxes_drawn(drawn: dict[str, list]) -> list[tuple[float, float, str]]:
    """(x, y, text) of each box's text (the first text call is the title)."""
    return [(args[0], args[1], args[2]) for args, _ in drawn["text"][1:]]


def arrows_drawn(drawn: dict[str, list]) -> list[tuple[tuple, tuple]]:
    """(start, end) of each arrow, in pixels from the top left."""
    return [(kwargs["xytext"], kwargs["xy"]) for _, kwargs in drawn["annotate"]]


def centre(width: int, row: int, column: float) -> tuple[float, float]:
    """The documented layout: 240 px a column from the middle, 120 a row below 50 of title."""
    return width / 2 + 240 * column, 50 + 120 * row + 60


def test_a_stack_is_one_column_of_boxes_with_an_arrow_from_each_to_the_next(drawn):
    picture = picture_of(STACK, (4,))
    draw.render(picture)
    width, height = draw.size(picture)
    assert (width, height) == (480, 50 + 3 * 120)
    assert boxes_drawn(drawn) == [
        (*centre(width, 0, 0), "input\n(N, 4)"),
        (*centre(width, 1, 0), "dense 5 relu\n(N, 5)\n25 parameters"),
        (*centre(width, 2, 0), "dense 3\n(N, 3)\n18 parameters"),
    ]
    x = width / 2
    assert arrows_drawn(drawn) == [((x, 150.0), (x, 190.0)), ((x, 270.0), (x, 310.0))]
    corners = [args[0].get_x() for args, _ in drawn["add_patch"]]
    assert corners == [x - 105] * 3  # each box 210 px wide, centred on its column
    assert drawn["text"][0][0][2] == "run/model.h5: 2 layers, 43 parameters"


def test_two_branches_from_the_input_sit_side_by_side_and_land_in_concat_in_order(drawn):
    picture = picture_of(BRANCHES, (4,))
    assert [(box.row, box.column) for box in picture.boxes] == [
        (0, 0.0), (1, -0.5), (1, 0.5), (2, 0.5), (3, 0.0), (4, 0.0)
    ]  # fmt: skip
    assert picture.edges == [(0, 1), (0, 2), (2, 3), (1, 4), (3, 4), (4, 5)]
    assert [box.kind for box in picture.boxes] == [
        "input", "layer", "layer", "layer", "merge", "layer"
    ]  # fmt: skip
    draw.render(picture)
    width, _ = draw.size(picture)
    labels = [text.split("\n")[0] for _, _, text in boxes_drawn(drawn)]
    assert labels == [
        "input", "'wide': dense 2", "dense 6 relu", "'deep': dense 3 tanh", "concat",
        "dense 3 softmax",
    ]  # fmt: skip
    assert boxes_drawn(drawn)[4][2] == "concat\n(N, 5)"  # no parameters: no third line
    arrows = arrows_drawn(drawn)
    wide, deep, concat = centre(width, 1, -0.5), centre(width, 2, 0.5), centre(width, 3, 0)
    # the first input (wide) lands on the left of concat's top, the second on the right
    assert arrows[3] == ((wide[0], wide[1] + 40), (concat[0] - 35, concat[1] - 40))
    assert arrows[4] == ((deep[0], deep[1] + 40), (concat[0] + 35, concat[1] - 40))


def test_a_residual_block_is_one_box_naming_its_parts(drawn):
    picture = picture_of(RESIDUAL, (1, 6, 6))
    draw.render(picture)
    width, _ = draw.size(picture)
    block = boxes_drawn(drawn)[2]
    assert block[:2] == centre(width, 2, 0)
    # the label wraps at 34 characters; its words are the block's parts, in order
    assert block[2] == (
        "residual: conv2d, batchnorm, relu,\nconv2d, batchnorm\n(N, 2, 4, 4)\n84 parameters"
    )
    assert picture.boxes[2].kind == "block"
    assert picture.boxes[1].label == "conv2d 2 3x3 relu"
    assert picture.edges == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_labels_name_the_settings_that_tell_layers_apart():
    label = panels.layer_label
    assert label({"type": "conv1d", "filters": 4, "kernel_size": 3}) == "conv1d 4 k3"
    assert label({"type": "maxpool2d", "pool_size": [2, 3]}) == "maxpool2d 2x3"
    assert label({"type": "attention", "heads": 2, "causal": True}) == "attention 2 heads causal"
    assert label({"type": "attention", "heads": 2, "causal": False}) == "attention 2 heads"
    assert (
        label({"type": "transformer", "heads": 4, "feedforward": 32, "activation": "gelu"})
        == "transformer 4 heads ff 32 gelu"
    )
    assert label({"type": "residual", "layers": ["relu"], "projection": True}) == (
        "residual: relu + projection"
    )


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("graph")
    shutil.copy(IRIS, folder / "iris.csv")
    (folder / "spec.yaml").write_text(GRAPH_SPEC)
    result = invoke("train", folder / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return folder / "out" / "model.h5"


def test_the_command_writes_the_documented_size_beside_the_checkpoint(checkpoint):
    output = checkpoint.with_name("model.graph.png")
    result = invoke("plot", checkpoint, "--graph")
    assert result.exit_code == 0, result.stderr
    # 3 rows of boxes below the input; the branches reach half a column either side
    assert png_size(output) == (480, 50 + 4 * 120)
    assert f"wrote {output} (480x530 px)" in result.stderr
    before = sha(output)
    one_error_line(invoke("plot", checkpoint, "--graph"), 2, str(output), "--force")
    assert sha(output) == before
    again = invoke("plot", checkpoint, "--graph", "--force", "--output", output)
    assert again.exit_code == 0 and f"replaced {output}" in again.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--graph", "--filters"), "choose one of --filters and --graph"),
        (("--graph", "--activations", "x.png"), "choose one of --activations and --graph"),
        (("--graph", "--data", "iris.csv"), "--data"),
        (("--graph", "--layer", "0"), "add --filters"),
    ],
)
def test_graph_goes_with_no_other_picture(checkpoint, args, needle, tmp_path):
    one_error_line(invoke("plot", checkpoint, *args, "--output", tmp_path / "g.png"), 2, needle)
    assert not (tmp_path / "g.png").exists()


def test_each_data_input_is_a_box_of_its_own_above_the_layers_that_read_it():
    layers = [
        {"type": "dense", "units": 3, "inputs": "body", "name": "b"},
        {"type": "concat", "inputs": ["fields", "b"]},
    ]
    net = Network(layers, {"fields": (2,), "body": (5,)})
    model = SimpleNamespace(net=net)
    picture = layer_graph(model, Path("runs/two/model.h5"))
    assert [(b.label, b.shape, b.row) for b in picture.boxes[:2]] == [
        ("fields", "(N, 2)", 0),
        ("body", "(N, 5)", 0),
    ]
    assert picture.boxes[0].column < picture.boxes[1].column
    assert sorted(picture.edges) == [(0, 3), (1, 2), (2, 3)]
