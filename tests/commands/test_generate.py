"""``nncli generate``: seeded sampling from text models, its errors, and the Shakespeare example
reaching well below the unigram entropy of its text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, invoke, one_error_line

from nncli import data
from nncli.checkpoint import model as model_io
from nncli.commands.generate import next_distribution, text_encoder
from nncli.data.text import one_hot
from nncli.training.loop import predict

TEXT_SPEC = """\
seed: 0
data: {kind: text, path: corpus.txt, level: LEVEL, sequence_length: 8, validation_split: 0.1}
model:
  layers:
    - {type: lstm, units: 12, return_sequences: true}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.02}
training: {epochs: 2, batch_size: 8}
output: out/model.h5
"""
CORPUS = "the cat sat on the mat.\nthe dog sat on the log.\n" * 12


def train_text(folder: Path, level: str = "char") -> Path:
    (folder / "corpus.txt").write_text(CORPUS)
    (folder / "spec.yaml").write_text(TEXT_SPEC.replace("LEVEL", level))
    result = invoke("train", folder / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return folder / "out" / "model.h5"


@pytest.fixture(scope="module")
def char_model(tmp_path_factory) -> Path:
    return train_text(tmp_path_factory.mktemp("char"))


def test_the_same_seed_gives_the_same_text(char_model: Path):
    args = ("generate", char_model, "--prompt", "the ", "--length", "40", "--temperature", "0.8")
    first = invoke(*args, "--seed", "1")
    assert first.exit_code == 0, first.stderr
    text = first.stdout.rstrip("\n")
    assert text.startswith("the ") and len(text) == len("the ") + 40
    assert set(text) <= set(CORPUS)
    assert invoke(*args, "--seed", "1").stdout == first.stdout
    others = {invoke(*args, "--seed", str(seed)).stdout for seed in (2, 3, 4)}
    assert others - {first.stdout}  # another seed, another sample


def test_prompt_outside_the_vocabulary_is_a_data_error(char_model: Path):
    result = invoke("generate", char_model, "--prompt", "the Zebra")
    one_error_line(result, 3, "--prompt", "'Z'", "not in the model's vocabulary")


def test_bad_options_and_other_models(char_model: Path, tmp_path: Path):
    result = invoke("generate", char_model, "--prompt", "t", "--temperature", "-0.5")
    assert one_error_line(result, 2).endswith(
        "--temperature: expected a number of 0 or more, got -0.5"
    )
    result = invoke("generate", char_model, "--prompt", "t", "--length", "-1")
    one_error_line(result, 2, "--length: expected a non-negative integer, got -1")
    one_error_line(invoke("generate", char_model, "--prompt", ""), 2, "--prompt")
    (tmp_path / "xor.csv").write_text("a,b,label\n" + "0,0,no\n0,1,yes\n1,0,yes\n1,1,no\n" * 4)
    (tmp_path / "xor.yaml").write_text(
        "data: {kind: csv, path: xor.csv, target: label, validation_split: 0.0}\n"
        "model: {layers: [{type: dense, units: auto, activation: softmax}]}\n"
        "loss: cross_entropy\ntraining: {epochs: 1, batch_size: 4}\noutput: out/model.h5\n"
    )
    assert invoke("train", tmp_path / "xor.yaml", "--quiet").exit_code == 0
    result = invoke("generate", tmp_path / "out" / "model.h5", "--prompt", "a")
    one_error_line(result, 2, "is a csv model", "generate needs a text model")


def test_predict_and_evaluate_on_text(char_model: Path, tmp_path: Path):
    (tmp_path / "more.txt").write_text("the dog sat on the mat.\n" * 4)
    result = invoke("predict", char_model, tmp_path / "more.txt")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "prediction" and len(result.stdout.splitlines()) == 2
    result = invoke("evaluate", char_model, tmp_path / "more.txt")
    assert result.exit_code == 0, result.stderr
    assert "(11 rows)" in result.stdout  # 96 characters: windows of 8 (+ 1) at 0, 8, .., 80


def test_word_level_generation(tmp_path: Path):
    model = train_text(tmp_path, "word")
    result = invoke("generate", model, "--prompt", "the dog", "--length", "6", "--seed", "3")
    assert result.exit_code == 0, result.stderr
    text = result.stdout.rstrip("\n")
    assert text.startswith("the dog") and "  " not in text
    words = data.text.tokens(text, "word").tolist()
    assert len(words) == 2 + 6
    one_error_line(invoke("generate", model, "--prompt", "the cow"), 3, "the word 'cow'")


def test_temperature_zero_is_greedy_for_any_seed(char_model: Path):
    model = model_io.load(char_model)
    encoder = text_encoder(model)
    symbols = encoder.ids("the ", what="--prompt").tolist()
    for _ in range(20):  # the most likely next symbol, step by step
        context = np.array(symbols[-encoder.sequence_length :])
        symbols.append(
            int(np.argmax(predict(model.net, one_hot(context[None], encoder.size))[0, -1]))
        )
    greedy = encoder.continuation("the ", np.array(symbols[4:]))
    for seed in ("0", "1", "7"):
        args = ("generate", char_model, "--prompt", "the ", "--length", "20", "--temperature", "0")
        result = invoke(*args, "--seed", seed)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.rstrip("\n") == greedy
    np.testing.assert_array_equal(next_distribution(np.array([0.2, 0.5, 0.5]), 0, True), [0, 1, 0])


def test_temperature_scales_the_log_probabilities():
    q = np.array([0.7, 0.2, 0.1])
    np.testing.assert_allclose(next_distribution(q, 1.0, True), q)
    sharp = next_distribution(q, 0.1, True)
    assert sharp[0] > 0.999
    flat = next_distribution(q, 100.0, True)
    np.testing.assert_allclose(flat, 1 / 3, atol=0.01)
    np.testing.assert_allclose(next_distribution(np.log(q), 0.5, False), q**2 / (q**2).sum())


@pytest.mark.slow
def test_shakespeare_below_the_unigram_entropy(tmp_path: Path):
    """The CI-sized spec as it is, against the entropy of single characters (nats): a model
    that learnt nothing but the characters' frequencies would score the entropy itself."""
    spec = ROOT / "models" / "shakespeare-char.yaml"
    out = tmp_path / "model.h5"
    result = invoke("train", spec, "--quiet", "--output", out)
    assert result.exit_code == 0, result.stderr
    from nncli import spec as spec_module

    loaded = spec_module.load(spec)
    ds = data.load(loaded.data, loaded.base_dir, loaded.seed, loaded.loss)
    counts = np.bincount(ds.parts["train"].x.symbols().ravel(), minlength=ds.encoder.size)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log(p)).sum())  # nats per character
    history = (out.parent / "history.csv").read_text().splitlines()
    header, last = history[0].split(","), history[-1].split(",")
    val_loss = float(last[header.index("val_loss")])
    sample = invoke("generate", out, "--prompt", "ROMEO:", "--length", "200", "--seed", "1")
    print(f"\nunigram entropy {entropy:.3f} nats, validation loss {val_loss:.3f} nats per char")
    print(sample.stdout)
    assert sample.exit_code == 0
    assert val_loss < 0.8 * entropy


