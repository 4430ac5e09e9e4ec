"""Fine-tuning measured: a network fine-tuned from a trained checkpoint (``model.init_from``)
against the same network trained from scratch on the same few rows, over 3 seeds, on digits,
for an MLP (dense 64) and a small CNN (two 3x3 conv2d, a max-pool) under the same head.

- ``shifted``: the network learns all ten digits on a training split (1,200 rows); then 10 images a
  class of the other rows, shifted right by two pixels, are all it gets; both are scored on the
  remaining rows, shifted the same way. Transfer should help: the same classes, a changed input.
- ``body frozen``: fine-tuned with every layer but the head ``trainable: false``.
- ``new-classes``: the network learns digits 0-4 on the training split; then 12 images a class of
  5-9 (a new head, ``name: head59``, drawn fresh; the body copied), scored on the other 5-9 rows.
  Transfer may not help: features for 0-4 need not separate 5-9.

Pixels are divided by 16 (``normalize: none``), so the encoding is the same for both runs.
Both phases use Adam at 0.001 in batches of 16: 30 epochs on the training split, 60 on the few
rows (no early stopping, no validation split). Usage: ``python benchmarks/finetune.py
[--seeds 3] [--models mlp cnn] [--json out.json]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nncli import spec as spec_module  # noqa: E402
from nncli.commands.evaluate import evaluate_file  # noqa: E402
from nncli.commands.train import train  # noqa: E402

TRAIN_ROWS = 1200
BODIES = {  # the layers before the head
    "mlp": "    - {type: dense, units: 64, activation: relu}",
    "cnn": "    - {type: reshape, shape: [1, 8, 8]}\n"
           "    - {type: conv2d, filters: 8, kernel_size: 3, padding: same, activation: relu}\n"
           "    - {type: maxpool2d, pool_size: 2}\n"
           "    - {type: conv2d, filters: 16, kernel_size: 3, padding: same, activation: relu}\n"
           "    - flatten",
}  # fmt: skip
SPEC = """\
seed: {seed}
data: {{kind: csv, path: {data}, target: label, normalize: none, validation_split: 0.0}}
model:
  {init}layers:
{body}
    - {{type: dense, units: auto, activation: softmax{head}}}
loss: cross_entropy
optimizer: {{type: adam, learning_rate: 0.001}}
training: {{epochs: {epochs}, batch_size: 16}}
output: {output}
"""


def digits() -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(ROOT / "datasets" / "digits.csv", delimiter=",", skiprows=1)
    return table[:, :64] / 16.0, table[:, 64].astype(int)


def shifted(x: np.ndarray, pixels: int = 2) -> np.ndarray:
    """Each 8x8 image moved right by ``pixels`` columns, zeros coming in."""
    images = x.reshape(-1, 8, 8)
    out = np.zeros_like(images)
    out[:, :, pixels:] = images[:, :, :-pixels]
    return out.reshape(-1, 64)


def write(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    header = ",".join([*(f"pixel_{i}" for i in range(64)), "label"])
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=header, comments="", fmt="%.6g")
    return path


def run(folder: Path, name: str, data: Path, seed: int, epochs: int, body: str,
        init: Path | None = None, head: str = "", frozen: bool = False) -> Path:  # fmt: skip
    layers = BODIES[body]
    if frozen:  # every layer of the body keeps the checkpoint's weights
        layers = "\n".join(
            line.replace("}", ", trainable: false}") if "{" in line else line
            for line in layers.splitlines()
        )
    text = SPEC.format(
        seed=seed, data=data, epochs=epochs, output=folder / f"{name}.h5", body=layers,
        init=f"init_from: {init}\n  " if init else "", head=head,
    )  # fmt: skip
    (folder / f"{name}.yaml").write_text(text)
    return train(spec_module.load(folder / f"{name}.yaml"), force=True).output


def few(y: np.ndarray, classes: list[int], per_class: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                           for c in classes])  # fmt: skip


def setting(name: str, body: str, seed: int, folder: Path) -> dict[str, float | None]:
    x, y = digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    train_rows, rest = order[:TRAIN_ROWS], order[TRAIN_ROWS:]
    if name == "shifted":
        first, then, per_class, head = list(range(10)), list(range(10)), 10, ""
        transform = shifted
    else:
        first, then, per_class, head = list(range(5)), list(range(5, 10)), 12, ", name: head59"
        transform = lambda a: a  # noqa: E731
    keep = train_rows[np.isin(y[train_rows], first)]
    source = run(folder, "source", write(folder / "source.csv", x[keep], y[keep]), seed, 30, body)
    pool = rest[np.isin(y[rest], then)]
    chosen = few(y[pool], then, per_class, rng)
    small, test = pool[chosen], np.delete(pool, chosen)
    data = write(folder / "few.csv", transform(x[small]), y[small])
    test_csv = write(folder / "test.csv", transform(x[test]), y[test])
    scores = {}
    ways = (
        ("fine-tuned", source, False),
        ("body frozen", source, True),
        ("from scratch", None, False),
    )
    for how, init, frozen in ways:
        model = run(folder, how.replace(" ", "-"), data, seed, 60, body, init, head, frozen)
        scores[how] = evaluate_file(model, test_csv)["metrics"]["accuracy"]
    alone = evaluate_file(source, test_csv)["metrics"]["accuracy"] if name == "shifted" else None
    scores["source on the new test rows"] = alone  # None: the source has no head for 5-9
    scores["rows"] = float(len(small))
    return scores


def shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--models", nargs="+", default=list(BODIES), choices=list(BODIES))
    args = parser.parse_args()
    results = {}
    for name in ("shifted", "new-classes"):
        for body in args.models:
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory() as tmp:
                    results[f"{name}|{body}|{seed}"] = setting(name, body, seed, Path(tmp))
                print(name, body, seed, results[f"{name}|{body}|{seed}"], flush=True)
    print(f"\nprocessor: {platform.processor() or platform.machine()}")
    print("| setting | model | seed | fine-tuned | body frozen | from scratch | source alone |")
    print("|---|---|---|---|---|---|---|")
    for key, r in results.items():
        name, body, seed = key.split("|")
        print(f"| {name} | {body} | {seed} | {r['fine-tuned']:.3f} | {r['body frozen']:.3f} | "
              f"{r['from scratch']:.3f} | "
              f"{shown(r['source on the new test rows'])} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
