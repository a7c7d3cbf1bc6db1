"""The load-balancing endpoints' proxy: any method and path, streamed both ways, to a worker.

``/lb/{endpointId}/<path>`` (and ``<path>`` on ``{endpointId}.<base_domain>`` when the
operator set one) reaches :class:`LbProxy` from ``api.app`` before FastAPI. For each request:
the caller's key (``Authorization: Bearer``, as everywhere; never passed on), the endpoint
(the caller's own, else 404; a queue endpoint answers RunPod's ``not allowed for QB API``),
the per-key rate limit (``limits.job_route("lb")``), the body limit (30 MB), the worker
(``lb.pool.LoadBalancer.acquire``: least in flight, ``X-Runpod-Worker-Id`` affinity, waiting
up to 2 minutes, scaling from zero), then the request goes to that worker's own address (the
provider's, never one the request names) over a kept-alive connection (``api.lb.client``),
and its answer comes back in one piece when it is small and sized, else chunk by chunk as it
arrives (SSE, chunked streams), with ``X-Runpod-Worker-Id`` added. WebSockets
are ``api.lb.ws``. Errors are RunPod's load balancer's: ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from runplane.api.http.auth import bearer, client_address
from runplane.api.http.body import (
    BodyTooLarge,
    ClientGone,
    read_body,
    stream_body,
    until_disconnect,
)
from runplane.api.lb.client import IDEMPOTENT, UpstreamError, WorkerClient
from runplane.api.lb.deadlines import Deadlines
from runplane.api.lb.headers import DROP_REQUEST, DROP_RESPONSE, WORKER_HEADER
from runplane.api.lb.one_write import send_whole
from runplane.config import LoadBalancerSettings
from runplane.lb import affinity as aff
from runplane.lb.pool import LoadBalancer, NoWorkers, Route, WorkerGone, WorkerTimeout
from runplane.services.users import Principal
from runplane.system import Services

log = logging.getLogger("runplane.lb")

# The body's framing is this hop's too (set from what it sends).
_DROP_REQUEST = DROP_REQUEST | {b"content-length"}
# Bodies up to this size are read whole and sent in one piece; larger or unsized ones stream.
_WHOLE = 256 * 1024


class ProxyError(Exception):
    """An answer of the proxy itself: ``status`` and RunPod's ``{"error": ...}`` body."""

    def __init__(self, status: int, error: str, headers: list[tuple[bytes, bytes]] | None = None,
                 **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}
        self.headers = headers or []


async def send_error(send: Send, err: ProxyError) -> None:
    body = orjson.dumps(err.body)
    await send({"type": "http.response.start", "status": err.status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *err.headers]})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


