"""``nncli serve`` as a real process on the loopback: it says where it listens, answers /health and
/predict, and on SIGTERM or Ctrl-C stops accepting, answers the request in flight and exits 0.
Every loop here is bounded in count; the server stops by itself when the test ends."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import IRIS, invoke, iris_spec

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

ROOT = Path(__file__).resolve().parents[2]
ROW = {"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4}
ROW["petal_width_cm"] = 0.2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve-process")
    (root / "iris.csv").write_bytes(IRIS.read_bytes())
    (root / "iris.yaml").write_text(iris_spec("{epochs: 2, batch_size: 16}"))
    result = invoke("train", root / "iris.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    return root / "out" / "model.h5"


def start(checkpoint: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """The server on a free loopback port -> (process, its address from its first line)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "nncli", "serve", str(checkpoint), "--port", "0", *options],
        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    line = process.stderr.readline()
    assert " on http://127.0.0.1:" in line, line
    return process, line.split(" on ")[1].split()[0]


def ask(method: str, url: str, **sent):
    return httpx.request(method, url, timeout=30, **sent)


def healthy(address: str) -> bool:
    for _ in range(200):  # at most 200 tries, 0.05 s apart
        try:
            if ask("GET", f"{address}/health").json() == {"status": "ok"}:
                return True
        except httpx.TransportError:
            time.sleep(0.05)
    return False


def refuses_connections(address: str) -> bool:
    host, port = address.removeprefix("http://").split(":")
    for _ in range(100):
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.05)
    return False


def half_sent(address: str) -> tuple[socket.socket, bytes]:
    """A /predict request on a raw connection with half its body sent: the server holds it in
    flight, reading, until the rest comes -> (the connection, the rest)."""
    body = json.dumps({"rows": [ROW]}).encode()
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    host, port = address.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(head + body[:10])
    return connection, body[10:]


def answer_of(connection: socket.socket) -> tuple[int, dict]:
    data = b""
    while chunk := connection.recv(65536):  # the server closes it after the answer
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_accepting_answers_the_request_in_flight_and_exits_0(checkpoint, stop):
    process, address = start(checkpoint)
    try:
        assert healthy(address)
        first = ask("POST", f"{address}/predict", json={"rows": [ROW]})
        assert first.status_code == 200 and first.json()["predictions"] == ["setosa"]
        connection, rest = half_sent(address)
        for _ in range(200):  # until the server counts the request in flight (and this one)
            if "nncli_requests_in_flight 2.0" in ask("GET", f"{address}/metrics").text:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the request never reached the server")
        process.send_signal(stop)
        assert refuses_connections(address)  # it stopped accepting; the request is still open
        connection.sendall(rest)
        status, answer = answer_of(connection)
        connection.close()
        code = process.wait(timeout=30)
        said = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (status, answer) == (200, first.json())
    assert code == 0, said
    assert "Traceback" not in said and said.strip().endswith("stopped")


def test_a_busy_port_is_one_line_and_exit_2(checkpoint):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", checkpoint, "--port", port)
    assert result.exit_code == 2
    assert result.stderr.startswith("nncli: error: --port: cannot listen on 127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_workers_each_load_the_model_and_stop_together(checkpoint):
    process, address = start(checkpoint, "--workers", "2")
    try:
        assert healthy(address)
        answers = [ask("POST", f"{address}/predict", json={"rows": [ROW]}) for _ in range(4)]
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert {a.status_code for a in answers} == {200}
    assert code == 0
