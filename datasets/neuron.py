"""Writes neuron.csv: inputs around the course text's point x = [2, 4] and the output of its
one neuron, y = sin(2 + 2 x1 + 1 x2) (weights [2, 1], bias 2), so a one-neuron network with a
sin activation can learn back those weights. Run: python datasets/neuron.py"""

from pathlib import Path

import numpy as np

rng = np.random.default_rng(401)
x = rng.uniform([1.5, 3.5], [2.5, 4.5], size=(200, 2))
y = np.sin(2 + 2 * x[:, 0] + 1 * x[:, 1])
lines = ["x1,x2,y"] + [f"{a:.6f},{b:.6f},{c:.6f}" for (a, b), c in zip(x, y, strict=True)]
(Path(__file__).parent / "neuron.csv").write_text("\n".join(lines) + "\n")
