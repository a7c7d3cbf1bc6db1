"""``api.lb.one_write.send_whole``: uvicorn's own HTTP protocol (httptools) on a transport that
records its writes: a whole answer leaves in one write, as uvicorn would have framed it."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.lifespan.off import LifespanOff
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from runplane.api.lb.one_write import send_whole


class Recorder(asyncio.Transport):
    """A socket's side of the protocol: what was written, and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.closed_by_server = False  # before the client went away

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        self.writes.append(b"".join(parts))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/two":  # the ordinary way, for comparison
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})
        return
    await send_whole(send, 201, [(b"content-length", b"5"), (b"x-a", b"b")], b"hello")


async def served(request: bytes) -> Recorder:
    config = Config(app=app, http="httptools", lifespan="off", access_log=False)
    config.load()
    protocol = HttpToolsProtocol(config=config, server_state=ServerState(),
                                 app_state=LifespanOff(config).state)
    transport = Recorder()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(50):  # the app runs as a task
        await asyncio.sleep(0)
    transport.closed_by_server = transport.closed
    protocol.connection_lost(None)
    return transport


async def test_a_whole_answer_is_one_write() -> None:
    two = await served(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(two.writes) == 2  # what uvicorn does by itself
    one = await served(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
    [answer] = one.writes
    assert answer.startswith(b"HTTP/1.1 201 Created\r\n") and answer.endswith(b"\r\n\r\nhello")
    assert b"x-a: b\r\n" in answer and b"content-length: 5\r\n" in answer
    assert not one.closed_by_server  # kept alive


async def test_a_close_uvicorn_asks_for_comes_after_the_write() -> None:
    done = await served(b"GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    [answer] = done.writes
    assert b"connection: close\r\n" in answer and answer.endswith(b"hello")
    assert done.closed_by_server
