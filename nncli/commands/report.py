"""``nncli report``: one or more checkpoints as one self-contained HTML page (``report.html``
by default, beside the first checkpoint): each run's summary, ``inspect``'s table and learning
curves and, on labelled ``--data``, ``evaluate``'s scores, the per-class table and confusion
matrix, ROC and precision-recall curves, the reliability diagram with the expected
calibration error, the most confidently wrong examples and the permutation importance of a
table's columns. Several checkpoints stand side by side, their curves and metrics compared
first. What each run shows is gathered in ``report_run.py``; the page is the reports room's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nncli.commands.report_run import TABLE_KINDS, Run, run_of, table_values, wrong_rows
from nncli.errors import SpecError
from nncli.reports import curves
from nncli.reports import page as html
from nncli.reports.importance import REPEATS

CURVE_KEYS = ("loss", "accuracy")  # the learning curves compared across runs


def report(
    checkpoints: Sequence[Path],
    *,
    data: Path | None = None,
    output: Path | None = None,
    force: bool = False,
    part: str | None = None,
    device: str = "cpu",
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write the report of ``checkpoints`` atomically -> ``path``, ``replaced``, ``runs`` (what
    each shows) and ``sections`` (their ids). The output follows the one output rule
    (``checkpoint.outputs``), checked before any checkpoint is read; ``part`` chooses the rows
    of ``data`` as ``evaluate --part`` does."""
    from nncli import plots
    from nncli.checkpoint.folder import write_text_atomic
    from nncli.checkpoint.outputs import check_output

    if not checkpoints:
        raise SpecError("expected at least one checkpoint", field="CKPT")
    plots.require("nncli report")
    checkpoints = [Path(c) for c in checkpoints]
    output = Path(output) if output is not None else checkpoints[0].with_name("report.html")
    replaced = check_output(output, [*checkpoints, data], force=force)
    if output.suffix.lower() not in (".html", ".htm"):
        raise SpecError(f"expected an .html file, got {output.name!r}", field="--output")
    names = run_names(checkpoints)
    pairs = zip(checkpoints, names, strict=True)
    runs = [run_of(checkpoint, name, data, part, device, warn) for checkpoint, name in pairs]
    sections = page_sections(runs, data)
    title = "nncli report: " + ", ".join(run.name for run in runs)
    write_text_atomic(output, html.page(title, [run.name for run in runs], sections))
    return {
        "path": output,
        "replaced": replaced,
        "runs": runs,
        "sections": [s.id for s in sections],
    }


def run_names(checkpoints: list[Path]) -> list[str]:
    """Each checkpoint's name on the page: its folder and file (``iris/model.h5``), with as
    many folders above as it takes to tell the runs apart (``a/out/model.h5``)."""
    parts = [Path(c).absolute().parts for c in checkpoints]
    depth = 2
    while depth < max(len(p) for p in parts):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
        depth += 1
    return [str(c) for c in checkpoints]


def page_sections(runs: list[Run], data: Path | None) -> list[html.Section]:
    """The page's sections in order; those of ``--data`` only with it, a classifier's only for
    one, the comparison only for several runs."""
    sections = [comparison(runs)] if len(runs) > 1 else []
    sections += [
        html.Section("summary", "Summary", [summary(run) for run in runs]),
        html.Section("layers", "Layers", [layers(run) for run in runs]),
        html.Section("curves", "Learning curves", [learning_curves(run) for run in runs]),
    ]
    if data is None:
        return sections
    sections.append(html.Section("metrics", f"Metrics on {data}", [metrics(run) for run in runs]))
    if any(run.fit is not None for run in runs):
        sections.append(html.Section("fit", "Predicted against actual", [fit(run) for run in runs]))
    if any(run.scored is not None for run in runs):
        for id, title, part in CLASSIFIER_SECTIONS:
            sections.append(html.Section(id, title, [part(run) for run in runs]))
    sections.append(
        html.Section("importance", "Permutation importance", [importance(run) for run in runs])
    )
    return sections


def picture(drawn: Any, alt: str) -> str:
    from nncli.plots import draw

    return html.image(draw.render(drawn), alt)


