"""Data parallelism on this machine: W1, W2, W3 as 1 and 2 MPI ranks (one BLAS thread each)
against one process with 2 BLAS threads; the time per step split into compute and allreduce.

    python benchmarks/parallel.py            # the three settings, then benchmarks/PARALLEL.md
    python benchmarks/parallel.py --quick    # 256 samples a workload (a check that it runs)

Each setting runs in fresh processes (the thread counts are set before numpy loads); inside,
one warm-up epoch, then ``--epochs`` timed epochs through ``nncli.training.loop.fit``. The
allreduce time is the time ranks wait in the gradient sum (``World.allreduce_seconds``: the
transfer plus waiting for the slower rank); compute is the rest of the epoch. The machine is
shared: the load average is written beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from workloads import WORKLOADS, make_data, one_hot  # noqa: E402

IDS = ("W1", "W2", "W3")
SETTINGS = [  # (name, ranks, BLAS threads per rank)
    ("1 rank, 1 thread", 1, 1),
    ("2 ranks, 1 thread each", 2, 1),
    ("1 process, 2 threads", 1, 2),
]


def measure(wid: str, epochs: int, quick: bool) -> dict:
    """One rank's side: warm-up epoch, then ``epochs`` timed ones -> seconds per step."""
    from nncli.backend import get_backend
    from nncli.engine.losses import make_loss
    from nncli.engine.network import Sequential
    from nncli.engine.optimizers import Adam
    from nncli.training.loop import fit
    from nncli.training.parallel import world

    w, here = WORKLOADS[wid], world()
    x, labels = make_data(w, quick)
    y = one_hot(labels, w.classes)
    net = Sequential(w.layers, w.input_shape, backend=get_backend("cpu"), seed=0)
    loss, opt = make_loss("cross_entropy"), Adam(learning_rate=1e-3)
    options = dict(batch_size=w.batch, seed=0, world=here)
    fit(net, loss, opt, x, y, epochs=1, **options)  # warm-up
    here.allreduce_seconds = 0.0
    started = time.perf_counter()
    fit(net, loss, opt, x, y, epochs=1 + epochs, initial_epoch=1, **options)
    total = time.perf_counter() - started
    steps = epochs * -(-len(x) // w.batch)
    params = net.parameter_count()
    return {
        "step_s": total / steps,
        "allreduce_s": here.allreduce_seconds / steps,
        "compute_s": (total - here.allreduce_seconds) / steps,
        "parameters": params,
        "rank": here.rank,
        "ranks": here.size,
    }


def run_setting(ranks: int, threads: int, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    inner = [sys.executable, str(Path(__file__).resolve()), "--child", "--epochs", str(args.epochs)]
    inner += ["--quick"] if args.quick else []
    if ranks > 1:
        from nncli.commands.launch import mpiexec_path

        inner = [mpiexec_path(), "-n", str(ranks), *inner]
    done = subprocess.run(inner, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(args: argparse.Namespace) -> None:
    results = {wid: measure(wid, args.epochs, args.quick) for wid in IDS}
    from nncli.training.parallel import world

    if world().lead:
        print(json.dumps(results))


def table(results: dict, load: tuple[float, float]) -> str:
    from run import machine  # the same processor line as RESULTS.md

    cpu = machine()["cpu"]
    lines = [
        "# Data parallelism on one machine: milliseconds per training step",
        "",
        f"Written by `python benchmarks/parallel.py` on {time.strftime('%Y-%m-%d %H:%M UTC')}."
        f" {cpu}, {os.cpu_count()} cores; load average (1 min) {load[0]:.2f} before and"
        f" {load[1]:.2f} after: other engineers ran tests at the same time.",
        "",
        "| id | parameters | " + " | ".join(name for name, _, _ in SETTINGS) + " |",
        "|---|---|" + "---|" * len(SETTINGS),
    ]
    for wid in IDS:
        cells = []
        for name, _, _ in SETTINGS:
            r = results[name][wid]
            cells.append(
                f"{1e3 * r['step_s']:.2f} (compute {1e3 * r['compute_s']:.2f}, "
                f"allreduce {1e3 * r['allreduce_s']:.2f})"
            )
        params = results[SETTINGS[0][0]][wid]["parameters"]
        lines.append(f"| {wid} | {params:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


NOTE = """
`python benchmarks/parallel.py --epochs 1`: one warm-up epoch, then one timed epoch per setting
(W1 157 steps, W2 64, W3 64). "allreduce" is the time a rank spends in the gradient sum: the
copy through shared memory plus waiting for the slower rank, which on a loaded machine is most
of it. A 2-thread column far slower than the 1-thread one is OpenBLAS's two threads spinning for
cores that other processes hold (on an idle machine one process with 2 threads takes W1's step
in 0.87 ms, benchmarks/RESULTS.md): what oversubscription costs, not the 2-thread speed.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    before = os.getloadavg()[0]
    results = {name: run_setting(r, t, args) for name, r, t in SETTINGS}
    text = table(results, (before, os.getloadavg()[0])) + NOTE
    print(text)
    if not args.no_write:
        (HERE / "PARALLEL.md").write_text(text)
        (HERE / "parallel_results.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    os.environ["TZ"] = "UTC"
    time.tzset()
    np.seterr(all="ignore")
    main()
