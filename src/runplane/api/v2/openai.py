"""The OpenAI-compatible passthrough: ``/v2/{endpointId}/openai/v1/...`` (RunPod's).

A request becomes a job of the endpoint whose input is ``{"openai_route": "/v1/...",
"openai_input": <the request body>}`` (``{}`` for a GET such as ``/v1/models``), which a
vLLM-style handler answers (``examples/openai_echo``). Without ``"stream": true`` the
reply is the worker's output (``wire.openai_response``); with it, the chunks the worker
streams go back as the OpenAI Server-Sent Events stream (``wire.openai_sse``) as they
arrive, ended by ``data: [DONE]``. The reply starts only with the first chunk, so a request
that fails before it streams anything is answered with its error status, as OpenAI does.

Same key, ownership and rate limits as the other job routes (``client.authorized_endpoint``);
its bytes count against the queue's cap and the held-bytes budgets as a ``/run``'s do.
A client that goes away before the end cancels its job: nobody could read its result.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from runplane.api.http.errors import ApiError, bad_request
from runplane.api.v2.client import authorized_endpoint
from runplane.api.v2.http import Req, parse_json, send_json
from runplane.api.v2.wire import (
    DEFAULT_TTL_MS,
    OPENAI_DONE,
    openai_error,
    openai_response,
    openai_sse,
    openai_status,
)
from runplane.broker.broker import Broker
from runplane.broker.models import COMPLETED, Job
from runplane.errors import Unavailable

# A comment line this often keeps a quiet stream (and proxies in between) alive.
KEEPALIVE_S = 15.0
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]


async def openai(req: Req) -> None:
    """Any method on ``/v2/{endpointId}/openai/v1/<route>``: one job, answered as OpenAI."""
    principal, endpoint_id = authorized_endpoint(req)
    if len(req.parts) < 4 or req.parts[2] != "v1" or not all(req.parts[3:]):
        raise ApiError(404, "no such route: the OpenAI-compatible routes are /openai/v1/...")
    route = "/" + "/".join(req.parts[2:])
    body: Any = {}
    raw = await req.body()  # (a GET's is empty: the next receive() means a disconnect)
    if req.method == "POST":
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise bad_request("request body must be a JSON object")
    broker = req.services.broker
    job = await broker.submit(
        endpoint_id, principal.user_id, {"input": {"openai_route": route, "openai_input": body}},
        sync=True, ttl_ms=DEFAULT_TTL_MS, execution_timeout_ms=None, low_priority=False,
        webhook=None, size=len(raw) + len(route),
    )
    disconnect = req.disconnect_watcher()
    try:
        if body.get("stream") is True:
            await _stream(req, broker, job, disconnect)
        else:
            await _answer(req, broker, job, disconnect)
    finally:
        disconnect.cancel()
        if disconnect.done() and not job.final and not job.deleted:
            # Nobody is left to answer. A slow store only delays the cancel's write (it
            # stands, and is kept until stored): nothing to tell a client that is gone.
            with contextlib.suppress(Unavailable):
                await broker.cancel(job)


def _ended(broker: Broker, job: Job) -> bool:
    return (job.final and job.settled) or job.deleted or broker.closed


async def _changed(broker: Broker, job: Job, disconnect: asyncio.Future, timeout: float) -> bool:
    """Wait for the job's next chunk or end, at most ``timeout`` s; False once the client is
    gone (woken by the job's events, not polled)."""
    change = asyncio.ensure_future(broker.wait_change(job, timeout))
    await asyncio.wait({change, disconnect}, return_when=asyncio.FIRST_COMPLETED)
    if not change.done():
        change.cancel()
    return not disconnect.done()


def _final_answer(broker: Broker, job: Job) -> tuple[int, Any]:
    """An ended job's answer, when it is not streamed (or the server is stopping)."""
    if job.deleted:
        return 504, openai_error(f"request {job.id} expired before it ran (its TTL)", "timeout")
    if not job.final:
        return 503, openai_error("the server is shutting down; retry the request")
    return openai_response(job, broker.chunks(job))


async def _answer(req: Req, broker: Broker, job: Job, disconnect: asyncio.Future) -> None:
    while not _ended(broker, job):
        if not await _changed(broker, job, disconnect, KEEPALIVE_S):
            return
    status, body = _final_answer(broker, job)
    await send_json(req.send, body, status)


async def _stream(req: Req, broker: Broker, job: Job, disconnect: asyncio.Future) -> None:
    send = req.send
    # Up to the first chunk (or the end): until then an error can still be a status.
    while True:
        ended = _ended(broker, job)
        chunks = broker.chunks(job)
        if chunks or ended:
            break
        if not await _changed(broker, job, disconnect, KEEPALIVE_S):
            return
    if not chunks and (job.status != COMPLETED or not job.settled or job.output is None):
        status, body = _final_answer(broker, job)
        await send_json(send, body, status)
        return
    if len(chunks) == 1 and openai_status(chunks[0]) != 200:  # the handler's error object
        await send_json(send, chunks[0], openai_status(chunks[0]))
        return
    if not chunks:  # a handler that returned its whole stream (not a generator)
        chunks = [job.output]
    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
    cursor = len(chunks)  # (when they are the output, the job has ended: no more)
    done = False
    while True:
        data = b"".join(openai_sse(c) for c in chunks)
        done = done or OPENAI_DONE in data
        if data:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        if ended:
            break
        if not await _changed(broker, job, disconnect, KEEPALIVE_S):
            return
        ended = _ended(broker, job)  # before the chunks: chunks always precede the end
        chunks = broker.chunks(job, cursor)
        cursor += len(chunks)
        if not chunks and not ended:
            await send({"type": "http.response.body", "body": b": keep-alive\n\n",
                        "more_body": True})
    if job.status != COMPLETED or not job.settled:
        _, error = _final_answer(broker, job)
        tail = b"data: " + orjson.dumps(error) + b"\n\n"
    else:
        tail = b"" if done else OPENAI_DONE
    await send({"type": "http.response.body", "body": tail})
