"""A response's head waits for its body and both leave as one send; a lone write leaves at the
end of the event loop's turn; closing sends what is held first."""

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


def test_a_head_leaves_with_its_body_and_a_lone_write_at_the_end_of_the_turn():
    head = b"HTTP/1.1 200 OK\r\n\r\n"

    async def main():
        transport = Transport()
        coalescing = Coalescing(transport, asyncio.get_running_loop())
        coalescing.write(head)
        coalescing.write(b"")
        held, waiting = list(transport.sent), coalescing.get_write_buffer_size()
        coalescing.write(bytearray(b'{"predictions": []}'))
        answered = list(transport.sent)  # at once: no turn waited
        coalescing.write(b"lone")
        before_turn = list(transport.sent)
        await asyncio.sleep(0)
        after_turn = list(transport.sent)
        coalescing.write(b"last")
        coalescing.close()  # what is held goes first
        return held, waiting, answered, before_turn, after_turn, transport, coalescing

    held, waiting, answered, before_turn, after_turn, transport, coalescing = asyncio.run(main())
    assert held == [] and waiting == len(head)
    assert answered == [head + b'{"predictions": []}'] and before_turn == answered
    assert after_turn == [*answered, b"lone"]
    assert transport.sent[2:] == [b"last"] and transport.closed
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
