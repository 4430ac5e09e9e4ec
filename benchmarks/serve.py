"""``nncli serve`` under load, beside the server a user would write: FastAPI + ONNX Runtime on
the exported model, one forward pass per request (``baseline_app`` below).

Workloads: the iris MLP (models/iris.yaml) and the digits CNN (models/digits-cnn.yaml's
layers behind a ``reshape``, on datasets/digits.csv: a table of 64 pixel columns, since
``nncli serve`` answers rows). Each server listens on this machine's loopback; a bounded
client (asyncio streams, HTTP/1.1 keep-alive) sends requests of 1 and of 32 rows over 64
concurrent connections for ``--seconds``, then over 1, and reports requests/s, rows/s, p50 and
p99 latency, errors, the rows a round of nncli's forward passes carried (from its /metrics) and
the processor time the server process used a request (its user and system time, every thread,
from /proc). Both servers run at once and take turns, phase by phase, ``--rounds``
times (a load from elsewhere on a shared machine falls on both alike); the load average is
noted before each turn, and the medians of the rounds are printed last.

    python benchmarks/serve.py                      # about 6 minutes: 20 s a turn
    python benchmarks/serve.py --seconds 5 --only iris
    python benchmarks/serve.py --baseline MODEL.onnx --port 0   # the baseline server alone

Every server listens on 127.0.0.1 and is stopped (SIGTERM) when its phases end; every loop
ends at its deadline or its request cap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = (64, 1)
ROWS = (1, 32)
MAX_REQUESTS = 2_000_000  # a cap on any phase, whatever its deadline
CNN_SPEC = """version: 1
name: digits-cnn-rows
seed: 0
data: {kind: csv, path: digits.csv, target: label, normalize: standard, validation_split: 0.1}
model:
  layers:
    - {type: reshape, shape: [1, 8, 8]}
    - {type: conv2d, filters: 16, kernel_size: 3, padding: same, activation: relu}
    - {type: maxpool2d, pool_size: 2}
    - {type: conv2d, filters: 32, kernel_size: 3, padding: same, activation: relu}
    - {type: maxpool2d, pool_size: 2}
    - flatten
    - {type: dense, units: 64, activation: relu}
    - {type: dense, units: auto, activation: softmax}
loss: cross_entropy
optimizer: {type: adam, learning_rate: 0.003}
training: {epochs: 3, batch_size: 32}
"""
WORKLOADS = {  # name -> (spec text, data file, label column)
    "iris": ((ROOT / "models" / "iris.yaml").read_text().replace("../datasets/", ""), "iris.csv"),
    "cnn": (CNN_SPEC, "digits.csv"),
}
TARGETS = {"iris": "species", "cnn": "label"}
MEASURED = ("requests_per_s", "rows_per_s", "p50_ms", "p99_ms", "load_before", "rows_a_round",
            "cpu_ms")  # fmt: skip


# -- the baseline: what a user writes around onnxruntime ------------------------------------------
def baseline_app(onnx_path: str) -> Any:
    """FastAPI + onnxruntime: rows -> one float32 array in the exported column order -> one
    session.run a request -> labels and probabilities."""
    import onnxruntime as ort
    from fastapi import FastAPI
    from pydantic import BaseModel

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    columns = json.loads(meta["nncli.inputs"])["columns"]
    labels = json.loads(meta["nncli.labels"])

    class Request(BaseModel):
        rows: list[dict[str, float]]

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def predict(request: Request) -> dict[str, Any]:
        x = np.array([[row[c] for c in columns] for row in request.rows], dtype=np.float32)
        p = session.run(None, {"input": x})[0]
        return {
            "predictions": [labels[i] for i in p.argmax(axis=1)],
            "probabilities": [dict(zip(labels, row, strict=True)) for row in p.tolist()],
        }

    predict.__annotations__["request"] = Request  # a local class: no string to resolve
    app.post("/predict")(predict)
    return app


def run_baseline(onnx_path: str, port: int) -> None:
    """The baseline server on 127.0.0.1 (its address on stderr, as nncli serve says it)."""
    import socket

    import uvicorn

    # IPPROTO_TCP, as `uvicorn app:app` binds: asyncio sets TCP_NODELAY only on such sockets'
    # connections (without it a response's body waits for the client's delayed ACK, 40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    host, bound = sock.getsockname()
    print(f"baseline on http://{host}:{bound}", file=sys.stderr, flush=True)
    config = uvicorn.Config(baseline_app(onnx_path), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


# -- the client -----------------------------------------------------------------------------------
async def one_connection(
    port: int, body: bytes, deadline: float, latencies: list[float], errors: list[str]
) -> None:
    """Requests one after another on one keep-alive connection until the deadline."""
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
            start = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            status = (await reader.readline()).split(b" ", 2)
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if len(status) < 2 or status[1] != b"200":
                errors.append(status[1].decode() if len(status) > 1 else "no answer")
            else:
                latencies.append(time.perf_counter() - start)
    except (OSError, asyncio.IncompleteReadError) as err:
        errors.append(type(err).__name__)
    finally:
        writer.close()


async def load(port: int, body: bytes, connections: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(one_connection(port, body, deadline, latencies, errors) for _ in range(connections))
    )
    took = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "requests_per_s": len(latencies) / took,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
        "errors": len(errors),
        "requests": len(latencies),
    }


def round_counts(port: int) -> tuple[float, float]:
    """An nncli server's (rows, rounds) of forward passes so far, from its /metrics; (0, 0)
    from a server without them (the baseline)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except urllib.error.URLError:
        return 0.0, 0.0
    found = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("nncli_batch")
    )
    return float(found.get("nncli_batch_rows_sum", 0)), float(
        found.get("nncli_batch_rows_count", 0)
    )


