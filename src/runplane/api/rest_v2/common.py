"""What every REST v2 route shares: the caller (authenticated and counted against its rate
limits), JSON answers, and the RateLimit headers.

Rate limits are per user over RunPod's three windows (``services.limits.rest_v2``: the
server's one ``RateLimits``, shared with the job API's limits). Every authenticated answer,
refusals included, carries ``RateLimit`` (what is left: ``"minute";r=<left>;t=<seconds until
full>``) and ``RateLimit-Policy`` (``"minute";q=<quota>;w=<seconds>``), as the spec's
IETF-draft headers; past a window the answer is a 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runplane.api.http.auth import count_create, require_user
from runplane.api.http.context import services
from runplane.catalog.pools import GpuPools
from runplane.errors import RateLimited
from runplane.services.users import Principal
from runplane.system import Services

__all__ = [
    "Services",
    "User",
    "V2Route",
    "created",
    "gpu_pools",
    "no_content",
    "ok",
    "services",
]

_bearer = HTTPBearer(scheme_name="bearerAuth", auto_error=False,
                     description="runplane API key")


async def caller(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The authenticated user, counted against its REST v2 windows (429 past one)."""
    return admit(request)


def admit(request: Request) -> Principal:
    """Authenticate the request and count it (``caller``; also run for a request refused
    before its dependencies, such as a body that is not JSON, so that a missing key is
    still a 401 and every answer carries the quota headers)."""
    if getattr(request.state, "principal", None) is not None:
        return request.state.principal  # type: ignore[no-any-return]
    principal = require_user(request)
    limiters = services(request).limits.rest_v2
    if limiters:
        key = ("rest_v2", principal.user_id)
        waits = [(name, limiter.wait(key)) for name, limiter in limiters]
        refused = max(waits, key=lambda w: w[1])
        if refused[1] <= 0:
            for _name, limiter in limiters:
                limiter.hit(key)
        request.state.rate_limit = _headers(limiters, key)
        if refused[1] > 0:
            raise RateLimited(refused[1], f"rate limit exceeded for the {refused[0]} window")
    if request.method == "POST" and request.url.path.rstrip("/").count("/") == 2:
        count_create(request)  # a create, counted per client address as on /v1
    request.state.principal = principal
    return principal


User = Annotated[Principal, Depends(caller)]


def _headers(limiters: list[Any], key: object) -> list[tuple[bytes, bytes]]:
    left, policy = [], []
    for name, limiter in limiters:
        state = limiter.state(key)
        left.append(f'"{name}";r={state.remaining};t={math.ceil(state.reset_s)}')
        policy.append(f'"{name}";q={limiter.rule.limit};w={int(limiter.rule.window_s)}')
    return [(b"ratelimit", ", ".join(left).encode()),
            (b"ratelimit-policy", ", ".join(policy).encode())]


class RateLimitHeaders:
    """ASGI middleware: adds the caller's RateLimit headers (set by ``caller``) to the
    answer, whichever handler or error handler wrote it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get("rate_limit")
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def gpu_pools(request: Request) -> GpuPools:
    """The catalog's GPU types by serverless pool (built once with the app)."""
    pools: GpuPools = request.app.state.gpu_pools
    return pools


def ok(body: Any, status: int = 200) -> Response:
    """A JSON answer (orjson)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def created(body: Any) -> Response:
    return ok(body, 201)


def no_content() -> Response:
    return Response(status_code=204)


# Content types under which a body is still read as JSON: none, and curl's default.
_JSON_ANYWAY = (b"", b"application/x-www-form-urlencoded")


class V2Route(APIRoute):
    """Reads request bodies as JSON when the client sent no (or curl's default) type."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def json_handler(request: Request) -> Response:
            headers = request.scope["headers"]
            content_type = next((v for k, v in headers if k == b"content-type"), b"")
            if content_type.split(b";")[0].strip().lower() in _JSON_ANYWAY:
                request.scope["headers"] = [(k, v) for k, v in headers if k != b"content-type"] + [
                    (b"content-type", b"application/json")]
                request.__dict__.pop("_headers", None)
            return await handler(request)

        return json_handler
