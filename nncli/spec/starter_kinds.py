"""One starter template per data kind for ``nncli init``: each writes its ``data:`` and ``model:``
sections, a reason beside every choice, and says how it trains (``Training``); ``starter.py``
adds the head, the loss, the optimizer and the training section, and keys them in ``STARTERS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nncli.data.profile import Profile
from nncli.data.split import part_size
from nncli.spec.starter_inputs import input_lines, inputs_model
from nncli.spec.yaml_text import listed, names, pair, scalar

HIDDEN_UNITS = 64
RELU = "activation: relu"


@dataclass
class Training:
    """How a starter trains: what the shared tail of the spec writes."""

    learning_rate: float
    epochs: int
    batch_size: int
    patience: int  # Keras's meaning (spec version 2): the epochs without improvement that stop it
    why_epochs: str
    clip_norm: float | None = None


def _batch(examples: int, usual: int) -> int:
    """``usual``, or fewer when the training part is smaller."""
    return max(1, min(usual, examples))


# -- the data sections ---------------------------------------------------------------------------


def _target_lines(found: Profile) -> list[str]:
    """``target:`` with where it came from, and the task it makes."""
    target = found.target
    why = (
        "given with --target"
        if found.target_given
        else "the last column; nncli init DATA --target COL picks another"
    )
    if found.task == "classification":
        kind = "text" if not target.numbers else f"{target.distinct} whole numbers"
        task = (
            f"# classification: '{target.name}' holds {kind}, so each value is a class: "
            f"{listed(found.classes)}"
        )
    else:
        task = f"# regression: '{target.name}' holds numbers ({target.distinct} distinct values)"
    return [pair("target", scalar(target.name), why, 1), f"  {task}"]


def _column_lines(found: Profile) -> list[str]:
    """exclude (id-like), categorical (text) and the numbers, each with its reason."""
    lines = []
    ids = found.left_out
    if ids:
        why = "left out: about one value a row, nothing a new row could share"
        lines.append(pair("exclude", names(ids), why, 1))
        lines += [
            f"  #   {c.name}: {c.distinct} distinct values in {found.rows - c.missing} rows "
            f"({(found.rows - c.missing) / c.distinct:.1f} a value): too few rows to learn from"
            for c in ids
        ]
    text = [c for c in found.features if c.role == "categorical"]
    if text:
        lines.append(pair("categorical", names(text), "text: one-hot, one input per value", 1))
    numbers = [c.name for c in found.features if c.role == "numeric"]
    if numbers:
        lines.append(f"  # numbers ({len(numbers)}): {listed(numbers)}")
    few = [c for c in found.features if c.role == "numeric" and c.integer and c.distinct <= 10]
    if few and len(few) < len(numbers):
        lines.append(
            f"  # {listed([c.name for c in few])}: few whole numbers, kept as numbers; list "
            + (
                "it in categorical if it holds codes"
                if len(few) == 1
                else "them in categorical if they hold codes"
            )
        )
    return lines


def _missing_lines(found: Profile) -> list[str]:
    """``na_values`` (placeholders found among numbers) and ``missing:`` as the data needs it,
    saying what nncli does with empty cells."""
    if not found.missing:
        return [pair("missing", "error", "no empty cells: stop at any in new data", 1)]
    na = []
    if found.na_values:
        why = "these cells stand for missing numbers, so they are empty cells too"
        na = [pair("na_values", names(found.na_values), why, 1)]
    columns = [c for c in [*found.features, found.target] if c.missing]
    where = listed([f"{c.name} {c.missing}" for c in columns])
    why = (
        f"{found.missing} empty cells ({where}): a number gets the training rows' mean, text "
        "the most frequent value; a row with no target is left out"
    )
    return [*na, pair("missing", "fill", why, 1)]


def csv_starter(found: Profile, path: str) -> tuple[list[str], Training]:
    data = [
        *_data_head("csv", "a table: one row per example", path),
        *_delimiter(found),
        *_target_lines(found),
        *_column_lines(found),
        pair("normalize", "standard", "numbers to mean 0, std 1 (training rows): one scale", 1),
        *_missing_lines(found),
        *_split_lines(found),
    ]
    inputs = len(found.features)
    model = [
        "model:",
        pair("", "layers:", "one hidden layer: the usual first try for a table", 1),
        _layer(
            f"{{type: dense, units: {HIDDEN_UNITS}, activation: relu}}",
            f"{HIDDEN_UNITS} units: room to combine {inputs} feature columns; relu: quick to train",
        ),
        _output_layer(found),
    ]
    if found.free_columns:  # free text or image paths: an input each (starter_inputs.py)
        data, model = data + input_lines(found), inputs_model(found, _output_layer(found))
    rows = found.split_counts.get("train", found.rows - found.target.missing)
    held = 0 if found.split_counts.get("validation") else part_size(0.2, rows)
    training = Training(0.003, 100, _batch(rows - held, 32), 11, "rows")
    return data + ["", *model], training


def _split_lines(found: Profile) -> list[str]:
    """``validation_split``, or the file's own ``split_column`` (and a validation part drawn
    from the rows it marks train when it marks none validation)."""
    validation = pair("validation_split", "0.2", "20% of rows held out to check on unseen rows", 1)
    if found.split_column is None:
        return [validation]
    parts = ", ".join(f"{part} {n}" for part, n in found.split_counts.items() if n)
    why = f"the file's own split, rows per part: {parts}"
    lines = [pair("split_column", scalar(found.split_column), why, 1)]
    if not found.split_counts.get("validation"):
        why = "20% of the rows marked train held out to check on unseen rows"
        lines.append(pair("validation_split", "0.2", why, 1))
    return lines


def _data_head(kind: str, why: str, path: str) -> list[str]:
    """``data:``, its ``kind`` and why, and its ``path``."""
    return [
        "data:",
        pair("kind", kind, why, 1),
        pair("path", scalar(path), "relative to this spec's folder", 1),
    ]


def _delimiter(found: Profile) -> list[str]:
    if found.delimiter == ",":
        return []
    written = "\\t" if found.delimiter == "\t" else found.delimiter
    return [pair("delimiter", f'"{written}"', "the character between the file's fields", 1)]


def _output_layer(found: Profile) -> str:
    """The last layer: one unit per class with softmax, or one per target with no activation."""
    if found.task == "classification":
        layer, why = (
            "{type: dense, units: auto, activation: softmax}",
            f"auto: one unit per class ({len(found.classes)}); softmax: probabilities",
        )
    else:
        layer, why = "{type: dense, units: auto}", "auto: one unit per target; no activation"
    return _layer(layer, why)


def _layer(text: str, why: str) -> str:
    """One entry of ``model.layers``."""
    return pair("", f"- {text}", why, 2)


def images_starter(found: Profile, path: str) -> tuple[list[str], Training]:
    height, width = found.image_size
    size_why = (
        "the size of the images looked at"
        if found.sizes == 1 and max(height, width) < 64
        else "every image resized to it, small for a quick first run"
    )
    color_why = "no colour in them: 1 channel" if found.color == "grayscale" else "3 channels"
    data = [
        *_data_head("images", "one sub-folder per class; its name is the label", path),
        f"  # {found.rows:,} images, {len(found.classes)} classes: {listed(found.classes)}",
        pair("image_size", f"[{height}, {width}]", f"[H, W]: {size_why}", 1),
        pair("color", found.color, color_why, 1),
        pair("normalize", "standard", "pixels to mean 0, std 1 per channel (training images)", 1),
        pair("validation_split", "0.2", "20% of images held out, per class", 1),
    ]
    layers = _conv_blocks(height, width)
    model = [
        "model:",
        pair("", "layers:", "a small CNN: convolution and pooling blocks, then dense", 1),
        *layers,
        _layer("flatten", "the feature maps as one vector"),
        _layer(f"{{type: dense, units: {HIDDEN_UNITS}, activation: relu}}", "combines them"),
        _output_layer(found),
    ]
    rows = found.rows - part_size(0.2, found.rows)
    return data + ["", *model], Training(0.003, 30, _batch(rows, 32), 6, "images")


def _conv_blocks(height: int, width: int) -> list[str]:
    """Up to three conv + pool blocks, each halving the sides, down to 2 or 3 pixels; a pool
    over an odd side pads it (``padding: same``: the last row or column is kept, not dropped,
    so the starter validates without a warning)."""
    layers, filters = [], 16
    while min(height, width) >= 4 and len(layers) < 6:
        conv = f"{{type: conv2d, filters: {filters}, kernel_size: 3, padding: same, {RELU}}}"
        why = "more filters, on a wider view" if layers else "3x3 filters find local patterns"
        odd = [name for name, side in (("height", height), ("width", width)) if side % 2]
        pool, pool_why = "{type: maxpool2d, pool_size: 2}", "halves height and width"
        if odd:
            pool = "{type: maxpool2d, pool_size: 2, padding: same}"
            pool_why = f"halves height and width; same: the odd {' and '.join(odd)} kept whole"
        layers += [_layer(conv, why), _layer(pool, pool_why)]
        height, width, filters = -(-height // 2), -(-width // 2), filters * 2
    return layers


def sequences_starter(found: Profile, path: str) -> tuple[list[str], Training]:
    per = found.target_per
    per_why = (
        "the same on every step of a sequence: one answer per sequence"
        if per == "sequence"
        else "changes along a sequence: one answer per step"
    )
    data = [
        *_data_head("sequences", "one row per step; rows with one id form a sequence", path),
        pair(
            "id",
            scalar(found.id_column),
            f"{found.sequences} sequences of up to {found.longest} steps",
            1,
        ),
        pair("order", scalar(found.order_column), "the steps' order within a sequence", 1),
        *_target_lines(found),
        pair("target_per", per, per_why, 1),
        *_column_lines(found),
        pair("normalize", "standard", "numbers to mean 0, std 1 (training rows): one scale", 1),
        *_missing_lines(found),
        pair("validation_split", "0.2", "20% of the sequences held out", 1),
    ]
    steps = ", return_sequences: true" if per == "step" else ""
    gru = f"{{type: gru, units: 32{steps}}}"
    model = [
        "model:",
        pair("", "layers:", "shorter sequences are padded; a mask skips the padding", 1),
        _layer(gru, "reads the steps in order, keeping a summary"),
        _output_layer(found),
    ]
    count = found.sequences - part_size(0.2, found.sequences)
    return data + ["", *model], Training(0.01, 50, _batch(count, 16), 9, "sequences")


def timeseries_starter(found: Profile, path: str) -> tuple[list[str], Training]:
    target = found.target.name
    inputs = [c.name for c in found.features] + [target]
    window = max(4, min(64, round(1.2 * found.cycle) if found.cycle else 12, found.rows // 5))
    why = (
        f"steps seen: {target} repeats about every {found.cycle}, a bit more than one cycle"
        if found.cycle
        else "steps seen per forecast"
    )
    data = [
        *_data_head("timeseries", f"one row per step, in time order ({found.time_column})", path),
        pair(
            "columns", names(inputs), f"the inputs at each step ({found.time_column} left out)", 1
        ),
        pair(
            "target",
            scalar(target),
            "given with --target" if found.target_given else "the last column: forecast it",
            1,
        ),
        pair("window", str(window), why, 1),
        pair("horizon", "1", "forecast the step right after the window", 1),
        pair("normalize", "standard", "inputs and target to mean 0, std 1 (training rows)", 1),
        pair("validation_split", "0.2", "the last 20% of the steps: checked on the future", 1),
    ]
    model = [
        "model:",
        "  layers:",
        _layer("{type: lstm, units: 32}", "reads the window step by step"),
        _output_layer(found),
    ]
    windows = found.rows - part_size(0.2, found.rows) - window
    return data + ["", *model], Training(0.01, 150, _batch(windows, 16), 21, "windows")


MAX_CHARS = 200_000  # a text longer than this starts on its beginning, for a run of minutes


def text_starter(found: Profile, path: str) -> tuple[list[str], Training]:
    chars = min(found.rows, MAX_CHARS)
    length = max(4, min(64, chars // 100))
    data = [
        *_data_head("text", "a language model: read characters, predict the next", path),
        pair(
            "level",
            "char",
            f"{found.symbols} distinct characters in the file: a small vocabulary",
            1,
        ),
        pair(
            "sequence_length", str(length), f"windows of {length}; each next character a target", 1
        ),
        pair("validation_split", "0.1", "the last 10% of the text", 1),
    ]
    if found.rows > MAX_CHARS:
        data.append(
            pair("max_chars", str(MAX_CHARS), f"of {found.rows:,}: minutes; remove for all", 1)
        )
    model = [
        "model:",
        "  layers:",
        _layer("{type: lstm, units: 64, return_sequences: true}", "an output at every step"),
        _layer("{type: dense, units: auto, activation: softmax}", "a probability per character"),
    ]
    windows = int(chars * 0.9) // length
    training = Training(0.01, 10, _batch(windows, 32), 3, "windows", clip_norm=5.0)
    return data + ["", *model], training


def arrays_starter(found: Profile, path: str) -> tuple[list[str], Training]:
    target = found.target.name if found.target else "y"
    data = [
        *_data_head("arrays", "x and y arrays of an HDF5 or .npz file, used as stored", path),
        *([pair("y", scalar(target), "the targets' array", 1)] if target != "y" else []),
        pair("validation_split", "0.2", "20% of rows held out to check on unseen rows", 1),
    ]
    why = "flatten each row, one hidden layer: a first try at any shape"
    hidden = [("flatten", "one row of x as a vector")]
    hidden.append((f"{{type: dense, units: {HIDDEN_UNITS}, {RELU}}}", "relu: quick to train"))
    model = ["model:", pair("", "layers:", why, 1), *(_layer(*layer) for layer in hidden)]
    model.append(_output_layer(found))
    held = part_size(0.2, found.rows)
    return data + ["", *model], Training(0.003, 50, _batch(found.rows - held, 32), 10, "rows")
