"""Listening and stopping: ``listen`` binds the address before the model is served (a busy
port is one line, exit 2), ``run`` serves one process's app on it through uvicorn,
``run_workers`` starts K processes that each load the model once.

SIGTERM and Ctrl-C stop the server gracefully: it stops accepting, answers the requests in
flight (for at most ``GRACE`` seconds), ends the batcher, and the command returns (exit 0).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

from nncli.errors import SpecError
from nncli.serve.settings import Settings

GRACE = 8  # seconds the requests in flight get after a signal: the process ends within 10
BACKLOG = 2048  # uvicorn's own default


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); SpecError (exit 2) naming the
    address and the system's reason when it cannot be had. Made with the protocol getaddrinfo
    gives (IPPROTO_TCP), so asyncio sets TCP_NODELAY on its connections."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise SpecError(f"cannot listen on {host}:{port}: {reason}", field="--host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as err:
        sock.close()
        raise SpecError(
            f"cannot listen on {host}:{port}: {err.strerror or err}", field="--port"
        ) from None
    sock.set_inheritable(True)
    return sock


def url(sock: socket.socket) -> str:
    """``http://127.0.0.1:8000`` for a listening socket (its real port when 0 was asked)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def signals_end_serving() -> Iterator[None]:
    """uvicorn catches SIGTERM and SIGINT while it serves and raises them again once it has
    stopped; here they have done their work (a graceful stop), so they end nothing more."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for every process: quiet but for errors, no access log."""
    return {
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": GRACE,
        "lifespan": "on",
        "server_header": False,
    }


def run(app: Any, settings: Settings, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` in this process until SIGTERM or Ctrl-C."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, **options(settings)))
    with signals_end_serving():
        server.run(sockets=[sock])


def run_workers(factory: str, settings: Settings, sock: socket.socket) -> None:
    """``settings.workers`` processes, each building its app with ``factory`` (an import
    string, ``module:function``) and so loading the model once, all accepting on ``sock``;
    SIGTERM or Ctrl-C stops them all gracefully. (uvicorn's own ``workers=`` binds a socket
    of protocol 0, whose connections asyncio leaves without TCP_NODELAY: each response's body
    would wait for the client's delayed ACK.)"""
    import inspect

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(factory, factory=True, workers=settings.workers, **options(settings))
    server = uvicorn.Server(config)
    takes_target = "target" in inspect.signature(Multiprocess.__init__).parameters
    target = {"target": server.run} if takes_target else {}  # uvicorn before 0.30 takes one
    with signals_end_serving():
        Multiprocess(config, sockets=[sock], **target).run()
