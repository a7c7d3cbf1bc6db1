"""The server's end of a manual load-balancing worker's tunnel (framing: ``lb.tunnel``).

``runplane worker run`` of a load-balancing endpoint opens a WebSocket to
``/v2/{endpointId}/workers/{workerId}/tunnel`` with the worker's own credential (the token
its registration returned; good only for that worker of that endpoint). While the socket is
open the worker has a route in ``lb.pool.LoadBalancer`` (``Route.tunnel``): it is in rotation
while the health it reports says 200 (``lb.health.judge``, RunPod's rules), and out of it
when the socket closes. The proxy (``api.lb.proxy``) hands a request routed to it to
:meth:`WorkerTunnel.forward`, which sends it down the socket in frames and streams the answer
back as its frames arrive. The server never connects anywhere for it: the worker dialled in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

import orjson
from starlette.types import Receive, Scope, Send

from runplane.api.http.auth import worker_by_credential
from runplane.api.http.body import BodyTooLarge, ClientGone, stream_body
from runplane.api.http.errors import ApiError
from runplane.api.lb.headers import DROP_REQUEST, WORKER_HEADER, answer_header
from runplane.api.lb.proxy import header
from runplane.broker.models import Worker
from runplane.errors import RateLimited
from runplane.lb import tunnel as t
from runplane.lb.pool import Route
from runplane.lb.prober import health_path, record_health
from runplane.system import Services

log = logging.getLogger("runplane.lb")

_CLOSED = t.Frame(t.ERROR, 1, b"the worker's tunnel closed")


class WorkerTunnel:
    """One open tunnel: the requests in flight through it, each a queue of its frames."""

    def __init__(self, send: Send, worker: Worker, limit: int) -> None:
        self._send = send
        self._lock = asyncio.Lock()  # one WebSocket message at a time
        self.worker = worker
        self._limit = limit
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Queue[t.Frame]] = {}
        self.closed = False

    async def _message(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionError("tunnel closed")
        async with self._lock:
            try:
                await self._send({"type": "websocket.send", "bytes": data})
            except (OSError, RuntimeError) as err:  # uvicorn's: the socket is gone
                raise ConnectionError(f"tunnel closed ({type(err).__name__})") from err

    def deliver(self, frame: t.Frame) -> None:
        """A frame of a request's answer (one no longer waited for is dropped)."""
        queue = self._pending.get(frame.rid)
        if queue is not None:
            queue.put_nowait(frame)

    def close(self) -> None:
        """The socket closed: every request still waiting for its answer fails."""
        self.closed = True
        for queue in self._pending.values():
            queue.put_nowait(_CLOSED)

    async def forward(self, scope: Scope, receive: Receive, send: Send, path: str,
                      started: list[bool]) -> bool:
        """Serve one request through the tunnel (``lb.tunnel.TunnelLink``); answers the
        caller itself, errors included (502: the worker did not answer; 413: body over the
        limit). True when the worker answered."""
        rid = next(self._ids) % t.MAX_ID or 1
        queue: asyncio.Queue[t.Frame] = asyncio.Queue()
        self._pending[rid] = queue
        wid = self.worker.id.encode()
        done = False
        try:
            head = _request_head(scope, path)
            try:
                await self._message(t.encode(t.HEAD, rid, t.request_head(head)))
                if head.has_body and not await self._body(receive, rid, send):
                    return False
                await self._message(t.encode(t.END, rid))
            except ConnectionError:
                await _error(send, 502, "the worker did not answer (its tunnel closed)", wid)
                return False
            frame = await queue.get()
            if frame.kind != t.HEAD:
                await _error(send, 502, "the worker did not answer ("
                             + frame.payload.decode("utf-8", "replace")[:200] + ")", wid)
                done = True
                return False
            try:
                answer = t.parse_response_head(frame.payload)
            except t.BadFrame as err:
                await _error(send, 502, f"the worker's answer is malformed ({err})", wid)
                return False
            if answer.status < 200:  # no protocol switch (or interim answer) for a caller
                await _error(send, 502, f"the worker answered {answer.status}, which this "
                             "hop cannot pass on", wid)
                return False
            headers = [h for h in (answer_header(k, v) for k, v in answer.headers) if h]
            length = next((v for k, v in headers if k == b"content-length"), None)
            if length is not None and (not length.isdigit() or int(length) > self._limit):
                await _error(send, 502, f"the worker's response is over {self._limit} bytes",
                             wid)
                return False
            headers.append((WORKER_HEADER, wid))
            await send({"type": "http.response.start", "status": answer.status,
                        "headers": headers})
            started[0] = True
            sent = 0
            while True:
                frame = await queue.get()
                if frame.kind != t.BODY:
                    done = frame.kind in (t.END, t.ERROR)
                    break  # END; or the worker or its tunnel went away: the answer just ends
                sent += len(frame.payload)
                if sent > self._limit:  # RunPod's 30 MB: the stream is cut here
                    break
                await send({"type": "http.response.body", "body": frame.payload,
                            "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return True
        finally:
            self._pending.pop(rid, None)
            if not done and not self.closed:  # the caller left, timed out, or was cut off
                with contextlib.suppress(Exception):
                    await self._message(t.encode(t.CANCEL, rid))

    async def _body(self, receive: Receive, rid: int, send: Send) -> bool:
        """Stream the request body down the tunnel as it arrives; False (answered 413, or
        the caller hung up) when it cannot be passed on whole."""
        try:
            async for body in stream_body(receive, self._limit):
                for piece in t.chunks(body):
                    await self._message(t.encode(t.BODY, rid, piece))
        except ClientGone:
            return False
        except BodyTooLarge:
            await _error(send, 413, f"request body over {self._limit} bytes", None)
            return False
        return True


def _request_head(scope: Scope, path: str) -> t.RequestHead:
    headers: t.Headers = []
    host = None
    has_body = False
    for k, v in scope["headers"]:
        if k == b"host":
            host = v
        elif k == b"transfer-encoding":
            has_body = True
        elif k == b"content-length":
            has_body = has_body or v not in (b"0", b"")
        if k not in DROP_REQUEST:
            headers.append((k.decode("latin-1"), v.decode("latin-1")))
    client = scope.get("client")
    if client:
        headers.append(("X-Forwarded-For", client[0]))
    headers.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
    if host:
        headers.append(("X-Forwarded-Host", host.decode("latin-1")))
    query = scope.get("query_string") or b""
    return t.RequestHead(scope["method"], path if path.startswith("/") else "/" + path,
                         query.decode("latin-1"), headers, has_body)


async def _error(send: Send, status: int, error: str, wid: bytes | None) -> None:
    body = orjson.dumps({"error": error})
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if wid is not None:
        headers.append((WORKER_HEADER, wid))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def is_tunnel_path(path: str) -> bool:
    """``/v2/{endpointId}/workers/{workerId}/tunnel``."""
    parts = path.split("/")
    return len(parts) == 6 and parts[1] == "v2" and parts[3] == "workers" and \
        parts[5] == "tunnel"


async def tunnel_route(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """The WebSocket of ``is_tunnel_path``: checks the worker's credential against the
    worker and endpoint of the path, then routes to the worker while the socket is open."""
    if (await receive())["type"] != "websocket.connect":
        return
    _, _, endpoint_id, _, worker_id, _ = scope["path"].split("/")
    try:
        worker = _authorize(services, scope, endpoint_id, worker_id)
        endpoint = services.endpoints.get(endpoint_id)
        path = health_path(endpoint) if endpoint is not None else "/ping"
    except _Refused as err:
        await _refuse(scope, send, err.status, err.error)
        return
    await send({"type": "websocket.accept"})
    lb = services.lb
    tunnel = WorkerTunnel(send, worker, services.settings.lb.max_body_bytes)
    old = lb.route_of(worker.id)
    if old is not None:  # a reconnect: the previous socket's route goes
        lb.untrack(worker.id)
    route = lb.track(endpoint_id, worker, t.NOWHERE, path, tunnel)
    log.info("worker %s of %s: tunnel open", worker.id, endpoint_id,
             extra={"worker_id": worker.id, "endpoint_id": endpoint_id})
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                data = message.get("bytes")
                frame = t.decode(data if data is not None else message.get("text") or "")
                if frame.kind == t.HEALTH:
                    _health(services, route, t.parse_health(frame.payload))
                elif frame.kind in (t.HEAD, t.BODY, t.END, t.ERROR):
                    tunnel.deliver(frame)
                else:
                    raise t.BadFrame("a worker does not send CANCEL")
            except t.BadFrame as err:
                log.warning("worker %s: bad tunnel frame: %s", worker.id, err)
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": 1002,
                                "reason": str(err)[:120]})
                return
    finally:
        tunnel.close()
        if lb.route_of(worker.id) is route:
            lb.untrack(worker.id)
        log.info("worker %s of %s: tunnel closed", worker.id, endpoint_id,
                 extra={"worker_id": worker.id, "endpoint_id": endpoint_id})


def _health(services: Services, route: Route, status: int | None) -> None:
    """The worker's own health check said ``status``: the prober's rules for a manual worker
    (``lb.prober.record_health``)."""
    record_health(services.workers, services.lb, route, status, services.clock.now(),
                  services.settings.lb.unhealthy_after, manual=True)


class _Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


def _authorize(services: Services, scope: Scope, endpoint_id: str, worker_id: str) -> Worker:
    try:
        w = worker_by_credential(services, scope, header(scope, b"authorization"), endpoint_id)
    except RateLimited as err:  # still a refusal, with its own status
        raise _Refused(429, str(err)) from None
    except ApiError as err:
        raise _Refused(err.status, err.message) from None
    if w.id != worker_id:
        raise _Refused(403, "this worker credential belongs to another worker")
    endpoint = services.endpoints.get(endpoint_id)
    if endpoint is None or not endpoint.load_balancer:
        raise _Refused(400, "only a load-balancing endpoint's workers open a tunnel")
    if not w.manual:
        raise _Refused(403, "only manual workers (runplane worker run) open a tunnel")
    return w


async def _refuse(scope: Scope, send: Send, status: int, error: str) -> None:
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = orjson.dumps({"error": error})
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008, "reason": error[:120]})
