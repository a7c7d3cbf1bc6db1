"""The proxy's HTTP/1.1 client to load-balancing workers (``api.lb.client``) against real
sockets on loopback: a scripted worker answers byte for byte what each test needs (keep-alive,
closing a kept connection, HEAD, chunked and unsized answers, slow readers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from runplane.api.lb.client import HIGH, UpstreamError, WorkerClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request: its head and its body (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            body += (await reader.readexactly(size + 2))[:-2]
            if size == 0:
                return head, body
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return head, await reader.readexactly(int(line.split(b":")[1]))
    return head, b""


@pytest.fixture
async def worker() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[int, list[int]]]]]:
    """``await worker(handler)``: a server on loopback whose connections ``handler`` serves
    (with the connection's number); its port and the numbers of the connections made."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> tuple[int, list[int]]:
        made: list[int] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            made.append(len(made))
            try:
                await handler(reader, writer, made[-1])
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1], made

    yield start
    for server in servers:
        server.close()


def get(path: str = "/", method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: w\r\n{extra}\r\n".encode()


async def test_keep_alive_reuses_one_connection(worker) -> None:  # type: ignore[no-untyped-def]
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok")

    port, made = await worker(answer)
    client = WorkerClient()
    for _ in range(3):
        conn = await client.request("127.0.0.1", port, get())
        assert conn.status == 200 and (b"X-A", b"b") in conn.headers
        assert await conn.read() == b"ok"
        client.release(conn)
    assert made == [0]
    client.close()


async def test_a_kept_connection_the_worker_closed_is_retried_once_when_idempotent(
        worker) -> None:  # type: ignore[no-untyped-def]
    """The worker closes a kept-alive connection as the next request arrives on it (its
    keep-alive timeout racing the request): a GET goes again on a new connection, a POST is a
    502 (it may have been processed)."""
    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the next request: dropped, connection closed

    port, made = await worker(answer_once)
    client = WorkerClient()
    conn = await client.request("127.0.0.1", port, get())
    assert await conn.read() == b"ok"
    client.release(conn)
    conn = await client.request("127.0.0.1", port, get(), retry=True)
    assert await conn.read() == b"ok" and made == [0, 1]
    client.release(conn)
    with pytest.raises(UpstreamError):
        await client.request("127.0.0.1", port, get(method="POST", extra="Content-Length: 1\r\n"),
                             b"x", retry=False)
    client.close()


async def test_a_kept_connection_the_worker_closes_is_forgotten(
        worker) -> None:  # type: ignore[no-untyped-def]
    """A worker that stops (or times out its idle connections): nothing of it stays kept."""
    async def answer_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                               _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)  # then closes, the connection idle in the client's pool

    port, _ = await worker(answer_and_close)
    client = WorkerClient()
    conn = await client.request("127.0.0.1", port, get())
    assert await conn.read() == b"ok"
    client.release(conn)
    assert client._idle == {("127.0.0.1", port): [conn]}
    for _ in range(100):
        await asyncio.sleep(0.01)
        if conn.closed:
            break
    assert conn.closed and client._idle == {}
    client.close()


async def test_head_chunked_and_unsized_answers(worker) -> None:  # type: ignore[no-untyped-def]
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            head, _ = await read_request(reader)
            if head.startswith(b"HEAD"):  # announces a body it does not send
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            elif b"/chunked" in head:
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3\r\nabc\r\n")
                await writer.drain()
                await asyncio.sleep(0.2)  # the first chunk is out before the rest exists
                writer.write(b"2\r\nde\r\n0\r\n\r\n")
            else:  # no length: the body ends with the connection
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close")
                await writer.drain()
                return

    port, _ = await worker(answer)
    client = WorkerClient()
    conn = await asyncio.wait_for(
        client.request("127.0.0.1", port, get(method="HEAD"), head_only=True), 5)
    assert conn.status == 200 and conn.content_length() == 1000
    assert await conn.read() == b""
    client.release(conn)
    assert conn.closed  # not reused: its parser still waits for the announced body
    conn = await client.request("127.0.0.1", port, get("/chunked"))
    assert conn.content_length() is None
    assert await conn.next_chunk() == b"abc"
    assert await conn.next_chunk() == b"de"
    assert await conn.next_chunk() == b""
    client.release(conn)
    conn = await client.request("127.0.0.1", port, get("/unsized"))
    assert await conn.read() == b"until-close"
    client.release(conn)
    client.close()


async def test_streamed_upload_and_a_slow_reader(worker) -> None:  # type: ignore[no-untyped-def]
    got: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        _, body = await read_request(reader)
        got.append(body)
        size = 4 * HIGH
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"z" * size)
        await writer.drain()
        await asyncio.sleep(1)

    async def parts() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([65 + i]) * 10_000

    port, _ = await worker(answer)
    client = WorkerClient()
    conn = await client.request("127.0.0.1", port, get(extra="Transfer-Encoding: chunked\r\n"),
                                stream=parts(), chunked=True)
    assert got == [b"".join(bytes([65 + i]) * 10_000 for i in range(5))]
    # Nobody takes the answer: the worker's socket stops being read past HIGH.
    for _ in range(100):
        await asyncio.sleep(0.01)
        if conn.transport is not None and not conn.transport.is_reading():
            break
    assert conn.transport is not None and not conn.transport.is_reading()
    total = 0
    while chunk := await conn.next_chunk():
        total += len(chunk)
    assert total == 4 * HIGH
    client.release(conn)
    client.close()


async def test_nothing_listening_is_an_upstream_error() -> None:
    from runplane.providers.http_ports import free_port

    client = WorkerClient()
    with pytest.raises(UpstreamError, match="ConnectionRefusedError"):
        await client.request("127.0.0.1", free_port(), get())