def comparison(runs: list[Run]) -> html.Section:
    """The runs' metrics in one table (a column each) and their learning curves on shared axes."""
    from nncli.plots import figures

    parts = []
    if all(run.evaluation is not None for run in runs):
        names = sorted({k for run in runs for k in run.evaluation["metrics"]})
        rows = [
            [name, *(float(run.evaluation["metrics"][name])
                     if name in run.evaluation["metrics"] else "" for run in runs)]
            for name in names
        ]  # fmt: skip
        parts.append(html.table(["metric", *(run.name for run in runs)], rows))
    panels = []
    for key in CURVE_KEYS:
        lines = [
            figures.Line(f"{run.name} {k}", run.history["epoch"], run.history[k])
            for run in runs
            for k in (key, f"val_{key}")
            if k in run.history
        ]
        if lines:
            panels.append((key, lines))
    if panels:
        shared = figures.Lines("learning curves", panels, "epoch", "", unit=False)
        parts.append(picture(shared, "the runs' learning curves"))
    return html.Section("comparison", "Runs compared", ["".join(parts)])


def summary(run: Run) -> str:
    spec = (
        f"<details><summary>resolved spec</summary><pre>{html.text(run.spec_yaml)}</pre></details>"
    )
    return html.table([], run.summary) + spec


def layers(run: Run) -> str:
    """``inspect``'s table: index, layer (type, activation), its inputs, output shape,
    parameters."""
    rows = [
        [str(r["index"]), (f"{r['name']}: " if r.get("name") else "") + r["type"]
         + (f" ({r['activation']})" if r.get("activation") else ""),
         ", ".join(map(str, r.get("inputs", []))),
         "(" + ", ".join(map(str, r["output_shape"])) + ")",
         f"{r['params']:,}"]
        for r in run.inspected["layers"]
    ]  # fmt: skip
    footer = "; ".join(f"{k}: {v}" for k, v in run.inspected["footer"].items())
    header = ["#", "layer", "inputs", "output shape", "parameters"]
    return html.table(header, rows) + html.note(footer)


def learning_curves(run: Run) -> str:
    if run.curves is None:
        return html.note("this checkpoint holds no training history")
    return picture(run.curves, f"learning curves of {run.name}")


def metrics(run: Run) -> str:
    evaluation = run.evaluation or {}
    rows = [[k, float(v)] for k, v in evaluation.get("metrics", {}).items()]
    line = f"{evaluation.get('rows', 0)} rows scored ({evaluation.get('part', 'all')})"
    return html.table(["metric", "value"], rows) + html.note(line)


def fit(run: Run) -> str:
    if run.fit is None:
        return html.note("a regression's section")
    return picture(run.fit, f"predicted against actual of {run.name}")


def per_class(run: Run) -> str:
    evaluation = run.evaluation or {}
    if "per_class" not in evaluation:
        return html.note("a classifier's section")
    rows = [
        [r["class"], float(r["precision"]), float(r["recall"]), float(r["f1"]), r["support"]]
        for r in evaluation["per_class"]
    ]  # fmt: skip
    return html.table(["class", "precision", "recall", "f1", "support"], rows)


