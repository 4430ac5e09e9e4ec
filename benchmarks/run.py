"""Train the same workloads with nncli and, when installed, PyTorch (and scikit-learn on W4).

    python benchmarks/run.py [--quick] [--no-write] [--rounds N] [--only W1,W3] [--device gpu]

Writes ``benchmarks/RESULTS.md`` and ``benchmarks/results.json`` (``--quick`` writes
``results-quick.json`` and leaves RESULTS.md alone unless ``--md`` names a file). Exits 1 when
a child process fails or the engines' first losses disagree; the speed targets are reported,
not enforced. See RESULTS.md for the protocol.

``--device gpu`` runs W1, W2, W3, I1 and I2 with nncli on CuPy beside PyTorch on CUDA (same
protocol: data on the host, moved a batch at a time) and writes ``RESULTS-gpu.md`` and
``results-gpu.json`` with the card, the driver and the CUDA and CuPy versions.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cli_bench  # noqa: E402
import results  # noqa: E402
from workloads import ROOT, WORKLOADS  # noqa: E402

GPU_WORKLOADS = ["W1", "W2", "W3", "I1", "I2"]
# older OpenBLAS safety settings some machines carry; they slow a current numpy's kernels
BLAS_SAFETY_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def child_env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in BLAS_SAFETY_VARIABLES}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_child(name: str, wid: str, args: argparse.Namespace, env: dict, **extra: Any) -> dict:
    """One child process; ``nncli-numpy`` is nncli with its optional numba kernels off."""
    engine = "nncli" if name == "nncli-numpy" else name
    if name == "nncli-numpy":
        env = {**env, "NNCLI_KERNELS": "numpy"}
    cmd = [sys.executable, str(HERE / "child.py"), engine, wid, "--threads", str(args.threads)]
    cmd += ["--device", args.device]
    cmd += ["--reps", str(extra.pop("reps", args.reps))]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    if args.quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} {wid} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if args.verbose:
        times = ", ".join(f"{t:.3f}" for t in result.get("times", result.get("epoch_times", [])))
        print(f"  {name:11s} {wid} {extra.get('mode', 'bench')}: {times}", flush=True)
    return result


def save_weights(wids: list[str], folder: Path) -> dict[str, Path]:
    """nncli's seeded initial weights per workload, for both engines to load."""
    import numpy as np

    from nncli.engine import Sequential

    paths = {}
    for wid in wids:
        w = WORKLOADS[wid]
        path = folder / f"{wid}.npz"
        np.savez(path, **Sequential(w.layers, w.input_shape, seed=0).get_weights())
        paths[wid] = path
    return paths


def machine() -> dict[str, Any]:
    import numpy as np

    import nncli

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nncli": nncli.__version__,
    }
    for module, distribution in (("torch", "torch"), ("sklearn", "scikit-learn")):
        if installed(module):
            info[module] = version(distribution)
    return info


