"""WebSockets to load-balancing workers: the same checks as HTTP (``api.lb.proxy``), then the
connection to the worker's own address with the ``websockets`` library and every message
relayed both ways as it comes, until either side closes.

The caller's key is checked before the handshake is accepted (refusals are real HTTP answers
where the server supports ASGI's ``websocket.http.response``, else a close before accepting,
which uvicorn answers 403) and never passed on. The worker's chosen subprotocol is the one
accepted; ``X-Runpod-Worker-Id`` is on the handshake's answer. A connection holds its worker
as one request in flight for as long as it is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
import websockets
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect

from runplane.api.lb.headers import FORWARDED, WORKER_HEADER
from runplane.api.lb.proxy import LbProxy, ProxyError
from runplane.lb.pool import Route

log = logging.getLogger("runplane.lb")

# The handshake's own headers, hop-by-hop ones, the caller's key and its own X-Forwarded-*
# (runplane sets X-Forwarded-For itself) stay here.
_DROP = frozenset({b"host", b"authorization", b"connection", b"upgrade", b"sec-websocket-key",
                   b"sec-websocket-version", b"sec-websocket-extensions",
                   b"sec-websocket-protocol", b"sec-websocket-accept", WORKER_HEADER,
                   b"content-length", b"transfer-encoding", b"keep-alive", b"te", *FORWARDED})


async def websocket(proxy: LbProxy, scope: Scope, receive: Receive, send: Send,
                    endpoint_id: str, path: str) -> None:
    """Serve one WebSocket of a load-balancing endpoint."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    slot = route = None
    try:
        try:
            _, slot = proxy.admit(scope, endpoint_id)
            route = await proxy.worker(scope, endpoint_id)
            upstream = await _connect(proxy, scope, route, path)
        except ProxyError as err:
            await _refuse(scope, send, err)
            return
        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol,
                        "headers": [(WORKER_HEADER, route.worker.id.encode())]})
            await _relay(receive, send, upstream)
    finally:
        if route is not None:
            proxy.lb.release(route, True)
        if slot is not None:
            slot[0].release(slot[1])


async def _connect(proxy: LbProxy, scope: Scope, route: Route, path: str) -> ClientConnection:
    if route.tunnel is not None:  # a manual worker's tunnel carries HTTP only
        raise ProxyError(501, "WebSockets to a manual worker (runplane worker run) are not "
                              "supported", [(WORKER_HEADER, route.worker.id.encode())])
    query = scope.get("query_string") or b""
    url = route.address.url(path + ("?" + query.decode("latin-1") if query else ""))
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
               if k not in _DROP]
    client = scope.get("client")
    if client:
        headers.append(("X-Forwarded-For", client[0]))
    try:
        return await connect(
            "ws" + url[4:], additional_headers=headers, subprotocols=scope.get("subprotocols")
            or None, max_size=proxy.cfg.max_body_bytes, compression=None, proxy=None,
            user_agent_header=None, open_timeout=10, ping_interval=None)
    except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as err:
        raise ProxyError(502, f"the worker refused the WebSocket ({type(err).__name__})",
                         [(WORKER_HEADER, route.worker.id.encode())]) from None


async def _relay(receive: Receive, send: Send, upstream: ClientConnection) -> None:
    """Both directions until one side closes; the other is then closed with its code."""

    async def client_to_worker() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(message.get("code", 1000) if message.get("code") not in
                                     (1005, 1006) else 1000)
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])

    async def worker_to_client() -> None:
        try:
            async for data in upstream:
                if isinstance(data, bytes):
                    await send({"type": "websocket.send", "bytes": data})
                else:
                    await send({"type": "websocket.send", "text": data})
        except websockets.exceptions.ConnectionClosed:
            pass
        code = upstream.close_code or 1000
        with contextlib.suppress(Exception):  # the client may be gone already
            await send({"type": "websocket.close", "code": 1000 if code in (1005, 1006) else code,
                        "reason": upstream.close_reason or ""})

    tasks = [asyncio.create_task(client_to_worker()), asyncio.create_task(worker_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


async def _refuse(scope: Scope, send: Send, err: ProxyError) -> None:
    """Answer a handshake that is not accepted: with the status and body where possible."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = orjson.dumps(err.body)
        await send({"type": "websocket.http.response.start", "status": err.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *err.headers]})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008, "reason": str(err.body["error"])[:120]})