def test_a_tampered_vocabulary_is_a_checkpoint_error(char_model: Path, tmp_path: Path):
    """A vocabulary out of order would map symbols to the wrong outputs: refused with exit 4
    (it was an ``assert``: exit 1 and a traceback), naming the checkpoint."""
    from nncli import checkpoint
    from nncli.commands.apply import stored_encoder
    from nncli.data.dataset import state_texts
    from nncli.errors import CheckpointError

    ckpt = checkpoint.load(char_model)
    vocabulary = state_texts(ckpt.data["encoder"]["vocabulary"])
    ckpt.data["encoder"]["vocabulary"] = vocabulary[::-1]
    tampered = tmp_path / "tampered.h5"
    checkpoint.save(tampered, ckpt)
    with pytest.raises(CheckpointError, match="not sorted and unique") as info:
        stored_encoder(model_io.load(tampered))
    assert info.value.exit_code == 4
    (tmp_path / "prompt.txt").write_text("the cat")
    result = invoke("predict", tampered, tmp_path / "prompt.txt")
    one_error_line(result, 4, str(tampered), "vocabulary is not sorted and unique")
    result = invoke("generate", tampered, "--prompt", "the ", "--length", "5")
    one_error_line(result, 4, "vocabulary is not sorted and unique")


EMBEDDING_SPEC = TEXT_SPEC.replace(
    "    - {type: lstm",
    "    - {type: embedding, input_dim: auto, output_dim: 5}\n    - {type: lstm",
)