def gpu_machine() -> dict[str, Any]:
    """The card, its driver and the CUDA and CuPy versions nncli's GPU runs used."""
    from nncli.backend import get_backend, versions

    info = versions(get_backend("gpu"))  # exits through BackendError without a usable GPU
    try:
        fields = "--query-gpu=name,driver_version,memory.total"
        query = ["nvidia-smi", fields, "--format=csv,noheader"]
        info["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True).stdout.strip()
    except OSError:
        info["nvidia_smi"] = "nvidia-smi not found"
    return info


def bench_workloads(args, env, weights, engines) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for wid in args.only:
        names = engines + (["sklearn"] if wid == "W4" and args.sklearn else [])
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                runs[name].append(run_child(name, wid, args, env, weights=weights[wid]))
        kind = WORKLOADS[wid].kind
        summary = {name: results.summarize_engine(rs, kind) for name, rs in runs.items()}
        entry = {"summary": summary, "raw": runs}
        entry["loss_check"] = results.loss_check(runs["nncli"], runs.get("torch", []))
        entry["compare"] = results.compare(summary, wid)
        out[wid] = entry
    return out


def bench_cli(args, env, weights, folder: Path) -> dict[str, Any]:
    cli: dict[str, Any] = {"help": cli_bench.help_time(env, 2 if args.quick else 5), "train": {}}
    epochs = 2 if args.quick else 4
    for wid in cli_bench.CLI_WORKLOADS:
        if wid not in args.only:
            continue
        train = cli_bench.train_time(folder, env, args.quick, epochs, wid)
        fit = run_child("nncli", wid, args, env, mode="epochs", epochs=epochs,
                        weights=weights[wid])  # fmt: skip
        cli_epoch = statistics.median(train["epoch_times"][1:])
        fit_epoch = statistics.median(fit["epoch_times"][1:])
        w = WORKLOADS[wid]
        cli["train"][wid] = {
            **train,
            "fit_epoch_times": fit["epoch_times"],
            "cli_epoch": cli_epoch,
            "fit_epoch": fit_epoch,
            "overhead_pct": 100 * (cli_epoch / fit_epoch - 1),
            "epochs": epochs,
            "rows": w.quick_samples if args.quick else w.samples,
        }
    return cli


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny data, one round: proves it works")
    p.add_argument("--no-write", action="store_true", help="print only; write no files")
    p.add_argument("--rounds", type=int, help="processes per engine and workload (default 5)")
    p.add_argument("--reps", type=int, help="timed runs per process (default 3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", help="comma-separated workload ids (default: all)")
    p.add_argument("--no-torch", action="store_true", help="run nncli alone")
    p.add_argument("--no-cli", action="store_true", help="skip the command-line measurements")
    p.add_argument("--no-numpy", action="store_true", help="skip nncli without its kernels")
    p.add_argument("--json", type=Path, help="where to write the JSON results")
    p.add_argument("--md", type=Path, help="where to write the markdown report")
    p.add_argument("--verbose", "-v", action="store_true", help="print every child's timings")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="gpu: nncli on CuPy")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.reps = args.reps or (1 if args.quick else 3)
    default = GPU_WORKLOADS if args.device == "gpu" else list(WORKLOADS)
    args.only = args.only.split(",") if args.only else default
    unknown = [w for w in args.only if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload {unknown[0]!r}; expected some of {', '.join(WORKLOADS)}")
    args.torch = installed("torch") and not args.no_torch
    args.sklearn = installed("sklearn") and not args.no_torch
    # with numba installed nncli runs fused kernels; show the pure-numpy engine beside it
    args.numpy_too = installed("numba") and not args.no_numpy
    if args.device == "gpu":  # numba and scikit-learn are CPU-only; the CLI table is the CPU's
        args.sklearn = args.numpy_too = False
        args.no_cli = True
        if args.only != GPU_WORKLOADS and set(args.only) - set(GPU_WORKLOADS):
            p.error(f"--device gpu runs {', '.join(GPU_WORKLOADS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    env = child_env(args.threads)
    engines = ["nncli"] + (["nncli-numpy"] if args.numpy_too else [])
    engines += ["torch"] if args.torch else []
    report: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": args.quick,
        "rounds": args.rounds,
        "reps": args.reps,
        "threads": args.threads,
        "machine": machine(),
        "device": args.device,
    }
    if args.device == "gpu":
        from nncli.errors import BackendError

        try:
            report["machine"]["gpu"] = gpu_machine()
        except BackendError as exc:
            print(f"run.py: {exc}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="nncli-bench-") as tmp:
        folder = Path(tmp)
        weights = save_weights(sorted(set(args.only) | {"W1"}), folder)
        report["workloads"] = bench_workloads(args, env, weights, engines)
        if "W1" in args.only:
            epochs = 3 if args.quick else 10
            report["long"] = {
                name: run_child(name, "W1", args, env, mode="long", epochs=epochs,
                                weights=weights["W1"])["epoch_times"]
                for name in engines
            }  # fmt: skip
        if not args.no_cli:
            report["cli"] = bench_cli(args, env, weights, folder)
    first = next(iter(report["workloads"].values()))["raw"]["nncli"][0]
    report["kernels"] = first.get("kernels", "numpy")
    report["blas"] = (
        "; ".join(
            f"{b['internal_api']} {b['version']} ({b['architecture']}, {b['num_threads']} threads)"
            for b in first.get("blas", [])
            if b.get("internal_api") != "openmp"
        )
        or "unknown (threadpoolctl not installed)"
    )

    text = results.markdown(report, "")
    print("\n".join(results.table(report)))
    if not args.no_write:
        suffix = "-gpu" if args.device == "gpu" else ""
        md = args.md or (None if args.quick else HERE / f"RESULTS{suffix}.md")
        if md is not None:
            notes = results.kept_notes(md.read_text()) if md.exists() else ""
            md.write_text(results.markdown(report, notes))
        js = args.json or HERE / f"results{'-quick' if args.quick else ''}{suffix}.json"
        js.write_text(json.dumps(report, indent=1, default=str) + "\n")
    elif args.verbose:
        print(text)
    bad = [w for w, e in report["workloads"].items() if e["loss_check"] and not e["loss_check"][
        "agree"]]  # fmt: skip
    if bad:
        print(f"first losses disagree on {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