class LbProxy:
    """See the module docstring; one per app, with its keep-alive client to the workers."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.lb: LoadBalancer = services.lb
        self.cfg: LoadBalancerSettings = services.settings.lb
        self.client = WorkerClient(connect_timeout_s=10.0)
        # The processing limit (5.5 min) swept once a second rather than a timer a request.
        self.deadlines = Deadlines(tick_s=min(1.0, self.cfg.request_timeout_s / 4))
        self._hosts: dict[tuple[str, int], bytes] = {}

    async def close(self) -> None:
        """Close the idle connections to the workers (the server is stopping)."""
        self.client.close()

    # -- the checks every request passes (HTTP and WebSocket) ---------------------------

    def admit(self, scope: Scope, endpoint_id: str) -> tuple[Principal, Any]:
        """The caller and the rate limiter's in-flight slot (to release), or ProxyError."""
        services = self.services
        key = bearer(header(scope, b"authorization"))
        if not key:
            raise ProxyError(401, "missing API key: send 'Authorization: Bearer <key>'")
        principal = services.users.authenticate(key, client_address(scope))
        if principal is None:
            raise ProxyError(401, "invalid or revoked API key")
        endpoint = services.endpoints.get(endpoint_id)
        if endpoint is None or (endpoint.userId != principal.user_id and not principal.is_admin):
            raise ProxyError(404, f"endpoint {endpoint_id} not found")
        if not endpoint.load_balancer:
            raise ProxyError(400, "not allowed for QB API")
        route = services.limits.job_route("lb")
        slot = None
        if route is not None:
            limit_key = (principal.key_id, endpoint_id)
            wait = route.rate.hit(limit_key)
            if wait:
                raise ProxyError(429, f"too many requests: the limit is {route.rate.rule.limit} "
                                      f"per {route.rate.rule.window_s:g} s",
                                 [(b"retry-after", str(max(1, round(wait + 0.5))).encode())])
            if route.inflight is not None:
                if not route.inflight.acquire(limit_key):
                    raise ProxyError(429, "too many requests in flight: the limit is "
                                          f"{route.inflight.limit}", [(b"retry-after", b"1")])
                slot = (route.inflight, limit_key)
        return principal, slot

    async def worker(self, scope: Scope, endpoint_id: str,
                     gone: Callable[[], Awaitable[None]] | None = None) -> Route:
        """The worker that takes the request (``lb.pool``), or ProxyError; ``ClientGone``
        when ``gone()`` (the client hung up) ends first while the request waits for one."""
        try:
            wish = aff.parse(header(scope, WORKER_HEADER))
        except aff.BadAffinity as err:
            raise ProxyError(400, str(err)) from None
        route = self.lb.pick(endpoint_id, wish)
        if route is not None:
            return route
        try:
            if gone is None:
                return await self.lb.acquire(endpoint_id, wish, self.cfg.wait_for_worker_s)
            return await self._unless_gone(endpoint_id, wish, gone)
        except NoWorkers:
            raise ProxyError(503, "no workers available") from None
        except WorkerTimeout:
            raise ProxyError(400, "worker_timeout", workerId=wish.worker_id if wish else None,
                             message="the requested worker did not become ready in time") \
                from None
        except WorkerGone:
            raise ProxyError(404, "affinity_worker_gone",
                             workerId=wish.worker_id if wish else None,
                             message="the endpoint has no such worker") from None

    async def _unless_gone(self, endpoint_id: str, wish: aff.Affinity | None,
                           gone: Callable[[], Awaitable[None]]) -> Route:
        """Wait for a worker while watching the client: one that hung up is no longer
        demand (it would scale the endpoint up for nobody)."""
        acquire = asyncio.ensure_future(
            self.lb.acquire(endpoint_id, wish, self.cfg.wait_for_worker_s))
        watch = asyncio.ensure_future(gone())
        try:
            await asyncio.wait((acquire, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:  # (also when this request itself is cancelled)
            if not acquire.done():
                acquire.cancel()
            else:
                watch.cancel()
        try:
            route = await acquire
        except asyncio.CancelledError:
            raise ClientGone() from None
        if watch.done() and not watch.cancelled():
            self.lb.release(route, False)  # got one just as the client left
            raise ClientGone()
        return route

    # -- HTTP -----------------------------------------------------------------------------

    async def http(self, scope: Scope, receive: Receive, send: Send, endpoint_id: str,
                   path: str) -> None:
        """Serve one HTTP request of a load-balancing endpoint."""
        slot = route = None
        ok = False
        arrived = started_at = 0.0
        started = [False]  # whether the worker's answer began going out
        try:
            _, slot = self.admit(scope, endpoint_id)
            size = header(scope, b"content-length")
            if size is not None and (not size.isdigit() or int(size) > self.cfg.max_body_bytes):
                raise ProxyError(413, f"request body over {self.cfg.max_body_bytes} bytes"
                                 if size.isdigit() else "bad Content-Length")
            arrived = self.services.clock.now()
            bodiless = size in (None, "0") and header(scope, b"transfer-encoding") is None
            route = await self.worker(scope, endpoint_id,
                                      partial(until_disconnect, receive) if bodiless
                                      else None)
            started_at = self.services.clock.now()
            ok = await self.deadlines.watch(
                self._forward(scope, receive, send, route, path, size, started),
                self.cfg.request_timeout_s)
        except ProxyError as err:
            await send_error(send, err)
        except ClientGone:
            pass  # nobody to answer
        except TimeoutError:
            # Past RunPod's processing limit: 524 when nothing was sent yet (else cut short).
            if not started[0]:
                await send_error(send, ProxyError(524, "request timed out"))
        finally:
            if route is not None:
                self.lb.release(route, ok, arrived, started_at)
            if slot is not None:
                slot[0].release(slot[1])

    async def _forward(self, scope: Scope, receive: Receive, send: Send, route: Route,
                       path: str, size: str | None, started: list[bool]) -> bool:
        """Send the request to the worker and its answer back; True when it answered."""
        if route.tunnel is not None:  # a manual worker: through the tunnel it opened
            return await route.tunnel.forward(scope, receive, send, path, started)
        limit = self.cfg.max_body_bytes
        address = route.address
        method: str = scope["method"]
        query = scope.get("query_string")
        # The head as bytes straight from the scope's (uvicorn parsed and checked them).
        parts = [method.encode("latin-1"), b" ",
                 (path if path.startswith("/") else "/" + path).encode("latin-1"),
                 b"?" + query if query else b"", b" HTTP/1.1\r\nHost: ", self._host(address.host, address.port),
                 b"\r\n"]
        host = None
        chunked = False
        for k, v in scope["headers"]:
            if k not in _DROP_REQUEST:
                parts += (k, b": ", v, b"\r\n")
            elif k == b"host":
                host = v
            elif k == b"transfer-encoding":
                chunked = True
        client = scope.get("client")
        if client:
            parts += (b"X-Forwarded-For: ", client[0].encode("latin-1"), b"\r\n")
        parts += (b"X-Forwarded-Proto: ", scope.get("scheme", "http").encode("latin-1"),
                  b"\r\n")
        if host:
            parts += (b"X-Forwarded-Host: ", host, b"\r\n")
        body = b""
        stream = None
        if chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
            stream = stream_body(receive, limit)
        elif size is not None:
            parts += (b"Content-Length: ", size.encode(), b"\r\n")
            if int(size) > _WHOLE:
                stream = stream_body(receive, limit)
            elif size != "0":
                try:
                    body = await read_body(receive, limit)
                except BodyTooLarge:
                    raise ProxyError(413, f"request body over {limit} bytes") from None
        parts.append(b"\r\n")
        wid = route.worker.id.encode()
        try:
            conn = await self.client.request(
                address.host, address.port, b"".join(parts), body, stream, chunked,
                retry=stream is None and method in IDEMPOTENT, head_only=method == "HEAD")
        except UpstreamError as err:
            raise ProxyError(502, f"the worker did not answer ({err})",
                             [(WORKER_HEADER, wid)]) from None
        except BodyTooLarge:
            raise ProxyError(413, f"request body over {limit} bytes") from None
        try:
            out = []
            length = None
            for k, v in conn.headers:
                k = k.lower()
                if k not in DROP_RESPONSE:
                    out.append((k, v))
                    if k == b"content-length":
                        length = int(v)  # (llhttp accepts digits only)
            out.append((WORKER_HEADER, wid))
            if length is not None and length > limit:
                raise ProxyError(502, f"the worker's response is over {limit} bytes",
                                 [(WORKER_HEADER, wid)])
            if length is not None and length <= _WHOLE:
                try:
                    data = await conn.read()
                except UpstreamError as err:
                    raise ProxyError(502, f"the worker did not answer ({err})",
                                     [(WORKER_HEADER, wid)]) from None
                await send_whole(send, conn.status, out, data)
                return True
            await send({"type": "http.response.start", "status": conn.status, "headers": out})
            started[0] = True
            # A client that hangs up ends the stream here and on the worker (an endless SSE
            # stream would otherwise hold the worker until the processing limit).
            live = [True]

            def hung_up(_: object) -> None:
                if live[0]:  # (not once the stream is over: conn may serve another by then)
                    conn.abort()

            watch = asyncio.ensure_future(until_disconnect(receive))
            watch.add_done_callback(hung_up)
            try:
                sent = 0
                while True:
                    try:
                        chunk = await conn.next_chunk()
                    except UpstreamError:
                        return True  # the worker (or the client) went: the stream just ends
                    if not chunk:
                        break
                    sent += len(chunk)
                    if sent > limit:  # RunPod's 30 MB: the stream is cut here
                        break
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
            finally:
                live[0] = False
                watch.cancel()
            await send({"type": "http.response.body", "body": b""})
            return True
        finally:
            self.client.release(conn)

    def _host(self, host: str, port: int) -> bytes:
        """The Host header a worker is sent: its own address (``host:port``)."""
        value = self._hosts.get((host, port))
        if value is None:
            name = f"[{host}]" if ":" in host else host
            value = self._hosts[(host, port)] = f"{name}:{port}".encode("latin-1")
        return value