def test_an_embedding_first_feeds_ids_and_takes_the_vocabulary_size(tmp_path: Path):
    (tmp_path / "corpus.txt").write_text(CORPUS)
    (tmp_path / "spec.yaml").write_text(EMBEDDING_SPEC.replace("LEVEL", "word"))
    result = invoke("train", tmp_path / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    model = model_io.load(tmp_path / "out" / "model.h5")
    encoder = text_encoder(model)
    assert encoder.input_form == "ids"
    assert (
        model.net.layers[0].input_dim == encoder.size == len(set(data.text.tokens(CORPUS, "word")))
    )
    assert model.net.input_shape == (8,)  # ids (N, T), not one-hot (N, T, V)
    x, _ = encoder.inputs(data.text.TextFile("the cat sat on", "prompt"))
    np.testing.assert_array_equal(x, [encoder.ids("the cat sat on")])
    generated = invoke(
        "generate", tmp_path / "out" / "model.h5", "--prompt", "the", "--length", "5"
    )
    assert generated.exit_code == 0, generated.stderr
    assert len(data.text.tokens(generated.stdout[:-1], "word")) == 1 + 5  # print adds a \n
    (tmp_path / "new.txt").write_text(CORPUS[:60])
    evaluated = invoke("evaluate", tmp_path / "out" / "model.h5", tmp_path / "new.txt")
    assert evaluated.exit_code == 0, evaluated.stderr
    (tmp_path / "odd.txt").write_text("the cat zyzzyva sat")  # a word the model never saw
    refused = invoke("predict", tmp_path / "out" / "model.h5", tmp_path / "odd.txt")
    one_error_line(refused, 3, "'zyzzyva'", "not in the model's vocabulary")
    ignored = invoke(
        "predict", tmp_path / "out" / "model.h5", tmp_path / "odd.txt", "--unknown", "ignore"
    )
    assert ignored.exit_code == 0, ignored.stderr  # the unknown word: a zero vector
    assert ignored.stdout.splitlines()[0].startswith("prediction")


def test_input_dim_auto_without_ids_is_a_spec_error(tmp_path: Path):
    (tmp_path / "corpus.txt").write_text(CORPUS)
    # an embedding after another layer gets no ids: auto has no vocabulary to take
    (tmp_path / "late.yaml").write_text(
        TEXT_SPEC.replace("LEVEL", "char").replace(
            "    - {type: dense",
            "    - {type: embedding, input_dim: auto, output_dim: 2}\n    - {type: dense",
        )
    )
    one_error_line(invoke("train", tmp_path / "late.yaml"), 2, "input_dim: auto needs")


def test_old_text_checkpoints_read_one_hot():
    state = data.text.TextEncoder(list("ab"), "char", 3, 3).to_state()
    assert "input_form" not in state  # one-hot states read as before: resumes see no change
    encoder = data.text.TextEncoder.from_state(state)
    assert encoder.input_form == "onehot"
    assert encoder.window_inputs(np.array([[0, 1]])).shape == (1, 2, 2)


def test_a_text_model_that_is_a_graph_generates_the_same_text_for_a_seed(tmp_path: Path):
    """Two branches over the ids (a causal transformer block, and an LSTM) joined by add, then a
    residual block: generate feeds it growing windows as it feeds a stack."""
    (tmp_path / "corpus.txt").write_text(CORPUS)
    layers = (
        "    - {type: embedding, input_dim: auto, output_dim: 8, name: ids}\n"
        "    - {type: positional, max_length: 8}\n"
        "    - {type: transformer, heads: 2, feedforward: 8, causal: true, name: attend}\n"
        "    - {type: lstm, units: 8, return_sequences: true, inputs: ids, name: recur}\n"
        "    - {type: add, inputs: [attend, recur]}\n"
        "    - {type: residual, layers: [{type: dense, units: 8, activation: relu}]}\n"
    )
    spec = TEXT_SPEC.replace("LEVEL", "char").replace(
        "    - {type: lstm, units: 12, return_sequences: true}\n", layers
    )
    (tmp_path / "spec.yaml").write_text(spec)
    result = invoke("train", tmp_path / "spec.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    ckpt = tmp_path / "out" / "model.h5"
    texts = [invoke("generate", ckpt, "--prompt", "the ", "--length", 20, "--seed", 3)
             for _ in range(2)]  # fmt: skip
    assert texts[0].exit_code == 0, texts[0].stderr
    assert texts[0].stdout == texts[1].stdout and texts[0].stdout.startswith("the ")
    assert texts[0].stdout.endswith("\n") and len(texts[0].stdout) == 4 + 20 + 1
