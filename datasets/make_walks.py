"""Writes walks.csv: 240 random walks of 8 to 40 steps, each drifting up or down, one row per
step (walk, t, value, drift), for sequence-to-one classification of the drift's sign from
sequences of different lengths. Run: python datasets/make_walks.py"""

from pathlib import Path

import numpy as np

rng = np.random.default_rng(5)
lines = ["walk,t,value,drift"]
for walk in range(240):
    up = walk % 2 == 0
    steps = int(rng.integers(8, 41))
    moves = rng.normal(0.35 if up else -0.35, 1.0, size=steps)
    values = rng.normal(0.0, 2.0) + np.cumsum(moves)
    label = "up" if up else "down"
    lines += [f"w{walk:03d},{t},{v:.4f},{label}" for t, v in enumerate(values)]
(Path(__file__).parent / "walks.csv").write_text("\n".join(lines) + "\n")
