"""Everything the user sees: progress during training, epoch lines and tables (rich).

The library reports through callbacks and data; this module turns those into text. On a terminal
a progress bar shows live loss and samples/s for the running epoch; elsewhere (a pipe, CI) each
epoch is one plain line.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from nncli.engine.history import History
from nncli.training.callbacks import Callback, beside

if TYPE_CHECKING:
    from nncli.commands.train import TrainResult

METRIC_ORDER = ["loss", "accuracy", "rmse", "mae", "grad_norm"]


def console(stderr: bool = False) -> Console:
    """A terminal keeps its own width; a pipe or a log gets 120 columns, so tables do not wrap."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 120
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def format_logs(logs: dict[str, float]) -> str:
    """``loss 0.412  accuracy 0.871  val_loss 0.398  val_accuracy 0.9  (0.05 s)``"""
    keys = [k for k in METRIC_ORDER if k in logs]
    keys += [f"val_{k}" for k in METRIC_ORDER if f"val_{k}" in logs]
    text = "  ".join(f"{k} {logs[k]:.4g}" for k in keys)
    return f"{text}  ({logs.get('time', 0.0):.2f} s)"


class TrainingReport(Callback):
    """Progress bar (terminals) or plain lines (pipes); ``quiet`` prints nothing."""

    def __init__(self, out: Console | None = None, quiet: bool = False):
        self.out = out or console()
        self.quiet = quiet
        self.live = self.out.is_terminal and not quiet
        self.progress: Any = None

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]
        self.batches = info["batches"]
        self.samples = info["samples"]
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4g}  {task.fields[rate]:.0f} samples/s"),
                console=self.out,
                transient=True,
            )
            self.progress.start()
            self.task = None

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float, seen: int) -> None:
        if not self.live:
            return
        if batch == 1 or self.task is None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.started = time.perf_counter()
            self.task = self.progress.add_task(
                "", total=batches, epoch=epoch, epochs=self.epochs, loss=loss, rate=0.0
            )
        rate = seen / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, completed=batch, loss=loss, rate=rate)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.quiet:
            return
        width = len(str(self.epochs))
        line = f"epoch {epoch:>{width}}/{self.epochs}  {format_logs(logs)}"
        if self.progress is not None:
            self.progress.console.print(line)
        else:
            self.out.print(line)

    def on_train_end(self, history: History) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def end_of_training(history: History) -> list[str]:
    """Why training ended and whose weights the network holds, e.g. ``early stop at epoch 36:
    val_loss has not improved for 11 epochs (patience 10); restored epoch 25, val_loss 0.312``
    and ``best val_loss 0.312 at epoch 25: val_accuracy 0.9333`` (that epoch's other metrics
    of the monitor's set)."""
    lines = []
    stop = history.early_stop
    if stop is not None:
        waited = stop.epoch - stop.best_epoch
        best = f"epoch {stop.best_epoch}, {stop.monitor} {stop.best_value:.4g}"
        weights = (
            f"restored {best}"
            if stop.restored
            else f"the weights are the last epoch's ({stop.epoch}); the best was {best}"
        )
        lines.append(
            f"early stop at epoch {stop.epoch}: {stop.monitor} has not improved for {waited} "
            f"epochs (patience {stop.patience}); {weights}"
        )
    if history.best_epoch is not None:
        line = f"best {history.monitor or 'value'} {history.best_value:.4g} at epoch "
        line += str(history.best_epoch)
        logs = [e for e in history.epochs if int(e["epoch"]) == history.best_epoch]
        others = beside(logs[0], history.monitor) if logs and history.monitor else ""
        line += f": {others}" if others else ""
        last = int(history.epochs[-1]["epoch"]) if history.epochs else history.best_epoch
        if stop is None and last != history.best_epoch:
            line += (
                " (its weights restored)"
                if history.restored
                else f" (the weights are the last epoch's, {last})"
            )
        lines.append(line)
    return lines