def cpu_seconds(pid: int) -> float:
    """The processor time (user and system, all its threads) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the runs -------------------------------------------------------------------------------------
def nncli(*args: object) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "nncli", *map(str, args)], check=True, env=env, cwd=ROOT)


def build(name: str, folder: Path) -> tuple[Path, Path, Path]:
    """Train the workload's model and export it -> (checkpoint, ONNX file, data file)."""
    spec, data = WORKLOADS[name]
    (folder / data).write_bytes((ROOT / "datasets" / data).read_bytes())
    (folder / f"{name}.yaml").write_text(spec)
    checkpoint = folder / f"{name}.h5"
    nncli("train", folder / f"{name}.yaml", "--quiet", "--output", checkpoint, "--force")
    onnx = folder / f"{name}.onnx"
    nncli("export", checkpoint, "--output", onnx, "--force")
    return checkpoint, onnx, folder / data


def request_body(data: Path, target: str, rows: int) -> bytes:
    import csv

    with open(data, newline="") as file:
        records = [r for _, r in zip(range(rows), csv.DictReader(file), strict=False)]
    return json.dumps({"rows": [{k: float(v) for k, v in r.items() if k != target}
                                for r in records]}).encode()  # fmt: skip


def start(command: list[str], root: Path = ROOT) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    # run in ``root``: ``python -m`` puts the working folder before PYTHONPATH on sys.path
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=root)
    line = process.stderr.readline()
    if "http://127.0.0.1:" not in line:
        process.kill()
        raise RuntimeError(f"the server did not start: {line}{process.stderr.read()}")
    threading.Thread(target=process.stderr.read, daemon=True).start()  # never a full pipe
    return process, int(line.split("http://127.0.0.1:")[1].split()[0])


