"""``nncli plot --saliency IMAGE``: the gradient of the predicted class's output with respect to
the pixels of one image (Simonyan et al.'s saliency map), from the network's own backward pass
asked for the input gradient, which training never computes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nncli.checkpoint import model as model_io
from nncli.errors import DataError, SpecError


def saliency_picture(model: model_io.Model, image: Path) -> Any:
    """One image, encoded as ``predict`` encodes it, and the gradient of its predicted class's
    output (a probability, after the last activation) -> ``figures.Saliency``."""
    from nncli.commands import apply
    from nncli.commands.predictor import Predictor
    from nncli.plots import figures
    from nncli.training.guards import require_finite

    predictor = Predictor.of(model)
    encoder = predictor.encoder
    if encoder.kind != "images":
        raise SpecError(
            f"--saliency shows which pixels of an image move the prediction; this model reads "
            f"{apply.READS.get(encoder.kind, encoder.kind)}",
            field="--saliency",
        )
    image = Path(image)
    if image.is_dir():
        raise DataError("--saliency takes one image file, got a folder", where=str(image))
    x, _ = encoder.inputs(predictor.read_file(image))
    require_finite(x, "the inputs", str(image))
    gradient, label, probability = input_gradient(model.net, x[:1], model.labels)
    title = f"{image.name}: predicted {label} ({probability:.3g})"
    return figures.saliency(title, x[0], gradient)


def input_gradient(
    net: Any, x: np.ndarray, labels: list[str] | None
) -> tuple[np.ndarray, str, float]:
    """d(output of the predicted class)/dx for one row ``x`` (1, *input_shape) -> (the gradient
    (*input_shape) on the host, the class's label, its output). A single sigmoid output
    predicts the second class above 0.5, the first (output 1 - p, gradient negated) below."""
    backend = net.backend
    net.fuse_output(None)  # the last activation's own backward: d probability, not d logit
    y = net.forward(backend.xp.asarray(x, dtype=backend.dtype), training=False)
    scores = backend.to_host(y)[0].reshape(-1)
    dy = np.zeros((1, scores.size), dtype=backend.dtype)
    if scores.size == 1:
        k, sign = int(scores[0] > 0.5), 1.0 if scores[0] > 0.5 else -1.0
        dy[0, 0], score = sign, float(scores[0] if k else 1.0 - scores[0])
    else:
        k = int(np.argmax(scores))
        dy[0, k], score = 1.0, float(scores[k])
    dx = net.backward(backend.xp.asarray(dy.reshape(y.shape)), input_grad=True)
    label = str(labels[k]) if labels is not None and k < len(labels) else f"output {k}"
    return backend.to_host(dx)[0], label, score