def train_summary(result: TrainResult) -> list[str]:
    """The lines after training: how it ended, the files saved, the test part's metrics."""
    lines = end_of_training(result.history)
    losses = [float(e["loss"]) for e in result.history.epochs if "loss" in e]
    if len(losses) > 1:
        curve = f"loss {sparkline(losses)} {losses[0]:.4g} -> {losses[-1]:.4g}"
        best = [i for i, line in enumerate(lines) if line.startswith("best ")]
        if best:
            lines[best[0]] += f"   {curve}"
        else:
            lines.append(curve)
    lines += [f"saved {p}" for p in result.files]
    if result.history.epochs and not result.files:
        lines.append("smoke run OK: every loss finite, the checkpoint round trip matches")
    if result.test:
        lines.append("test: " + " ".join(f"{k} {v:.4g}" for k, v in result.test.items()))
    return lines


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    """One block character per value (``▇▅▃▂▁``), lowest to highest of the run; more than
    ``width`` values are averaged in ``width`` consecutive groups."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    if len(v) > width:
        v = np.array([group.mean() for group in np.array_split(v, width)])
    span = v.max() - v.min()
    levels = np.zeros(len(v), int) if span == 0 else np.rint((v - v.min()) / span * 7).astype(int)
    return "".join(SPARKS[i] for i in levels)


def merged_notes(notes: list[str]) -> list[str]:
    """``H: O = ...`` and ``W: O = ...`` with the same numbers -> one ``H, W: O = ...`` line."""
    pair = len(notes) == 2 and notes[0].startswith("H: ") and notes[1].startswith("W: ")
    if pair and notes[0][3:] == notes[1][3:]:
        return [f"H, W: {notes[0][3:]}"]
    return notes


def summary_table(
    rows: list[dict[str, Any]], title: str, footer: dict[str, Any], inputs: bool = False
) -> Table:
    """Keras-style model summary: index, layer (name: type), output shape, parameters; with
    ``inputs`` (a network that is not a stack) the outputs each layer takes. A composed layer's
    parts follow it, indented, with their own parameters."""
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("layer (type)", no_wrap=True)
    if inputs:
        table.add_column("inputs")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    table.add_column("weights + biases", justify="right")
    blank = [""] * (1 if inputs else 0)

    def cells(r: dict[str, Any], indent: str = "") -> list[str]:
        name = r["type"] + (f" ({r['activation']})" if r.get("activation") else "")
        shape = "(" + ", ".join(map(str, r["output_shape"])) + ")"
        split = f"{r['weights']:,} + {r['biases']:,}" if r["params"] else ""
        named = f"{r['name']}: " if r.get("name") else ""
        if named and r["name"].endswith(f".{r['type']}"):  # a residual's part: 0.conv2d
            named, name = "", r["name"] + name.removeprefix(r["type"])
        return [f"{indent}{named}{name}", shape, f"{r['params']:,}", split]

    for r in rows:
        first, *rest = cells(r)
        taken = [", ".join(str(i) for i in r.get("inputs", []))] if inputs else []
        table.add_row(str(r["index"]), first, *taken, *rest)
        for part in r.get("parts", []):
            first, *rest = cells(part, "  ")
            table.add_row("", f"[dim]{first}[/dim]", *blank, *rest)
        if r.get("frozen"):
            what = f"{r['frozen']:,} frozen (trainable: false)"
            table.add_row("", f"  [dim]{what}[/dim]", *blank, "", "", "")
        if r.get("non_trainable"):
            table.add_row(
                "", f"  [dim]+ {r['non_trainable']:,} non-trainable[/dim]", *blank, "", "", ""
            )
        for note in merged_notes(r.get("notes", [])):
            table.add_row("", f"  [dim]{note}[/dim]", *blank, "", "", "")
    table.caption = "  ".join(f"{k}: {v}" for k, v in footer.items())
    table.caption_justify = "left"
    return table


def import_table(rows: list[Any]) -> Table:
    """``nncli import``: each array of the checkpoint, its shape and the tensor it came from."""
    table = Table(title="weights imported", title_justify="left")
    for column in ("array", "shape", "from"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.array, "(" + ", ".join(map(str, row.shape)) + ")", row.tensor)
    return table


def metrics_table(metrics: dict[str, float], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}")
    return table


def class_report_table(labels: list[str], report: dict[str, Any]) -> Table:
    table = Table(title="per class", title_justify="left")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for i, label in enumerate(labels):
        table.add_row(
            str(label),
            f"{report['precision'][i]:.3f}",
            f"{report['recall'][i]:.3f}",
            f"{report['f1'][i]:.3f}",
            str(int(report["support"][i])),
        )
    return table


def confusion_table(labels: list[str], confusion: Any) -> Table:
    table = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    table.add_column("")
    for label in labels:
        table.add_column(str(label), justify="right")
    for label, row in zip(labels, confusion, strict=True):
        table.add_row(str(label), *(str(int(v)) for v in row))
    return table


def evaluation_tables(result: dict[str, Any], title: str) -> list[Table]:
    """``nncli evaluate``: the metrics, and for a classifier the per-class and confusion tables."""
    tables = [metrics_table(result["metrics"], title)]
    if "report" in result:
        tables.append(class_report_table(result["labels"], result["report"]))
        tables.append(confusion_table(result["labels"], result["report"]["confusion"]))
    return tables


def gradcheck_table(checked: dict[str, Any]) -> Table:
    """``nncli gradcheck``: one row per parameter, its relative error and whether it passed."""
    title = f"gradient check: float64, {checked['rows']} rows, central differences"
    table = Table(title=title, title_justify="left")
    for col in ("#", "layer", "parameter", "entries", "relative error", "result"):
        table.add_column(
            col, justify="right" if col in ("#", "entries", "relative error") else "left"
        )
    for p in checked["parameters"]:
        entries = f"{p['checked']}/{p['size']}"
        verdict = "ok" if p["ok"] else f"FAIL (> {checked['tolerance']:g})"
        if p.get("zero") and p["error"] > checked["tolerance"]:
            verdict = "ok (zero gradient)"
        row = (str(p["layer"]), p["type"], p["parameter"], entries, f"{p['error']:.2e}", verdict)
        table.add_row(*row)
    return table


# -- nncli tune and nncli cv
def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trial_line(row: dict[str, Any], keys: list[str], monitor: str) -> str:
    """``trial 3  complete  val_loss 0.4123  optimizer.learning_rate=0.003  (12 epochs, 0.8 s)``"""
    values = "  ".join(f"{k}={_cell(row.get(k))}" for k in keys)
    took = f"({_cell(row.get('epochs'))} epochs, {_cell(row.get('seconds'))} s)"
    value = f"{monitor} {_cell(row.get('value'))}"
    return f"trial {row['number']}  {row['state']}  {value}  {values}  {took}"


def trials_table(rows: list[dict[str, Any]], keys: list[str], monitor: str) -> Table:
    """One row per trial: number, state, the monitored value, each searched value, epochs."""
    table = Table(title="trials", title_justify="left")
    for col in ("#", "state", monitor, *keys, "epochs", "seconds"):
        table.add_column(col, justify="left" if col == "state" else "right")
    for row in rows:
        cells = [row.get(c) for c in ("value", *keys, "epochs", "seconds")]
        table.add_row(str(row["number"]), row["state"], *(_cell(c) for c in cells))
    return table


class TrialReport:
    """``nncli tune``'s trials as they end: a live table on a terminal, one line elsewhere."""

    def __init__(
        self, out: Console, keys: list[str], monitor: str, quiet: bool = False, live: bool = True
    ):
        """``live=False``: lines even on a terminal (worker processes share one)."""
        self.out, self.keys, self.monitor, self.quiet = out, keys, monitor, quiet
        self.rows: list[dict[str, Any]] = []
        self.live: Any = None
        if live and out.is_terminal and not quiet:
            from rich.live import Live

            self.live = Live(self.table(), console=out, auto_refresh=False)
            self.live.start()

    def table(self) -> Table:
        return trials_table(self.rows, self.keys, self.monitor)

    def __call__(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.live is not None:
            self.live.update(self.table(), refresh=True)
        elif not self.quiet:
            self.out.print(trial_line(row, self.keys, self.monitor))

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def tune_summary(result: Any) -> list[str]:
    """The study's totals, the best trial and the files written."""
    states: dict[str, int] = {}
    for row in result.rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in states.items())
    lines = [
        f"study {result.study!r} in {result.storage}: {len(result.rows)} trials ({counts}); "
        f"this run added {result.added}"
    ]
    if result.best is not None:
        number, values, value = result.best
        chosen = "  ".join(f"{k}={_cell(v)}" for k, v in values.items())
        lines.append(f"best trial {number}: {result.monitor} {value:.4g}  {chosen}")
    return lines + [f"saved {p}" for p in result.files]


def cv_table(result: Any) -> Table:
    """One row per fold (rows trained and scored, epochs, metrics), then mean and std."""
    columns = [c for c in result.columns() if c != "epochs"]
    table = Table(title=f"{len(result.folds)}-fold cross-validation ({result.scheme})")
    table.title_justify = "left"
    for col in ("fold", "train rows", "val rows", "epochs", *columns):
        table.add_column(col, justify="right")
    for f in result.folds:
        cells = [f.train_rows, f.val_rows, f.epochs, *(f.metrics[c] for c in columns)]
        table.add_row(str(f.fold), *(_cell(c) for c in cells))
    for name, row in result.summary().items():
        cells = ["", "", _cell(row["epochs"]), *(_cell(row[c]) for c in columns)]
        table.add_row(name, *cells, style="bold")
    return table


def fold_line(fold: Any) -> str:
    """``fold 2/5  val_loss 0.31  val_accuracy 0.9  (24 epochs, 1.2 s)``"""
    metrics = "  ".join(f"{k} {v:.4g}" for k, v in fold.metrics.items())
    return f"fold {fold.fold}  {metrics}  ({fold.epochs} epochs, {fold.seconds:.2f} s)"
