"""What the user sees after training: the loss per epoch as a sparkline beside the best metric."""

from __future__ import annotations

from pathlib import Path

from helpers import IRIS, invoke, iris_spec

from nncli.commands.train import TrainResult
from nncli.report import SPARKS, sparkline, train_summary
from nncli.training.callbacks import History


def test_sparkline_maps_lowest_to_highest():
    assert sparkline([4.0, 3.0, 2.0, 1.0]) == "█▆▃▁"
    assert sparkline([1.0, 1.0, 1.0]) == "▁▁▁"
    assert sparkline([0.0, 7.0]) == SPARKS[0] + SPARKS[-1]


def test_sparkline_averages_long_runs_to_its_width():
    line = sparkline([float(i) for i in range(100, 0, -1)], width=10)
    assert len(line) == 10 and line[0] == "█" and line[-1] == "▁"
    assert list(line) == sorted(line, reverse=True)  # a falling loss falls in the sparkline


def test_summary_puts_the_loss_curve_beside_the_best_metric():
    history = History(monitor="val_loss")
    for epoch, loss in enumerate([0.9, 0.5, 0.3], start=1):
        history.epochs.append({"epoch": epoch, "loss": loss, "val_loss": loss + 0.1})
    history.best_epoch, history.best_value = 3, 0.4
    lines = train_summary(TrainResult(output=Path("m.h5"), history=history))
    assert lines[0] == "best val_loss 0.4 at epoch 3   loss █▃▁ 0.9 -> 0.3"


def test_train_prints_the_sparkline(tmp_path: Path):
    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    (tmp_path / "iris.yaml").write_text(iris_spec("{epochs: 4, batch_size: 16}"))
    result = invoke("train", tmp_path / "iris.yaml")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    curve = [line for line in lines if "->" in line and any(c in line for c in SPARKS)]
    assert len(curve) == 1, result.stdout
    spark = curve[0].split("loss ")[-1].split()[0]
    assert len(spark) == 4 and set(spark) <= set(SPARKS)
