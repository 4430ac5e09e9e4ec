"""``nncli generate``: sample text from a text model, one symbol at a time.

p = softmax(log q / temperature), q the model's distribution of the next symbol given the last
``sequence_length`` symbols (the context it was trained on); the next symbol is drawn from p with
a generator seeded by ``seed``, appended, and the window slides on. Temperatures below 1 sharpen
q towards its most likely symbol, above 1 flatten it; the same seed gives the same text.
Temperature 0 is the limit: always the most likely symbol (greedy decoding), for any seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nncli.checkpoint import model as model_io
from nncli.commands.apply import stored_encoder
from nncli.commands.predictor import Predictor
from nncli.data.dataset import state_text
from nncli.data.text import TextEncoder
from nncli.errors import SpecError

TINY = 1e-30  # log(0) guard: a symbol the model gives no probability stays out of reach


def next_distribution(output: np.ndarray, temperature: float, softmax_output: bool) -> np.ndarray:
    """The last step's output (V,) -> sampling probabilities (V,), float64, at ``temperature``;
    at 0 all of it on the most likely symbol (the first of equals)."""
    output = np.asarray(output, dtype=np.float64)
    if temperature == 0:
        return np.eye(len(output))[int(np.argmax(output))]
    logits = np.log(np.maximum(output, TINY)) if softmax_output else output
    z = logits / temperature
    z -= z.max()
    p = np.exp(z)
    return p / p.sum()


def _draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """Inverse CDF of one uniform draw: the same seed gives the same symbol on every machine."""
    return min(int(np.searchsorted(np.cumsum(p), rng.random() * p.sum())), len(p) - 1)


def text_encoder(model: model_io.Model) -> TextEncoder:
    """The checkpoint's text encoder; SpecError when the checkpoint is another kind of model."""
    kind = state_text(model.encoder_state.get("kind", model.data.get("kind")))
    if kind != "text":
        raise SpecError(
            f"{model.path} is a {kind} model; generate needs a text model (data kind: text)"
        )
    return stored_encoder(model, "text")


def generate(
    checkpoint: Path,
    prompt: str,
    *,
    length: int = 200,
    temperature: float = 1.0,
    seed: int = 0,
    device: str = "cpu",
) -> str:
    """The prompt followed by ``length`` sampled symbols (characters or words), as text."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)) or (
        temperature < 0
    ):
        raise SpecError(
            f"expected a number of 0 or more, got {temperature!r}", field="--temperature"
        )
    if length < 0:
        raise SpecError(f"expected 0 or more symbols, got {length}", field="--length")
    model = model_io.load(checkpoint, device)
    predictor = Predictor(model, text_encoder(model))  # the kind is checked before the encoder
    return sample(predictor, prompt, length=length, temperature=temperature, seed=seed)


def sample(
    predictor: Predictor,
    prompt: str,
    *,
    length: int,
    temperature: float,
    seed: int,
    what: str = "--prompt",
) -> str:
    """``generate`` on a text model already loaded (``nncli serve``'s ``POST /generate``); the
    prompt is named ``what`` in errors."""
    encoder = predictor.encoder
    ids = encoder.ids(prompt, what=what)
    if len(ids) == 0:
        raise SpecError(
            f"expected at least one {encoder.level} to start from, got {prompt!r}", field=what
        )
    softmax_output = predictor.net.output_activation == "softmax"
    rng = np.random.default_rng(seed)
    symbols = list(ids.tolist())
    for _ in range(length):
        context = np.array(symbols[-encoder.sequence_length :])
        output = predictor.outputs(encoder.window_inputs(context[None]))[0, -1]
        p = next_distribution(output, temperature, softmax_output)
        symbols.append(int(np.argmax(p)) if temperature == 0 else _draw(p, rng))
    return encoder.continuation(prompt, np.array(symbols[len(ids) :], dtype=np.int64))
