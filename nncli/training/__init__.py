"""Training over host arrays: the loop (``fit``, ``evaluate``, ``predict``), its callbacks
(early stopping, periodic checkpoints, signal and finiteness guards), metrics and batching."""
