"""What the user sees after training: the loss per epoch as a sparkline beside the best metric."""

from __future__ import annotations

from pathlib import Path

from helpers import IRIS, invoke, iris_spec

from nncli.cli.report import SPARKS, end_of_training, sparkline, train_summary
from nncli.commands.train import TrainResult
from nncli.engine.history import History


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


def epochs(*logs: dict[str, float]) -> History:
    history = History(monitor="val_loss")
    history.epochs = [{"epoch": i, "time": 0.1, "lr": 0.01, **e} for i, e in enumerate(logs, 1)]
    return history


def test_the_best_line_gives_that_epochs_accuracy_or_rmse_beside_its_loss():
    history = epochs(
        {"loss": 0.9, "accuracy": 0.6, "val_loss": 0.8, "val_accuracy": 0.7},
        {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.45, "val_accuracy": 0.9333, "val_f1": 0.9},
        {"loss": 0.4, "accuracy": 0.9, "val_loss": 0.5, "val_accuracy": 0.9},
    )
    history.best_epoch, history.best_value, history.restored = 2, 0.45, True
    assert end_of_training(history) == [
        "best val_loss 0.45 at epoch 2: val_accuracy 0.9333, val_f1 0.9 (its weights restored)"
    ]
    regression = epochs(
        {"loss": 4.0, "rmse": 2.0, "val_loss": 9.0, "val_rmse": 3.0, "val_mae": 2.5}
    )
    regression.monitor, regression.best_epoch, regression.best_value = "loss", 1, 4.0
    assert end_of_training(regression) == ["best loss 4 at epoch 1: rmse 2"]


def test_inspect_names_the_monitored_metric_and_the_best_epochs_others(tmp_path: Path):
    from nncli.checkpoint import model as model_io
    from nncli.commands.inspect import inspect

    (tmp_path / "iris.csv").write_bytes(IRIS.read_bytes())
    stopping = "early_stopping: {monitor: val_loss, patience: 2}"
    (tmp_path / "iris.yaml").write_text(iris_spec(f"{{epochs: 6, batch_size: 16, {stopping}}}"))
    assert invoke("train", tmp_path / "iris.yaml", "--quiet").exit_code == 0
    model = tmp_path / "out" / "model.h5"
    training = model_io.load(model).training
    best = int(training["best_epoch"])
    accuracy = training["history"]["val_accuracy"][best - 1]
    assert inspect(model)["footer"]["best"] == (
        f"val_loss {training['best_value']:.4g} at epoch {best}: val_accuracy {accuracy:.4g}"
    )
    shown = invoke("inspect", model)
    assert f"best: val_loss {training['best_value']:.4g} at epoch {best}" in shown.stdout
