"""Reading an ASGI request body: the one reader of every surface that reads ``receive``
itself (the /v2 job API, the load-balancing proxy and its tunnels; FastAPI's routes read
theirs through Starlette).

Two forms: ``read_body``, the whole body under a limit, and ``stream_body``, the body as it
arrives. Both raise the same two errors, which each caller answers in its own surface's
shape: ``BodyTooLarge`` past the limit, ``ClientGone`` when the client hung up before the
body was whole (what it sent is then never passed on as if it were complete).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Receive


class BodyTooLarge(Exception):
    """The body passed ``limit`` bytes (a chunked body declares no length, so this can come
    while it streams)."""

    def __init__(self, limit: int) -> None:
        super().__init__(too_large(limit))
        self.limit = limit


class ClientGone(Exception):
    """The client hung up (``http.disconnect``) before its body was whole."""


def too_large(limit: int) -> str:
    """The words of a 413 for a body over ``limit`` bytes (/v1, REST v2 and /v2 alike)."""
    return f"request body larger than the {limit:,}-byte limit of this route"


async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    """The whole body (``limit``: at most that many bytes, None for no limit).

    Nearly every body the hot paths read (a /run, a job-done, a proxied JSON request) comes
    in one ``http.request`` message: that one is answered straight from it, with no loop, no
    list and no async generator, which is why this is not ``b"".join(stream_body(...))``."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone()
    body: bytes = message.get("body", b"")
    total = len(body)
    if limit is not None and total > limit:
        raise BodyTooLarge(limit)
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body = message.get("body", b"")
        total += len(body)
        if limit is not None and total > limit:
            raise BodyTooLarge(limit)
        chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def stream_body(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive (empty ones skipped); stops with ``BodyTooLarge``
    before yielding the chunk that passes ``limit``, and with ``ClientGone`` when the client
    hangs up."""
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body = message.get("body", b"")
        total += len(body)
        if total > limit:
            raise BodyTooLarge(limit)
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def until_disconnect(receive: Receive) -> None:
    """Returns once the client has hung up (its body, if any, already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