def phases(
    name: str,
    commands: dict[str, tuple[list[str], Path]],
    data: Path,
    seconds: float,
    rounds: int,
    shapes: tuple[tuple[int, ...], tuple[int, ...]] = (ROWS, CONNECTIONS),
) -> list[dict]:
    """Every server (its command, and the source tree it runs from) started at once; each
    phase (rows a request, connections) run ``rounds`` times, the servers taking turns, so
    that a load from elsewhere on a shared machine falls on all alike."""
    started = {server: start(*command) for server, command in commands.items()}
    results = []
    try:
        time.sleep(1.0)  # the apps' start-up (and a first request's compilation) out of the way
        for rows in shapes[0]:
            body = request_body(data, TARGETS[name], rows)
            for _, port in started.values():
                asyncio.run(load(port, body, 1, 1.0))  # warm-up
            for connections in shapes[1]:
                for turn in range(rounds):
                    for server, (process, port) in started.items():
                        before, counts = os.getloadavg()[0], round_counts(port)
                        cpu = cpu_seconds(process.pid)
                        done = asyncio.run(load(port, body, connections, seconds))
                        cpu = cpu_seconds(process.pid) - cpu
                        rows_sum, rounds_count = np.subtract(round_counts(port), counts)
                        done["rows_a_round"] = rows_sum / rounds_count if rounds_count else None
                        done["cpu_ms"] = 1000 * cpu / max(done["requests"], 1)
                        done |= {"workload": name, "server": server, "rows": rows,
                                 "connections": connections, "load_before": before,
                                 "round": turn + 1,
                                 "rows_per_s": done["requests_per_s"] * rows}  # fmt: skip
                        results.append(done)
                        print(row_text(done), flush=True)
    finally:
        for process, _ in started.values():
            process.send_signal(signal.SIGTERM)
        for process, _ in started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    return results


def medians(results: list[dict]) -> list[dict]:
    """One row a workload, server, rows and connections: the median of its rounds (each of
    ``MEASURED``), the errors of all of them."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["workload"], r["server"], r["rows"], r["connections"]), []).append(r)
    out = []
    for (workload, server, rows, connections), runs in groups.items():
        middle = {
            k: float(np.median([r[k] for r in runs if r[k] is not None] or [np.nan]))
            for k in MEASURED
        }
        out.append({**middle, "workload": workload, "server": server, "rows": rows,
                    "connections": connections, "errors": sum(r["errors"] for r in runs),
                    "round": f"median of {len(runs)}"})  # fmt: skip
    return out


def row_text(r: dict) -> str:
    p50 = "-" if r["p50_ms"] is None else f"{r['p50_ms']:.2f}"
    p99 = "-" if r["p99_ms"] is None else f"{r['p99_ms']:.2f}"
    joined = r.get("rows_a_round")
    joined = "-" if joined is None or np.isnan(joined) else f"{joined:.1f}"
    return (
        f"| {r['workload']} | {r['server']} | {r['rows']} | {r['connections']} | "
        f"{r['requests_per_s']:.0f} | {r['rows_per_s']:.0f} | {p50} | {p99} | {r['errors']} | "
        f"{joined} | {r['cpu_ms']:.3f} | {r['load_before']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", default="iris,cnn")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="turns each server takes a phase")
    parser.add_argument("--rows", default="1,32", help="rows a request, each a phase")
    parser.add_argument("--connections", default="64,1", help="connections, each a phase")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--baseline", help="run the baseline server on this ONNX file")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--before", type=Path, action="append", default=[],
        help="also serve with the nncli of this source tree (a worktree); may be repeated",
    )  # fmt: skip
    args = parser.parse_args()
    if args.baseline:
        run_baseline(args.baseline, args.port)
        return
    print(f"processor: {processor()}, {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
    print("| workload | server | rows | connections | requests/s | rows/s | p50 ms | p99 ms "
          "| errors | rows a round | server CPU ms a request | load |")  # fmt: skip
    print("|---" * 12 + "|")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only.split(","):
            checkpoint, onnx, data = build(name, Path(folder))
            serve = [sys.executable, "-m", "nncli", "serve", str(checkpoint), "--port", "0",
                     "--max-batch", str(args.max_batch)]  # fmt: skip
            baseline = [sys.executable, __file__, "--baseline", str(onnx), "--port", "0"]
            commands = {"nncli serve": (serve, ROOT), "FastAPI + onnxruntime": (baseline, ROOT)}
            for tree in args.before:
                commands[f"nncli serve ({tree.name})"] = (serve, tree.resolve())
            shapes = (
                tuple(int(n) for n in args.rows.split(",")),
                tuple(int(n) for n in args.connections.split(",")),
            )
            results += phases(name, commands, data, args.seconds, args.rounds, shapes)
    print("\nmedians of the rounds:")
    for row in sorted(medians(results), key=lambda r: (r["workload"], r["rows"],
                                                      -r["connections"], r["server"])):  # fmt: skip
        print(row_text(row))
    if args.json:
        args.json.write_text(json.dumps({"processor": processor(), "results": results}, indent=1))


def processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
