"""A connection's writes within one turn of the event loop leave as one send (the head and the
body of a response together); closing sends what is pending first."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("uvicorn")

from nncli.serve.protocol import CoalescedHTTP, Coalescing  # noqa: E402
from nncli.serve.server import options  # noqa: E402
from nncli.serve.settings import Settings  # noqa: E402


class Transport:
    """What the socket's transport was asked: each write, and whether it was closed."""

    def __init__(self):
        self.sent, self.closed, self.aborted = [], False, False

    def write(self, data):
        self.sent.append(data)

    def is_closing(self):
        return self.closed or self.aborted

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True

    def get_write_buffer_size(self):
        return 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


def test_writes_of_one_turn_leave_as_one_send_at_its_end():
    async def main():
        transport = Transport()
        coalescing = Coalescing(transport, asyncio.get_running_loop())
        coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalescing.write(b"")
        coalescing.write(bytearray(b'{"predictions": []}'))
        before = list(transport.sent)
        waiting = coalescing.get_write_buffer_size()
        await asyncio.sleep(0)
        after_turn = list(transport.sent)
        coalescing.write(b"next")
        coalescing.close()  # what is pending goes first
        return before, waiting, after_turn, transport, coalescing

    before, waiting, after_turn, transport, coalescing = asyncio.run(main())
    assert before == [] and waiting == len(b"HTTP/1.1 200 OK\r\n\r\n") + 19
    assert after_turn == [b'HTTP/1.1 200 OK\r\n\r\n{"predictions": []}']
    assert transport.sent[1:] == [b"next"] and transport.closed
    assert coalescing.get_extra_info("peername") == ("127.0.0.1", 5)  # the transport's own


def test_an_aborted_or_closed_connection_sends_nothing_more():
    async def main():
        aborted, closed = Transport(), Transport()
        first = Coalescing(aborted, asyncio.get_running_loop())
        second = Coalescing(closed, asyncio.get_running_loop())
        first.write(b"lost")
        first.abort()
        second.write(b"late")
        closed.closed = True  # the peer went away before the turn ended
        await asyncio.sleep(0)
        return aborted, closed

    aborted, closed = asyncio.run(main())
    assert aborted.sent == [] and aborted.aborted and closed.sent == []


def test_the_server_speaks_the_coalesced_protocol():
    import uvicorn

    config = uvicorn.Config(lambda: None, **options(Settings()))
    config.load()
    assert config.http_protocol_class is CoalescedHTTP
