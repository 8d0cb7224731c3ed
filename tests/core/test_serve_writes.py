"""WriteCombiner: the writes of one event-loop step reach the socket as one send, in order."""

from __future__ import annotations

import asyncio

from dk.serve.protocol import COMBINE_BYTES, WriteCombiner


class RecordingTransport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str):
        return f"info:{name}"


def _step(body) -> RecordingTransport:
    async def go():
        transport = RecordingTransport()
        combiner = WriteCombiner(transport, asyncio.get_running_loop())
        body(combiner)
        assert transport.writes == []  # nothing sent before the step ends
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return transport
    return asyncio.run(go())


def test_head_and_body_of_one_step_go_out_as_one_write():
    transport = _step(lambda c: (c.write(b"HTTP/1.1 200 OK\r\n\r\n"), c.write(b"body")))
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


def test_large_writes_go_out_as_they_came_and_in_order():
    big = b"x" * (COMBINE_BYTES + 1)
    transport = _step(lambda c: (c.write(b"head"), c.write(big)))
    assert transport.writes == [b"head", big]


def test_close_sends_what_is_pending_first_and_other_calls_reach_the_transport():
    async def go():
        transport = RecordingTransport()
        combiner = WriteCombiner(transport, asyncio.get_running_loop())
        combiner.write(b"error body")
        combiner.close()
        assert transport.writes == [b"error body"] and transport.closed
        await asyncio.sleep(0)  # the scheduled flush finds nothing left and writes nothing
        assert transport.writes == [b"error body"]
        assert combiner.get_extra_info("peername") == "info:peername"
    asyncio.run(go())
