"""Where a training epoch's time goes: per layer forward and backward, and the shared helpers
inside them (im2col, col2im, attention's softmax, each numba kernel), through the engine's
``fit``; a layer with parts (a transformer block) is counted part by part too.

    python benchmarks/profile_layers.py W2 W5 [--threads 2]

One warm-up epoch (numba compiles or loads its cache), then one timed epoch with
``time.perf_counter`` counters around each call. The helper counters are nested inside the
layer counters (a maxpool's kernel time is part of its layer's). Used by the third speed pass
(see RESULTS.md); a profile, not a benchmark: the counters cost a little time themselves.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

totals: dict[str, float] = collections.defaultdict(float)


def counted(fn: Any, key: str) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return run


def count_helpers() -> None:
    """Counters around im2col, col2im, attention's softmax and every numba kernel an
    operation compiles."""
    from nncli.engine import kernels
    from nncli.engine.layers import attention, windows

    windows.columns = counted(windows.columns, "  im2col (windows.columns)")
    windows.fold_columns = counted(windows.fold_columns, "  col2im (windows.fold_columns)")
    attention.masked_softmax = counted(attention.masked_softmax, "  attention softmax")
    plain = kernels.compiled

    def compiled(loops: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        made = plain(loops, *args, **kwargs)
        return {k: counted(f, f"  numba {loops.__name__}.{k}") for k, f in made.items()}

    kernels.compiled = compiled


def profile(wid: str) -> tuple[float, dict[str, float]]:
    from workloads import WORKLOADS, make_data, one_hot

    from nncli.engine.losses import make_loss
    from nncli.engine.network import Sequential
    from nncli.engine.optimizers import Adam
    from nncli.training.loop import fit

    w = WORKLOADS[wid]
    x, labels = make_data(w)
    y = one_hot(labels, w.classes)
    net = Sequential(w.layers, w.input_shape, seed=0)
    loss, opt = make_loss("cross_entropy"), Adam(learning_rate=1e-3)
    fit(net, loss, opt, x, y, epochs=1, batch_size=w.batch, seed=0)  # warm-up
    for i, layer in enumerate(net.layers):
        layer.forward = counted(layer.forward, f"{i} {layer.type_name} forward")
        layer.backward = counted(layer.backward, f"{i} {layer.type_name} backward")
        for name, part in layer.sublayers().items():  # a transformer's attention, norms, ...
            part.forward = counted(part.forward, f"{i}  {name} forward")
            part.backward = counted(part.backward, f"{i}  {name} backward")
    opt.step = counted(opt.step, "optimizer step")
    totals.clear()
    start = time.perf_counter()
    fit(net, loss, opt, x, y, epochs=2, batch_size=w.batch, seed=0, initial_epoch=1)
    return time.perf_counter() - start, dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)  # before numpy loads
    count_helpers()
    print(f"load average {os.getloadavg()[0]:.2f} at the start, {args.threads} threads")
    for wid in args.workloads:
        epoch, spent = profile(wid)
        print(f"{wid}: epoch {epoch:.3f} s")
        for key in sorted(spent, key=lambda k: (not k[0].isdigit(), k)):
            print(f"  {key:42s} {spent[key] * 1000:8.1f} ms  {100 * spent[key] / epoch:5.1f}%")


if __name__ == "__main__":
    main()
