"""The accelerator's result delivery (``runplane_accelerator/delivery.py``) with the real
SDK's ``rp_http._transmit`` and real HTTP: a job-done post that cannot reach the server (no
server listening, or a kept-alive connection the server closed when it restarted) is sent
again until a server takes it, once; a stream post and an answered post are not."""

from __future__ import annotations

import asyncio
import socket
import sys
import types
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from runpod.serverless.modules import rp_http

from runplane.accelerator import SITE_DIR

sys.path.insert(0, str(SITE_DIR))
from runplane_accelerator import delivery


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _patched(port: int) -> types.ModuleType:
    """A copy of the SDK's rp_http as a worker of a runplane server on ``port`` has it."""
    module = types.ModuleType("rp_http_copy")
    module._transmit = rp_http._transmit  # type: ignore[attr-defined]
    module.JOB_DONE_URL = f"http://127.0.0.1:{port}/v2/e/job-done/w1/$ID?gpu="  # type: ignore[attr-defined]
    delivery.install(module)
    return module


async def _serve(port: int, got: list[str], status: int = 200) -> web.AppRunner:
    async def done(request: web.Request) -> web.Response:
        got.append(await request.text())
        return web.json_response({}, status=status)

    app = web.Application()
    app.router.add_post("/v2/e/{kind}/w1/{job}", done)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _url(port: int, kind: str = "job-done") -> str:
    return f"http://127.0.0.1:{port}/v2/e/{kind}/w1/j1?gpu=&isStream=false"


async def test_a_result_waits_for_a_server_that_is_not_up_yet(
        session: aiohttp.ClientSession) -> None:
    port = _free_port()
    module, got = _patched(port), []
    post = asyncio.create_task(module._transmit(session, _url(port), '{"output": 1}'))
    await asyncio.sleep(0.4)  # refused a few times meanwhile
    assert not post.done()
    runner = await _serve(port, got)
    try:
        await asyncio.wait_for(post, 10)
        assert got == ['{"output": 1}']
    finally:
        await runner.cleanup()


async def test_a_result_the_server_died_on_is_sent_to_the_restarted_one(
        session: aiohttp.ClientSession) -> None:
    """The server reads the post and dies before it answers ("Server disconnected"); the
    restarted server gets the result."""
    port = _free_port()
    module, got = _patched(port), []
    heard = asyncio.Event()

    async def die(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        heard.set()
        writer.transport.abort()

    dying = await asyncio.start_server(die, "127.0.0.1", port, reuse_address=True)
    post = asyncio.create_task(module._transmit(session, _url(port), "result"))
    await asyncio.wait_for(heard.wait(), 10)
    dying.close()
    await dying.wait_closed()
    runner = await _serve(port, got)
    try:
        await asyncio.wait_for(post, 10)
        assert got == ["result"]
    finally:
        await runner.cleanup()


async def test_a_stream_post_is_posted_once(session: aiohttp.ClientSession) -> None:
    """A stream chunk is not sent again (a repeat could show it twice): the SDK's own error."""
    port = _free_port()
    with pytest.raises(aiohttp.ClientConnectionError):
        await asyncio.wait_for(_patched(port)._transmit(session, _url(port, "job-stream"),
                                                        "chunk"), 5)


async def test_an_answer_ends_it_whatever_its_status(session: aiohttp.ClientSession) -> None:
    port = _free_port()
    got: list[str] = []
    runner = await _serve(port, got, status=400)
    try:
        with pytest.raises(aiohttp.ClientResponseError):
            await _patched(port)._transmit(session, _url(port), "refused")
        assert got == ["refused"]
    finally:
        await runner.cleanup()


def test_an_sdk_without_a_job_done_url_is_left_alone() -> None:
    module = types.ModuleType("rp_http_copy")
    module._transmit = rp_http._transmit  # type: ignore[attr-defined]
    module.JOB_DONE_URL = "JOB_DONE_URL"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"\$ID"):
        delivery.install(module)
    assert module._transmit is rp_http._transmit
