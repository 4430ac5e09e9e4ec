"""One engine on one workload, in a process of its own: ``python benchmarks/child.py ENGINE ID``.

Limits the thread pools to ``--threads`` (threadpoolctl for numpy's BLAS when installed, the
environment the parent sets otherwise; ``torch.set_num_threads`` for PyTorch), runs the engine's
module (``bench_<engine>.py``) and prints one JSON object on the last line of stdout: the timings,
the first losses, peak RSS, the BLAS that ran and the versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _status(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_kib() -> int:
    """The current resident set size (KiB), from /proc where there is one."""
    return _status("VmRSS:") or 0


def peak_rss_kib() -> int:
    """This process's peak RSS (KiB). Linux's VmHWM starts afresh at exec; ru_maxrss would
    carry the parent's peak over, so it is only the fallback."""
    peak = _status("VmHWM:")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024 if sys.platform == "darwin" else peak)


def blas_info() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("internal_api", "version", "architecture", "num_threads", "prefix", "threading_layer")
    return [{k: info.get(k) for k in keep} for info in threadpool_info()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=["nncli", "torch", "sklearn"])
    parser.add_argument("workload")
    parser.add_argument("--weights", type=Path, help=".npz of initial weights, by nncli's names")
    parser.add_argument("--reps", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--mode", default="bench", choices=["bench", "long", "epochs"])
    parser.add_argument("--epochs", type=int, default=10, help="epochs for --mode long/epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    args = parser.parse_args()

    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(args.threads)
    except ImportError:
        pass
    started = time.perf_counter()
    from workloads import WORKLOADS

    module = __import__(f"bench_{args.engine}")
    result = module.run(WORKLOADS[args.workload], args)
    result.update(
        engine=args.engine,
        workload=args.workload,
        mode=args.mode,
        peak_rss_kib=peak_rss_kib(),
        child_seconds=time.perf_counter() - started,
        blas=blas_info(),
        python=platform.python_version(),
        threadpoolctl=limiter is not None,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
