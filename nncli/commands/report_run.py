"""What ``nncli report`` shows of one checkpoint, as data: its summary, ``inspect``'s table, the
learning curves ``plot`` draws and, on labelled data, ``evaluate``'s scores with what a
classifier's outputs say beyond them (its curves, its calibration, its most confidently wrong
examples) and the permutation importance of a table's input columns. Everything is computed by
the commands that compute it elsewhere (``Predictor``, ``evaluate.score_file``,
``inspect.checkpoint_summary``, ``plot.curves``); the curves' arithmetic is the reports room's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nncli.commands.predictor import PROBA, Predictor
from nncli.errors import SpecError
from nncli.reports.importance import Importance, permutation_importance

WRONG = 12  # the most confidently wrong examples shown
TABLE_KINDS = ("csv", "table")  # the kinds whose inputs are columns (importance, rows shown)
IMPORTANCE_ROWS = 10_000  # rows permutation importance shuffles at most (a seeded sample)


@dataclass(frozen=True)
class Scored:
    """A classifier's scored rows: ``classes`` (N,) true class codes, ``probabilities`` (N, K)
    as ``predict --proba`` gives them, ``inputs`` (N, ...) encoded."""

    labels: list[str]
    classes: np.ndarray
    probabilities: np.ndarray
    inputs: Any

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)


@dataclass
class Run:
    """One checkpoint as the report shows it."""

    name: str
    predictor: Predictor
    summary: list[tuple[str, str]]
    inspected: dict[str, Any]
    curves: Any | None  # plots.panels.Curves, or None: no history
    history: dict[str, np.ndarray]
    spec_yaml: str
    evaluation: dict[str, Any] | None = None  # evaluate.as_data
    scored: Scored | None = None
    importance: list[Importance] | None = None
    fit: Any | None = None  # a regression's predicted against actual (plots.panels.Curves)
    notes: dict[str, str] = field(default_factory=dict)  # section id -> why it is empty


def run_of(
    checkpoint: Path,
    name: str,
    data: Path | None,
    part: str | None,
    device: str = "cpu",
    warn: Callable[[str], None] | None = None,
) -> Run:
    """Read ``checkpoint`` once and gather what its report shows under ``name`` (``data``: the
    scores)."""
    from nncli.commands import plot
    from nncli.commands.inspect import checkpoint_summary

    predictor = Predictor.load(checkpoint, device)
    model = predictor.model
    history = {k: np.asarray(v) for k, v in model.training.get("history", {}).items()}
    curves = plot.curves(model, checkpoint, None) if len(history.get("epoch", ())) else None
    inspected = checkpoint_summary(model, checkpoint)
    run = Run(
        name, predictor,
        summary_rows(predictor, inspected, history), inspected, curves, history, model.spec_yaml,
    )  # fmt: skip
    if data is not None:
        score(run, predictor, data, part, warn)
    return run


def summary_rows(
    predictor: Predictor, inspected: dict[str, Any], history: dict[str, np.ndarray]
) -> list[tuple[str, str]]:
    """(what, value): the data, the spec, device, processor, epochs, time, versions."""
    import nncli

    training, model, labels = predictor.training, predictor.model, predictor.labels
    versions = dict(training.get("versions", {}))
    processor = versions.pop("processor", "not recorded (a checkpoint of an earlier release)")
    seconds = float(np.sum(history["time"])) if "time" in history else None
    rows = [
        ("data", data_line(model.spec_yaml, predictor.kind)),
        ("task", predictor.task + (f", {len(labels)} classes" if labels else "")),
        ("device", str(training.get("device", "not recorded"))),
        ("processor", str(processor)),
        ("epochs", str(int(training.get("epoch", 0)))),
        ("training time", "not recorded" if seconds is None else f"{seconds:.2f} s"),
        ("seed", str(training.get("seed", "not recorded"))),
        ("parameters", f"{inspected['total_params']:,}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"),
        ("report made by", f"nncli {nncli.__version__}"),
    ]  # fmt: skip
    if "best" in inspected["footer"]:
        rows.insert(5, ("best", str(inspected["footer"]["best"])))
    return rows


def data_line(spec_yaml: str, kind: str) -> str:
    """``csv: iris.csv, target species``, from the checkpoint's spec (its kind alone when the
    spec cannot be read)."""
    from nncli.spec import loads

    try:
        spec = loads(spec_yaml, "the checkpoint's spec")
    except SpecError:
        return kind
    cfg = spec.data
    target = getattr(cfg, "target", None)
    line = f"{kind}: {getattr(cfg, 'path', '')}"
    return line + (f", target {target}" if target else "")


def score(
    run: Run,
    predictor: Predictor,
    data: Path,
    part: str | None,
    warn: Callable[[str], None] | None,
) -> None:
    """``evaluate``'s scores of ``data`` (``score_file``, exactly what ``evaluate --json``
    writes), a classifier's scored rows, and a table's permutation importance."""
    from nncli.commands.evaluate import as_data, score_file

    result = score_file(predictor, data, warn=warn, part=part)
    run.evaluation = as_data(result, data)
    outputs = result.get("outputs")
    if outputs is not None and outputs.ndim == 2:
        run.scored = scored_rows(predictor, result, outputs)
    elif predictor.labels is not None:
        run.notes["roc"] = "per-step outputs: the curves are drawn for one output a row"
    if predictor.task == "regression":
        run.fit = fit_picture(predictor, result, Path(data).name)
    if predictor.kind in TABLE_KINDS:
        run.importance = importance(predictor, result, run.scored)
    else:
        run.notes["importance"] = "permutation importance is computed for tables' columns"


def fit_picture(predictor: Predictor, result: dict[str, Any], title: str) -> Any:
    """Each target's predictions on the scored rows against the actual values, and the
    residuals, as ``plot --data`` draws them."""
    from nncli.commands.plot import fits_of
    from nncli.plots import panels

    fits = fits_of(predictor, result["inputs"], result["targets"], result["mask"], title)
    return panels.Curves(f"{title}: predicted against actual", [], panels.Marks(), None, fits)


def scored_rows(predictor: Predictor, result: dict[str, Any], outputs: np.ndarray) -> Scored:
    """The true classes (as ``evaluate`` reads them from the targets) and the probabilities
    ``predict --proba`` gives for ``outputs``."""
    from nncli.training.metrics import predicted_classes

    decoded = predictor.decode(outputs, proba=True)
    probabilities = np.stack([v for k, v in decoded.items() if k.startswith(PROBA)], axis=1)
    classes = np.asarray(predicted_classes(result["targets"]))
    labels = [str(label) for label in result["labels"]]
    return Scored(labels, classes, probabilities.astype(np.float64), result["inputs"])


def column_groups(predictor: Predictor) -> list[tuple[str, list[int]]]:
    """Each input column of a table with the encoded columns it became (a category's one-hot
    columns together)."""
    groups, start = [], 0
    for column in predictor.encoder.columns:
        width = len(column.names)
        groups.append((column.name, list(range(start, start + width))))
        start += width
    return groups


def importance(
    predictor: Predictor, result: dict[str, Any], scored: Scored | None
) -> list[Importance]:
    """Each input column's drop in the score when shuffled (``reports.importance``), seeded by
    the checkpoint's seed: the score is the accuracy of a classifier, minus the loss of a
    regression (its rise). Over ``IMPORTANCE_ROWS`` rows, a seeded sample of that many."""
    from nncli.training.loop import evaluate
    from nncli.training.metrics import predicted_classes

    x, y, mask = np.asarray(result["inputs"]), result["targets"], result["mask"]
    model = predictor.model
    rng = np.random.default_rng(int(predictor.training.get("seed", 0)))
    truth = None if scored is None else scored.classes
    if len(x) > IMPORTANCE_ROWS:  # each shuffle is a forward pass over the rows
        kept = np.sort(rng.choice(len(x), IMPORTANCE_ROWS, replace=False))
        x, y = x[kept], y[kept]
        mask = None if mask is None else mask[kept]
        truth = None if truth is None else truth[kept]
    if truth is not None:

        def measure(rows: np.ndarray) -> float:
            guessed = np.asarray(predicted_classes(predictor.outputs(rows, mask)))
            return float(np.mean(guessed == truth))
    else:

        def measure(rows: np.ndarray) -> float:
            found = evaluate(model.net, model.loss, rows, y, mask=mask,
                             target_scale=model.target_scale)  # fmt: skip
            return -float(found["loss"])

    return permutation_importance(measure, x, column_groups(predictor), rng)


def wrong_rows(scored: Scored, count: int = WRONG) -> np.ndarray:
    """The rows predicted wrong, the most confident first (ties: the earlier row first)."""
    predicted = scored.predicted
    confidence = scored.probabilities[np.arange(len(predicted)), predicted]
    wrong = np.flatnonzero(predicted != scored.classes)
    return wrong[np.argsort(-confidence[wrong], kind="stable")][:count]


def table_values(predictor: Predictor, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Encoded table rows (n, F) back in the file's terms, one (name, values) per column: a
    number unscaled, a category the one its one-hot marks ("(unseen)" for none)."""
    from nncli.data.columns import CategoricalColumn

    values = []
    for name, columns in column_groups(predictor):
        column = next(c for c in predictor.encoder.columns if c.name == name)
        block = np.asarray(x[:, columns], dtype=np.float64)
        if not isinstance(column, CategoricalColumn):
            shown = block[:, 0] * column.scale + column.offset
            values.append((name, np.array([f"{v:.4g}" for v in shown])))
            continue
        picked = np.asarray(column.categories, dtype=object)[block.argmax(axis=1)]
        values.append((name, np.where(block.max(axis=1) > 0, picked, "(unseen)")))
    return values
