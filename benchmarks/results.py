"""Summaries of the children's raw results, the targets, and the RESULTS.md text."""

from __future__ import annotations

import statistics
from typing import Any

from workloads import WORKLOADS

# workload -> (what is compared, the bound on nncli / PyTorch)
# (issue 32, the third speed pass; W4's from the first)
TARGETS = {
    "W1": ("time", 0.6),
    "W2": ("time", 1.0),
    "W3": ("time", 1.0),
    "W4": ("time", 0.3),
    "W5": ("time", 1.0),
    "W6": ("time", 1.2),
    "W7": ("time", 1.2),
    "I1": ("throughput", 1.3),
    "I2": ("throughput", 1.3),
}
# the bounds for nncli with its numba kernels off (``NNCLI_KERNELS=numpy``): within 1.5x
NUMPY_TARGETS = {
    **{w: 1.5 for w in ("W2", "W3", "W5", "W6", "W7")},
    **{"W1": 1.0, "W4": 0.3, "I1": 1.0, "I2": 1.0},
}
LOSS_TOLERANCE = 1e-4
NOTES_MARKER = "## What each change gained"


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize_engine(runs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """All timed runs of one engine on one workload (every round) -> median, min, max."""
    times = [t for r in runs for t in r["times"]]
    out: dict[str, Any] = {"time": spread(times), "runs": len(times)}
    if kind == "infer":
        samples = runs[0]["samples"]
        out["throughput"] = spread([samples / t for t in times])
    out["peak_rss_mib"] = max(r["peak_rss_kib"] for r in runs) / 1024
    out["setup_rss_mib"] = max(r.get("rss_setup_kib", 0) for r in runs) / 1024
    return out


def loss_check(nncli_runs: list[dict], torch_runs: list[dict]) -> dict[str, Any] | None:
    """The largest difference between the engines' first batch losses (same weights, batches)."""
    ours = nncli_runs[0].get("losses") if nncli_runs else None
    theirs = torch_runs[0].get("losses") if torch_runs else None
    if not ours or not theirs:
        return None
    count = min(len(ours), len(theirs))
    diff = max(abs(a - b) for a, b in zip(ours[:count], theirs[:count], strict=True))
    return {"batches": count, "max_abs_diff": diff, "agree": diff <= LOSS_TOLERANCE}


def compare(summary: dict[str, dict[str, Any]], wid: str) -> dict[str, Any] | None:
    """nncli / PyTorch for a workload: the time ratio, or the throughput ratio for inference."""
    if "torch" not in summary:
        return None
    what, bound = TARGETS.get(wid, ("time", None))  # a new workload: measured, no target yet
    ours, theirs = summary["nncli"][what]["median"], summary["torch"][what]["median"]
    out = {"what": what, **_against(ours / theirs, bound, what)}
    if "nncli-numpy" in summary:
        ratio = summary["nncli-numpy"][what]["median"] / theirs
        out["numpy"] = _against(ratio, NUMPY_TARGETS.get(wid), what)
    out["memory_below"] = summary["nncli"]["peak_rss_mib"] < summary["torch"]["peak_rss_mib"]
    if "sklearn" in summary:
        out["faster_than_sklearn"] = (
            summary["nncli"]["time"]["median"] < summary["sklearn"]["time"]["median"]
        )
    return out


def _against(ratio: float, bound: float | None, what: str) -> dict[str, Any]:
    """A ratio and whether it meets its bound (None: a workload with no target yet)."""
    met = None if bound is None else ratio <= bound if what == "time" else ratio >= bound
    return {"ratio": ratio, "target": bound, "met": met}


def _cell(s: dict[str, float], unit: str, scale: float = 1.0, digits: int = 3) -> str:
    f = f"{{:.{digits}g}}"
    med, lo, hi = (f.format(s[k] * scale) for k in ("median", "min", "max"))
    return f"{med} {unit} ({lo}-{hi})"


def _engine_cell(e: dict[str, Any] | None, kind: str) -> str:
    if e is None:
        return "n/a"
    if kind == "infer":
        return _cell(e["throughput"], "/s", digits=4)
    return _cell(e["time"], "s")


def _ratio_cell(cmp_: dict[str, Any] | None, part: dict[str, Any] | None) -> str:
    if not cmp_ or not part:
        return "n/a"
    if part["target"] is None:
        return f"{part['ratio']:.2f}x (no target yet)"
    sign = "<=" if cmp_["what"] == "time" else ">="
    mark = "met" if part["met"] else "NOT met"
    return f"{part['ratio']:.2f}x ({sign} {part['target']}: {mark})"


def table(report: dict[str, Any]) -> list[str]:
    numpy_too = any("nncli-numpy" in e["summary"] for e in report["workloads"].values())
    extra = " nncli, numpy only |" if numpy_too else ""
    lines = [
        f"| id | workload | nncli |{extra} PyTorch | nncli / PyTorch (target) |"
        + " numpy only / PyTorch (target) |" * numpy_too
        + " peak RSS MiB nncli / PyTorch | first losses agree |",
        "|---|---|---|" + "---|---|" * numpy_too + "---|---|---|---|",
    ]
    for wid, entry in report["workloads"].items():
        w, s = WORKLOADS[wid], entry["summary"]
        kind = w.kind
        cmp_ = entry.get("compare")
        ratio = _ratio_cell(cmp_, cmp_)
        if numpy_too:
            ratio += f" | {_ratio_cell(cmp_, (cmp_ or {}).get('numpy'))}"
        rss = f"{s['nncli']['peak_rss_mib']:.0f}"
        if "torch" in s:
            rss += f" / {s['torch']['peak_rss_mib']:.0f}"
        check = entry.get("loss_check")
        agree = "n/a" if not check else (
            f"{'yes' if check['agree'] else 'NO'} ({check['max_abs_diff']:.1e} over "
            f"{check['batches']})"
        )  # fmt: skip
        title = w.title
        if "sklearn" in s:
            title += f"; scikit-learn {_engine_cell(s['sklearn'], kind)}"
        numpy_cell = f" {_engine_cell(s.get('nncli-numpy'), kind)} |" if numpy_too else ""
        lines.append(
            f"| {wid} | {title} | {_engine_cell(s['nncli'], kind)} |{numpy_cell} "
            f"{_engine_cell(s.get('torch'), kind)} | {ratio} | {rss} | {agree} |"
        )
    return lines


def markdown(report: dict[str, Any], notes: str) -> str:
    """RESULTS.md: machine, versions, date, the table, long-run drift, the CLI, then ``notes``
    (the hand-written section kept from the previous file)."""
    m = report["machine"]
    gpu = m.get("gpu")
    out = [
        f"# Benchmarks: nncli against PyTorch on the {'GPU' if gpu else 'CPU'}",
        "",
        *([f"GPU: {gpu.get('nvidia_smi')}; {gpu}.", ""] if gpu else []),
        f"Written by `python benchmarks/run.py{' --quick' if report['quick'] else ''}` on "
        f"{report['date']}. Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB; "
        f"{m['platform']}. Python {m['python']}, numpy {m['numpy']}, nncli {m['nncli']}, "
        f"PyTorch {m.get('torch') or 'not installed'}, scikit-learn "
        f"{m.get('sklearn') or 'not installed'}.",
        "",
        f"Protocol: {report['threads']} threads for every engine (numpy's BLAS through "
        "threadpoolctl, `torch.set_num_threads`), float32, the same seeded data, initial weights "
        "and batches. Each engine runs in its own process, "
        f"{report['rounds']} rounds with the order alternating; in each process one warm-up "
        f"epoch, then {report['reps']} timed replays of the same epoch from the state saved after "
        "it (W4: the whole 20-epoch fit from the initial weights). Cells: median (min-max) over "
        "all timed runs; inference cells are samples per second. Other engineers ran tests on "
        "this machine at the same time, so single runs are noisy: read the medians.",
        "",
        f"BLAS that ran: {report['blas']}. nncli's fused CPU kernels: {report['kernels']} "
        "(a default dependency where numba has wheels; `nncli, numpy only` runs the same "
        "engine with `NNCLI_KERNELS=numpy`).",
        "",
        *table(report),
        "",
    ]
    long = report.get("long")
    if long:
        out += [
            f"## Long runs (W1, {len(next(iter(long.values())))} consecutive epochs, seconds each)",
            "",
        ]
        for engine, times in long.items():
            shown = ", ".join(f"{t:.3f}" for t in times)
            ratios = f"epoch {len(times)} / epoch 1 = {times[-1] / times[0]:.2f}"
            if len(times) > 2:  # epoch 1 also pays one-time costs (numba loading its kernels)
                ratios += f", / epoch 2 = {times[-1] / times[1]:.2f}"
            out.append(f"- {engine}: {shown}; {ratios}")
        out.append("")
    cli = report.get("cli")
    if cli:
        out += [
            "## The command line",
            "",
            f"- `nncli --help`: {cli['help']['median']:.3f} s (median of "
            f"{len(cli['help']['times'])}; target < 0.3 s)",
        ]
        for wid, t in cli.get("train", {}).items():
            out.append(
                f"- `nncli train` on {wid}: {t['cli_epoch']:.3f} s per epoch against "
                f"{t['fit_epoch']:.3f} s for the engine's `fit` ({t['overhead_pct']:+.1f}%; "
                f"target < 5%), medians over epochs 2-{t['epochs']}; the fixed cost of a run "
                f"(start-up, reading the {t['rows']}-row CSV, writing the checkpoint) is "
                f"{t['fixed']:.2f} s"
            )
        out.append("")
    if notes:
        out += [notes.rstrip(), ""]
    return "\n".join(out)


def kept_notes(old: str) -> str:
    """The hand-written part of an existing RESULTS.md, from ``NOTES_MARKER`` on."""
    at = old.find(NOTES_MARKER)
    return old[at:] if at >= 0 else ""
