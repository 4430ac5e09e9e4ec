"""A starter spec as commented YAML text, from what ``nncli init`` found in the data.

A template, not a dump: every choice carries a short comment saying why, for someone writing
their first spec. ``STARTERS`` maps each data kind (a ``data.KINDS`` key) to the function that
writes its ``data:`` and ``model:`` sections and says how it trains; the head, the loss, the
optimizer and the training section are shared. Names are written plain when the spec's own
reader gives them back unchanged, else quoted (``yaml_text.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from nncli.data.profile import Profile
from nncli.spec.fields import VERSION
from nncli.spec.kinds import SPEC_KINDS
from nncli.spec.starter_kinds import Training
from nncli.spec.yaml_text import note, pair, scalar


def spec_text(
    found: Profile,
    data_path: str,
    name: str,
    command: str,
    shape: tuple[int, ...] | None = None,
    parameters: int | None = None,
) -> str:
    """The starter spec for ``found`` (``data_path`` as the spec should write it, relative to
    the spec's folder; ``name`` the run's; ``command`` the line that wrote it); with the
    ``shape`` of one example and the network's ``parameters`` (once a check has built it), a
    comment under ``model:`` says them."""
    body, training = STARTERS[found.kind](found, data_path)
    if shape is not None:
        at = body.index("model:") + 1
        body[at:at] = [_shape_line(found, shape, parameters or 0)]
    lines = [
        f"# A starter spec for {found.path.name}, written by `{command}`:",
        f"# {summary(found)}.",
        "# Each value is a first guess with its reason beside it. Train it as it is, then change",
        "# one thing at a time and compare the validation scores.",
        f"version: {VERSION}",
        pair("name", scalar(name), f"the run folder: runs/{name}/"),
        pair("seed", "0", "the split, first weights and shuffling all come from it"),
        "",
        *body,
        "",
        *_loss_and_training(found, training),
    ]
    return "\n".join(lines) + "\n"


def summary(found: Profile) -> str:
    """One line on what the data holds and the task, e.g. for the spec's head and the CLI."""
    what = {
        "csv": f"a table of {found.rows:,} rows",
        "sequences": f"{found.sequences:,} sequences ({found.rows:,} rows)",
        "timeseries": f"a time series of {found.rows:,} steps",
        "images": f"{found.rows:,} images",
        "text": f"a text of {found.rows:,} characters",
        "arrays": f"{found.rows:,} rows of arrays",
    }[found.kind]
    if found.kind == "text":
        return f"{what}; predict each next character ({found.symbols} distinct)"
    if found.task == "classification":
        if found.kind == "images":
            return f"{what}; classify them into {len(found.classes)} classes (the sub-folders)"
        return f"{what}; classify '{found.target.name}' into {len(found.classes)} classes"
    return f"{what}; predict the number '{found.target.name}' (regression)"


SHAPES = {name: kind.shape for name, kind in SPEC_KINDS.items()}  # one example's input shape


def _shape_line(found: Profile, shape: tuple[int, ...], parameters: int) -> str:
    """``# input [13]: ...; 1,091 parameters to learn`` under ``model:``."""
    if isinstance(shape, dict):  # several inputs (data.inputs)
        each = ", ".join(f"{name} {list(dims)}" for name, dims in shape.items())
        return note(f"inputs {each}; {parameters:,} parameters to learn", 1)
    what = SHAPES[found.kind]
    if found.kind == "csv":
        what = f"{shape[0]} {what}"
    return note(f"input {list(shape)}: {what}; {parameters:,} parameters to learn", 1)


STARTERS: dict[str, Callable[[Profile, str], tuple[list[str], Training]]] = {
    name: kind.starter for name, kind in SPEC_KINDS.items()
}


def _loss_and_training(found: Profile, training: Training) -> list[str]:
    if found.task == "classification":
        loss = pair("loss", "cross_entropy", "classification: -log(probability of the true class)")
    else:
        loss = pair("loss", "mse", "regression: the mean squared error")
    clip = f", clip_norm: {training.clip_norm}" if training.clip_norm else ""
    optimizer = f"{{type: adam, learning_rate: {training.learning_rate}{clip}}}"
    why = f"adam adapts each weight's step size; {training.learning_rate}: a safe start" + (
        "; clip_norm caps a recurrent net's rare huge gradients" if clip else ""
    )
    stop = f"{{monitor: val_loss, patience: {training.patience}}}"
    return [
        loss,
        pair("optimizer", optimizer, why),
        "",
        "training:",
        pair("epochs", str(training.epochs), "at most; early stopping usually ends sooner", 1),
        pair(
            "batch_size",
            str(training.batch_size),
            f"{training.why_epochs} per weight update: many small steps an epoch",
            1,
        ),
        pair(
            "early_stopping",
            stop,
            f"stop after {training.patience} epochs without a lower validation loss, and keep "
            "the best epoch's weights (restore_best: true)",
            1,
        ),
    ]
