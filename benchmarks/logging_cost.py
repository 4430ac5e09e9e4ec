"""What ``training.log: [tensorboard, mlflow]`` costs an epoch of W1 (issue 30: at most 2%).

W1 (benchmarks/workloads.py: MLP 784-256-128-10, Adam, batch 64, 10,000 rows) trains epoch after
epoch through ``fit``; rounds alternate an epoch without logging and one with both backends
(event files and an MLflow run in a local SQLite store, in a temporary folder), so that a
machine shared with other work slows both alike. Reported, as medians over the rounds: the
epoch without logging, the time spent in the logging callback in an epoch with it (TensorBoard
and MLflow together: the scalars, the flush, one ``log_batch``), their ratio, and the epoch with
logging. Once a run, not an epoch: opening the backends (the MLflow store, run, parameters) and
closing them (the artifacts). Also the CPU time (``process_time``, every thread of the
process) of both, which other processes on the machine do not inflate. Not a timed test: run
it by hand.

Last, the callback alone at the pace of a quiet machine's W1 epoch (``--pace``, 0.24 s:
benchmarks/RESULTS.md), epochs replayed with a sleep between them (sends go at most once a
second, so how often they fall depends on the epoch's length).

    PYTHONPATH=. python benchmarks/logging_cost.py [--rounds 7] [--pace 0.24]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from workloads import WORKLOADS, make_data, one_hot  # noqa: E402

from nncli.engine.history import History  # noqa: E402
from nncli.engine.losses import make_loss  # noqa: E402
from nncli.engine.network import Sequential  # noqa: E402
from nncli.engine.optimizers import Adam  # noqa: E402
from nncli.tracking.callback import FINISHED, RunLog  # noqa: E402
from nncli.tracking.plan import LogPlan  # noqa: E402
from nncli.training.callbacks import Callback  # noqa: E402
from nncli.training.loop import fit  # noqa: E402


class Timed(Callback):
    """Hands each epoch to an open ``RunLog`` and adds up the time it takes."""

    def __init__(self, log: RunLog):
        self.log, self.seconds, self.cpu = log, 0.0, 0.0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        self.log.on_epoch_end(epoch, logs)
        self.seconds += time.perf_counter() - started
        self.cpu += time.process_time() - cpu


def processor() -> str:
    from nncli.tracking.plan import processor as name

    return name() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pace", type=float, default=0.24)
    args = parser.parse_args()
    w = WORKLOADS["W1"]
    x, labels = make_data(w)
    y = one_hot(labels, w.classes)
    net = Sequential(w.layers, w.input_shape, seed=0)
    loss, optimizer = make_loss("cross_entropy"), Adam(learning_rate=1e-3)
    folder = Path(tempfile.mkdtemp(prefix="nncli-logging-cost-"))
    plan = LogPlan(("tensorboard", "mlflow"), folder / "tensorboard" / "w1", folder, "w1", "w1")
    plan.spec = {"model": {"layers": w.layers}, "training": {"batch_size": w.batch}}
    log = RunLog(plan, History(), warn=print)
    started = time.perf_counter()
    log.on_train_begin({"initial_epoch": 0})
    opened = time.perf_counter() - started
    epoch, bare, logged, inside, bare_cpu, inside_cpu = 0, [], [], [], [], []

    def one(callbacks: list) -> float:
        nonlocal epoch
        epoch += 1
        cpu = time.process_time()
        history = fit(net, loss, optimizer, x, y, epochs=epoch, batch_size=w.batch,
                      initial_epoch=epoch - 1, callbacks=callbacks)  # fmt: skip
        if not callbacks:
            bare_cpu.append(time.process_time() - cpu)
        return history.epochs[-1]["time"]

    one([])  # warm-up (kernels compiled, caches filled)
    for _ in range(args.rounds):
        bare.append(one([]))
        timed = Timed(log)
        started = time.perf_counter()
        one([timed])
        logged.append(time.perf_counter() - started)
        inside.append(timed.seconds)
        inside_cpu.append(timed.cpu)
    started = time.perf_counter()
    log.end(FINISHED)
    closed = time.perf_counter() - started
    epoch_s, cost_s = statistics.median(bare), statistics.median(inside)
    print(f"processor: {processor()}; rounds: {args.rounds} (alternating)")
    print(f"W1 epoch without logging: median {epoch_s:.3f} s ({min(bare):.3f}-{max(bare):.3f})")
    print(f"W1 epoch with tensorboard + mlflow: median {statistics.median(logged):.3f} s")
    print(f"logging callback per epoch: median {cost_s * 1000:.1f} ms "
          f"({min(inside) * 1000:.1f}-{max(inside) * 1000:.1f}), "
          f"{100 * cost_s / epoch_s:.2f}% of the epoch")  # fmt: skip
    cpu_epoch, cpu_cost = statistics.median(bare_cpu), statistics.median(inside_cpu)
    print(f"CPU time (all threads): epoch {cpu_epoch:.3f} s, logging {cpu_cost * 1000:.1f} ms, "
          f"{100 * cpu_cost / cpu_epoch:.2f}%")  # fmt: skip
    print(f"once a run: opening {opened:.2f} s, closing {closed:.2f} s")
    paced(folder, plan, args.pace)


def paced(folder: Path, plan: LogPlan, pace: float, epochs: int = 40) -> None:
    """The callback alone, one epoch every ``pace`` seconds: its mean wall and CPU time."""
    plan.run_name, plan.tensorboard = "paced", folder / "tensorboard" / "paced"
    log = RunLog(plan, History(), warn=print)
    log.on_train_begin({"initial_epoch": 0})
    logs = {"epoch": 0, "loss": 0.5, "accuracy": 0.9, "lr": 1e-3, "time": pace}
    wall = cpu = 0.0
    for epoch in range(1, epochs + 1):
        started, used = time.perf_counter(), time.process_time()
        log.on_epoch_end(epoch, logs)
        wall += time.perf_counter() - started
        cpu += time.process_time() - used
        time.sleep(pace)
    log.end(FINISHED)
    print(f"at one epoch every {pace} s: logging {1000 * wall / epochs:.2f} ms wall, "
          f"{1000 * cpu / epochs:.2f} ms CPU per epoch ({100 * wall / epochs / pace:.2f}% and "
          f"{100 * cpu / epochs / pace:.2f}% of the epoch)")  # fmt: skip


if __name__ == "__main__":
    main()
