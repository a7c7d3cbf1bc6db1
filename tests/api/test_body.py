"""``api.http.body``: the one ASGI body reader of /v2, the LB proxy and its tunnels — the
whole body under a limit (one message answered straight from it), the body as it streams,
and the same two refusals for every caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Message

from runplane.api.http.body import (
    BodyTooLarge,
    ClientGone,
    read_body,
    stream_body,
    until_disconnect,
)


def messages(*bodies: bytes, then_gone: bool = False) -> Callable[[], Awaitable[Message]]:
    """An ASGI ``receive`` that delivers ``bodies`` as ``http.request`` messages (the last
    without ``more_body`` unless the client then hangs up), then ``http.disconnect``."""
    queue: list[Message] = [
        {"type": "http.request", "body": b, "more_body": then_gone or i < len(bodies) - 1}
        for i, b in enumerate(bodies)]

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive


async def test_whole_bodies_in_one_message_or_many() -> None:
    body = b'{"input": {"n": 1}}'
    one = await read_body(messages(body), 100)
    assert one is body  # the one message's own bytes: nothing joined or copied
    assert await read_body(messages(b"ab", b"", b"cd"), 4) == b"abcd"
    assert await read_body(messages(b""), 0) == b""
    assert await read_body(messages(b"x" * 10_000)) == b"x" * 10_000  # no limit


@pytest.mark.parametrize("bodies", [(b"x" * 5,), (b"xx", b"xx", b"xx"), (b"x" * 5, b"")])
async def test_past_the_limit_in_any_message(bodies: tuple[bytes, ...]) -> None:
    with pytest.raises(BodyTooLarge) as caught:
        await read_body(messages(*bodies), 4)
    assert caught.value.limit == 4
    assert str(caught.value) == "request body larger than the 4-byte limit of this route"


async def test_a_client_gone_before_its_body_is_whole() -> None:
    with pytest.raises(ClientGone):
        await read_body(messages(), 10)
    with pytest.raises(ClientGone):
        await read_body(messages(b"half", then_gone=True), 10)


async def test_streamed_chunks_empty_ones_skipped_and_the_same_refusals() -> None:
    assert [c async for c in stream_body(messages(b"ab", b"", b"cd"), 4)] == [b"ab", b"cd"]
    got: list[bytes] = []
    with pytest.raises(BodyTooLarge):
        async for chunk in stream_body(messages(b"ab", b"cd", b"e"), 4):
            got.append(chunk)
    assert got == [b"ab", b"cd"]  # the chunk past the limit is never handed on
    got = []
    with pytest.raises(ClientGone):
        async for chunk in stream_body(messages(b"ab", then_gone=True), 4):
            got.append(chunk)
    assert got == [b"ab"]


async def test_until_disconnect_reads_past_the_body() -> None:
    await until_disconnect(messages(b"ab", b"cd"))  # returns: it ends with the disconnect