def confusion(run: Run) -> str:
    """The confusion matrix (rows: true, columns: predicted), each cell shaded by its share of
    the true class."""
    evaluation = run.evaluation or {}
    if "confusion" not in evaluation:
        return html.note("a classifier's section")
    counts = np.asarray(evaluation["confusion"], dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    labels = evaluation["labels"]
    rows = [[f"true {label}", *map(int, row)] for label, row in zip(labels, counts, strict=True)]
    return html.table(["", *(f"predicted {label}" for label in labels)], rows, shares.tolist())


def class_curves(run: Run, which: str) -> str:
    """ROC (``roc``) or precision-recall (``pr``) curves: the second class's for two classes,
    one against the rest for each of more; the areas in the legend and a table."""
    from nncli.plots import figures

    scored = run.scored
    if scored is None:
        return html.note(run.notes.get("roc", "a classifier's section"))
    lines, rows = [], []
    for k, positive in curves.one_vs_rest(scored.classes, scored.probabilities):
        found = (curves.roc if which == "roc" else curves.precision_recall)(
            positive, scored.probabilities[:, k]
        )
        area = "undefined" if found.area is None else html.number(found.area)
        lines.append(figures.Line(f"{scored.labels[k]} ({area})", found.x, found.y))
        rows.append([scored.labels[k], "undefined" if found.area is None else found.area])
    roc = which == "roc"
    axes = ("false positive rate", "true positive rate") if roc else ("recall", "precision")
    title = "ROC" if roc else "precision-recall"
    drawn = figures.Lines(title, [(run.name, lines)], *axes, diagonal=roc)
    header = ["class (against the rest)", "ROC AUC" if roc else "average precision"]
    return picture(drawn, f"{title} curves of {run.name}") + html.table(header, rows)


def roc(run: Run) -> str:
    return class_curves(run, "roc")


def precision_recall(run: Run) -> str:
    return class_curves(run, "pr")


def calibration(run: Run) -> str:
    """The reliability diagram: for two classes the second's probability against how often it
    is the class; for more the top probability against how often that class is right."""
    from nncli.plots import figures

    scored = run.scored
    if scored is None:
        return html.note("a classifier's section")
    if scored.probabilities.shape[1] == 2:
        what = f"probability of {scored.labels[1]}"
        found = curves.reliability(scored.classes == 1, scored.probabilities[:, 1])
    else:
        what = "probability of the predicted class"
        found = curves.reliability(scored.predicted == scored.classes, scored.probabilities.max(1))
    line = figures.Line("the model", found.predicted, found.observed)
    drawn = figures.Lines(f"ECE {found.ece:.4f}", [(run.name, [line])], what,
                          "observed frequency", diagonal=True)  # fmt: skip
    rows = [[float(p), float(o), int(n)]
            for p, o, n in zip(found.predicted, found.observed, found.rows,
                               strict=True)]  # fmt: skip
    ece = f"expected calibration error (ECE): {found.ece:.4f} over {curves.BINS} equal bins"
    return (
        picture(drawn, f"reliability diagram of {run.name}")
        + html.note(ece)
        + html.table(["mean predicted", "observed", "rows"], rows)
    )


def wrong(run: Run) -> str:
    """The most confidently wrong rows: images as pictures, table rows in the file's terms,
    other data by its row."""
    from nncli.plots import figures
    from nncli.plots.panels import viewable

    scored = run.scored
    if scored is None:
        return html.note("a classifier's section")
    chosen = wrong_rows(scored)
    if not len(chosen):
        return html.note("no row was predicted wrong")
    predicted = scored.predicted[chosen]
    confidence = scored.probabilities[chosen, predicted]
    truth = [scored.labels[k] for k in scored.classes[chosen]]
    guess = [scored.labels[k] for k in predicted]
    x = scored.inputs
    if run.predictor.kind == "images":  # (N, C, H, W)
        captions = [
            f"{t} as {g} ({c:.3f})" for t, g, c in zip(truth, guess, confidence, strict=True)
        ]
        tiles = [viewable(np.asarray(x[i])) for i in chosen]
        drawn = figures.Examples("true as predicted (probability)", tiles, captions)
        return picture(drawn, f"the most confidently wrong images of {run.name}")
    columns = []
    if run.predictor.kind in TABLE_KINDS:  # its columns in the file's terms
        columns = table_values(run.predictor, np.asarray(x)[chosen])
    header = ["#", "true", "predicted", "probability", *(name for name, _ in columns)]
    rows = [
        [str(i), truth[j], guess[j], f"{confidence[j]:.4f}", *(v[j] for _, v in columns)]
        for j, i in enumerate(chosen)
    ]
    return html.table(header, rows) + html.note("#: the example's place among those scored, from 0")


def importance(run: Run) -> str:
    if run.importance is None:
        return html.note(run.notes.get("importance", "no importance computed"))
    what = "the drop in accuracy" if run.scored is not None else "the rise in the loss"
    rows = [[item.name, item.drop, item.spread] for item in run.importance]
    intro = html.note(f"{what} when the column is shuffled, mean of {REPEATS} shuffles")
    return intro + html.table(["column", "drop", "spread (std)"], rows)


CLASSIFIER_SECTIONS = (
    ("per-class", "Per class", per_class),
    ("confusion", "Confusion matrix", confusion),
    ("roc", "ROC curves", roc),
    ("pr", "Precision-recall curves", precision_recall),
    ("calibration", "Reliability (calibration)", calibration),
    ("wrong", "Most confidently wrong", wrong),
)
