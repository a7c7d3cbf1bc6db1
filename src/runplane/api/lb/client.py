"""The load-balancing proxy's HTTP/1.1 client to its workers: keep-alive connections per
worker address, a request written in one piece, the answer parsed by httptools (as uvicorn
parses requests) and handed over as it arrives, with back-pressure both ways.

Why not aiohttp: it cost about 50 µs of the proxy's ~150 µs of CPU per request (request and
URL objects, auto headers, cookies, timers, its stream reader), for features a hop to a
worker never needs: a worker is an address the provider gave (no DNS, TLS, proxies,
redirects, cookies, decompression). Nothing is added to the request or the answer here: the
proxy (``api.lb.proxy``) builds the request head and filters the answer's headers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Callable

import httptools

# aiohttp's rule, kept: a request on a reused keep-alive connection that the worker closed
# before answering (it timed the connection out just as the request went) is sent again once
# on a new connection when repeating it is harmless.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# An idle connection is reused for this long: under common servers' keep-alive timeouts
# (uvicorn's is 5 s), so the worker rarely closes one just as a request is sent on it.
IDLE_S = 4.0
# The answer's body buffered here from a worker faster than its client: past HIGH the
# worker's socket is not read until the client has taken what was buffered.
HIGH = 256 * 1024


class UpstreamError(Exception):
    """The worker could not be reached, or closed the connection before its answer ended
    (``str()`` names the cause: ``ConnectionRefusedError``, ``TimeoutError``...)."""


class Upstream(asyncio.Protocol):
    """One keep-alive connection to a worker and the answer being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, int]) -> None:
        self.loop = loop
        self.key = key  # the worker's (host, port)
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        # Set while the connection waits in the pool: the pool forgets it once it closes.
        self.on_idle_lost: Callable[[Upstream], None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self.reset(head_only=False)

    def reset(self, head_only: bool) -> None:
        """Ready for the next request's answer (``head_only``: it answers a HEAD)."""
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.got_bytes = False
        self.head_only = head_only
        self._until_eof = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._read_paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.complete:  # bytes after the answer (or on an idle connection): not HTTP we use
            self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            self.error = UpstreamError(f"bad HTTP from the worker: {err}")
            self.abort()
            self._wake()
        except httptools.HttpParserUpgrade:
            # A 101 (or an Upgrade answer): a plain HTTP request never asked to switch
            # protocols, and the caller's connection is not handed over (WebSockets are
            # api.lb.ws's). Not an answer: the proxy says 502.
            self.error = UpstreamError("the worker switched protocols on an HTTP request")
            self.abort()
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        forget, self.on_idle_lost = self.on_idle_lost, None
        if forget is not None:  # (a worker that stopped: nothing keeps its connections)
            forget(self)
        if not self.complete:
            if self.head_done and self._until_eof:
                self.complete = True  # an answer without a length ends with its connection
            elif self.error is None:
                self.error = exc or ConnectionResetError("the worker closed the connection")
        self._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 1xx (103 Early Hints...): informational, the answer follows
            self.headers = []
            return
        self.status = status
        self.head_done = True
        if self.head_only or status in (204, 304):
            self._until_eof = False
        else:
            framed = False
            for k, v in self.headers:
                k = k.lower()
                if k == b"content-length" or (k == b"transfer-encoding"
                                              and b"chunked" in v.lower()):
                    framed = True
                    break
            self._until_eof = not framed
        if self.head_only:  # the parser would wait for the body a HEAD answer announces
            self.complete = True
            self.keep_alive = False  # so the connection is not reused
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH and not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.head_done:  # the end of a 1xx
            return
        if not self.head_only:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # -- the proxy's side ---------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _failure(self) -> UpstreamError:
        """What ``error`` says, as the proxy's UpstreamError: its own words when it has
        them, else the kind of failure (``ConnectionResetError``...)."""
        if isinstance(self.error, UpstreamError):
            return UpstreamError(str(self.error))
        return UpstreamError(type(self.error).__name__)

    async def head(self) -> None:
        """Wait for the answer's status and headers (``status``, ``headers``)."""
        while not self.head_done:
            if self.error is not None:
                raise self._failure()
            await self._wait()

    def content_length(self) -> int | None:
        """The answer's Content-Length, None when it has none (chunked, or until close)."""
        for k, v in self.headers:
            if k.lower() == b"content-length":
                try:
                    return int(v)
                except ValueError:
                    return None
        return None

    async def read(self) -> bytes:
        """The whole body (for answers known to be small)."""
        while not self.complete:
            if self.error is not None:
                raise self._failure()
            await self._wait()
        chunks = self._chunks
        if len(chunks) == 1:
            body = chunks.popleft()
        else:
            body = b"".join(chunks)
            chunks.clear()
        self._buffered = 0
        return body

    async def next_chunk(self) -> bytes:
        """What has arrived of the body since the last call, waiting for some; b"" at its
        end. UpstreamError when the worker went away before the end."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                if self._read_paused and self.transport is not None and not self.closed:
                    self._read_paused = False
                    self.transport.resume_reading()
                return data
            if self.complete:
                return b""
            if self.error is not None:
                raise self._failure()
            await self._wait()

    async def upload(self, body: AsyncIterable[bytes], chunked: bool) -> None:
        """Send a streamed request body (after the head), chunk-encoded when ``chunked``;
        stops early when the worker closed the connection (its answer, if any, is read)."""
        transport = self.transport
        assert transport is not None
        async for data in body:
            if self.closed or self.complete:
                return
            transport.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            if self._write_paused:
                self._drain = self.loop.create_future()
                try:
                    await self._drain
                finally:
                    self._drain = None
        if chunked and not self.closed:
            transport.write(b"0\r\n\r\n")

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True


class WorkerClient:
    """The proxy's connections to its workers, kept alive per ``(host, port)``."""

    def __init__(self, connect_timeout_s: float = 10.0, idle_s: float = IDLE_S) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.idle_s = idle_s
        self._idle: dict[tuple[str, int], list[Upstream]] = {}

    async def request(self, host: str, port: int, head: bytes, body: bytes = b"",
                      stream: AsyncIterable[bytes] | None = None, chunked: bool = False,
                      retry: bool = False, head_only: bool = False) -> Upstream:
        """Send ``head`` (the request line and headers, ending in a blank line) and ``body``
        or ``stream`` to the worker; the connection once the answer's head is in. Hand it to
        ``release`` when done with it (always: it closes what cannot be reused). ``retry``:
        the request may be sent again once (see IDEMPOTENT)."""
        key = (host, port)
        while True:
            conn = await self._connection(key)
            conn.reset(head_only)
            try:
                transport = conn.transport
                assert transport is not None
                if body:
                    transport.writelines((head, body))  # one send
                else:
                    transport.write(head)
                if stream is not None:
                    await conn.upload(stream, chunked)
                await conn.head()
                return conn
            except UpstreamError:
                conn.abort()
                if not (retry and conn.reused and not conn.got_bytes):
                    raise
                retry = False
            except BaseException:
                conn.abort()
                raise

    def release(self, conn: Upstream) -> None:
        """The proxy is done with ``conn``: kept for the next request to the same worker when
        its answer was read to the end and both sides keep it alive; else closed."""
        if conn.closed or not conn.complete or not conn.keep_alive or conn.error is not None:
            conn.abort()
            return
        conn.reused = True
        conn.idle_since = conn.loop.time()
        conn.on_idle_lost = self._forget
        self._idle.setdefault(conn.key, []).append(conn)

    def _forget(self, conn: Upstream) -> None:
        pool = self._idle.get(conn.key)
        if pool is not None and conn in pool:
            pool.remove(conn)
            if not pool:
                del self._idle[conn.key]

    async def _connection(self, key: tuple[str, int]) -> Upstream:
        pool = self._idle.get(key)
        if pool:
            now = asyncio.get_running_loop().time()
            while pool:
                conn = pool.pop()  # the most recently used: the least likely to time out
                conn.on_idle_lost = None
                if not conn.closed and now - conn.idle_since < self.idle_s:
                    if not pool:
                        del self._idle[key]
                    return conn
                conn.abort()
            self._idle.pop(key, None)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(lambda: Upstream(loop, key), *key)
        except (OSError, TimeoutError) as err:
            raise UpstreamError(type(err).__name__) from None
        return conn

    def close(self) -> None:
        """Close every idle connection (the server is stopping)."""
        pools, self._idle = list(self._idle.values()), {}
        for pool in pools:
            for conn in list(pool):
                conn.abort()
