"""``nncli evaluate``: loss and metrics of a checkpoint on labelled data, and for a classifier
the per-class results and the confusion matrix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nncli.commands import parts
from nncli.commands.predictor import Predictor
from nncli.engine import feeds
from nncli.errors import SpecError
from nncli.training.guards import require_finite
from nncli.training.loop import evaluate
from nncli.training.metrics import classification_report, predicted_classes

MAX_JSON = 1 << 28  # bytes of an existing --output read to recognise an earlier evaluation


def evaluate_file(
    checkpoint: Path,
    path: Path,
    device: str = "cpu",
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
    unknown: str = "error",
    part: str | None = "all",
) -> dict[str, Any]:
    """Loss and metrics; for classification also per-class precision/recall/F1 and confusion
    (``score_file`` with the checkpoint loaded on ``device``)."""
    predictor = Predictor.load(checkpoint, device)
    return score_file(predictor, path, skip_bad=skip_bad, warn=warn, unknown=unknown, part=part)


def score_file(
    predictor: Predictor,
    path: Path,
    *,
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
    unknown: str = "error",
    part: str | None = "all",
) -> dict[str, Any]:
    """Loss and metrics; for classification also per-class precision/recall/F1 and confusion.

    ``part``: train, validation or test (split again as training split the file, which must be
    the training file), all, or None for the held-out part of the training file and all of any
    other (``parts.choose``). ``unknown``: categories unseen in training (error or ignore; on
    the training file they count as zeros, as in training). Rows training would have left out
    for a missing target are left out, and ``warn`` says so. The result's ``scored`` says which
    rows were scored; ``inputs``, ``targets`` and ``mask`` are the encoded rows scored, and for a
    classifier ``outputs`` the network's outputs for them (``nncli report`` reads them)."""
    predictor.check_input(path)  # before the split reads it
    chosen = parts.choose(predictor, path, part, skip_bad=skip_bad, warn=warn)
    x, y, mask = chosen.x, chosen.y, chosen.mask
    if x is None:
        unknown = "ignore" if chosen.trained_on else unknown
        x, y, mask = predictor.read_labelled(path, skip_bad=skip_bad, warn=warn, unknown=unknown)
    require_finite(x, "the inputs", str(path))
    require_finite(y, "the targets", str(path))
    model = predictor.model
    metrics = evaluate(
        model.net,
        model.loss,
        x,
        y,
        mask=mask,
        target_scale=model.target_scale,
        metrics=spec_metrics(model.spec_yaml),
    )
    rows = feeds.rows(x)
    result: dict[str, Any] = {"rows": rows, "metrics": metrics, "part": chosen.part}
    result.update(total=chosen.total or rows, scored=chosen.line(rows))
    result.update(inputs=x, targets=y, mask=mask)
    labels = model.labels
    if labels is not None and y.ndim == 2:
        p = predictor.outputs(x, mask)
        n = len(labels)
        report = classification_report(
            np.asarray(predicted_classes(y)), np.asarray(predicted_classes(p)), n
        )
        result.update(labels=labels, report=report, outputs=p)
    return result


def as_data(result: dict[str, Any], data: Path) -> dict[str, Any]:
    """An evaluation as plain JSON values: the data, the part scored, its rows and the rows of
    every part of the file (``rows_in_file``), metrics, and for a classifier the
    labels, one per-class record each and the confusion matrix (rows: true, columns: predicted)."""
    out: dict[str, Any] = {
        "data": str(data),
        "part": result["part"],
        "rows": int(result["rows"]),
        "rows_in_file": int(result["total"]),
        "metrics": {k: float(v) for k, v in result["metrics"].items()},
    }
    if "report" in result:
        report, labels = result["report"], [str(label) for label in result["labels"]]
        out["labels"] = labels
        out["per_class"] = [
            {
                "class": label,
                "precision": float(report["precision"][i]),
                "recall": float(report["recall"][i]),
                "f1": float(report["f1"][i]),
                "support": int(report["support"][i]),
            }
            for i, label in enumerate(labels)
        ]
        out["confusion"] = np.asarray(report["confusion"]).astype(int).tolist()
    return out


def write_json(evaluation: dict[str, Any], output: Path) -> None:
    """Write ``evaluation`` as JSON to ``output``, atomically (checked before the work by
    ``apply.check_table_output`` with ``is_evaluation``)."""
    import json

    from nncli.checkpoint.folder import write_text_atomic

    write_text_atomic(output, json.dumps(evaluation, indent=2) + "\n")


def is_evaluation(path: Path) -> bool:
    """Whether ``path`` is JSON an earlier ``evaluate --output`` wrote (an object with its
    ``data``, ``rows`` and ``metrics``), which ``--output`` replaces without ``--force``."""
    import json

    try:
        if path.stat().st_size > MAX_JSON:
            return False
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return (
        isinstance(found, dict)
        and isinstance(found.get("metrics"), dict)
        and all(key in found for key in ("data", "rows"))
    )


def spec_metrics(spec_yaml: str) -> list[str]:
    """The ``metrics`` the checkpoint's spec asked for (none when its spec cannot be read)."""
    from nncli.spec import loads

    try:
        return list(loads(spec_yaml, "the checkpoint's spec").metrics)
    except SpecError:
        return []
