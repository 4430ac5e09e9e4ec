"""nncli: train neural networks described in YAML on a small, exact, readable engine."""

__version__ = "0.1.0"
