"""One send a response: uvicorn writes a response's head and its body to the socket as two
sends (two system calls, and two wake-ups of the client, which reads the head and then waits
for the body). ``CoalescedHTTP``, the protocol of ``nncli serve``'s connections, gives its
HTTP protocol a ``Coalescing`` transport: a write waits for the next one and leaves with it,
as one send, or alone at the end of the event loop's turn when none comes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol


class Coalescing:
    """A connection's transport whose write (a response's head) is held until the next (its
    body), both then sent at once, or until the end of the event loop's turn (``flush``);
    closing sends what is held first. Every other attribute is the transport's own."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self.transport, self.loop = transport, loop
        self.pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.pending.append(bytes(data))
        if len(self.pending) > 1:
            self.flush()  # the body after its head: both leave now (the answer waits no turn)
        else:
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        if self.pending:
            data, self.pending = b"".join(self.pending), []
            if not self.transport.is_closing():
                self.transport.write(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.pending = []
        self.transport.abort()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + sum(map(len, self.pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CoalescedHTTP(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """The HTTP protocol uvicorn picks (``auto``: httptools if installed, else h11), each
    connection's transport ``Coalescing``."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(Coalescing(transport, asyncio.get_running_loop()))
