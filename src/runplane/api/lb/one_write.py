"""A whole small answer (status, headers, body) sent to the client in one socket write.

uvicorn writes an answer's head when the ASGI app sends ``http.response.start`` and its body
with each ``http.response.body``: two writes, two TCP segments and two wake-ups of the client
for an answer that is whole when it is sent. On loopback each write costs the sender the
receiver's TCP processing too; the load-balancing proxy's server spent ~40% of its CPU per
request in the kernel, a third of it on the second write. ``send_whole`` lets uvicorn build
both parts as usual (its checks, default headers, keep-alive and access log unchanged) into a
stand-in for its transport, then writes them at once.

It relies on uvicorn's ``RequestResponseCycle`` (``send`` is its bound method, writing to its
``transport`` attribute); anything else (another server, a test client, a wrapped ``send``)
gets the two ordinary messages.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Send


class _Collect:
    """Takes the cycle's writes (and a close after them) while the answer is built."""

    __slots__ = ("close_after", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.close_after = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> None:
        self.close_after = True

    def is_closing(self) -> bool:
        return False


async def send_whole(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                     body: bytes) -> None:
    """Send a complete answer (``headers`` should hold its Content-Length)."""
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or type(cycle).__module__.split(".")[0] != "uvicorn":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    collect = _Collect()
    cycle.transport = collect
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    finally:
        cycle.transport = transport
        if collect.parts:  # what uvicorn wrote, even when it raised part-way
            transport.writelines(collect.parts)  # one writev, no copy
        if collect.close_after:
            transport.close()
