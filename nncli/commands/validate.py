"""``nncli validate``: train without the training (spec, data headers, every check ``train``
makes before its first batch, then one forward and backward pass on two real rows)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from nncli.commands.run_checks import refuse_outputs_on_inputs
from nncli.commands.train import start
from nncli.engine import feeds
from nncli.errors import DivergedError
from nncli.spec.conventions import version_note, version_notes
from nncli.spec.resolve import Resolved, resolve
from nncli.spec.search import ignored
from nncli.training.loop import loss_value


def validate(
    path: Path,
    overrides: list[str] = (),
    device: str | None = None,
    on_resolved: Callable[[Resolved], None] | None = None,
    note: Callable[[str], None] | None = None,
    skip_bad: bool = False,
    warn: Callable[[str], None] | None = None,
) -> list[str]:
    """Train without the training: resolve the spec as ``train`` does (every check it makes
    before its first batch), then one forward and backward pass on two real rows. Problems
    raise; what was checked is returned as lines. ``on_resolved`` gets the resolved spec (the
    data's input shape, the built network) once the pass has run, as train's does;
    ``skip_bad`` leaves out unreadable images and ``warn`` hears the data's warnings, as
    train's do."""
    from nncli import spec as spec_module

    spec = spec_module.load(path, overrides)
    if spec.search is not None and note is not None:
        note(ignored("validate"))
    version_notes(spec, version_note(spec), None, note)  # what its patience means
    refuse_outputs_on_inputs(spec)  # as train does first (a smoke run writes elsewhere)
    ready = resolve(spec, device=device, skip_bad=skip_bad, warn=warn)
    start(spec, ready)  # model.init_from: its checkpoint read and matched, as train does
    net, ds, loss = ready.net, ready.ds, ready.loss
    train = ds.parts["train"]
    n = min(2, len(train))
    x, y, _ = feeds.to_device(net.backend, feeds.take(train.x, slice(n)), train.y[:n], None)
    fused = net.fuse_output(loss.fused_activation)
    value = float(loss_value(net, loss, net.forward(x, training=True), y, None, fused))
    if not math.isfinite(value):
        raise DivergedError(f"one forward pass on {n} rows gave the loss {value}", where=ds.source)
    net.backward(loss.backward())
    if on_resolved is not None:
        on_resolved(ready)
    lines = [
        f"spec {path}: valid",
        ready.device,
        f"data {ds.source}: {len(train)} training rows"
        + (f", {ds.rows('validation')} validation rows" if "validation" in ds.parts else ""),
        f"model: {net.parameter_count():,} parameters, input {ds.input_shape}, "
        f"output {net.output_shape}",
        f"one forward and backward pass on {n} rows: loss {value:.4g}",
    ]
    lines += [line.line(spec.model.init_from) for line in ready.started]
    for row in net.summary():
        lines += [f"warning: {w}" for w in row.get("warnings", [])]
    return lines
