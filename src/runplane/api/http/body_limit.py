"""Refuse request bodies before they are read into memory: those of callers without a valid
key (401) and oversized ones (413).

The key is checked first, from the headers alone, for the routes that all need one (/v1's
and REST v2's: ``api.http.auth.key_first``): FastAPI reads a body before it resolves a route's
dependencies, so a caller without a key could otherwise make the server read and hold up to
the route's limit per connection, as slowly as it liked. The answer does not wait for the
body; the connection is closed shortly after it (``cli/connections.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runplane.api.http.body import too_large
from runplane.api.http.errors import ErrorShape, Refusal, domain_status, error_headers
from runplane.api.http.runpod_json import RUNPOD_JSON
from runplane.errors import DomainError


class BodyLimitMiddleware:
    """Pure ASGI middleware: ``limit_for(path)`` gives the byte limit for a request path;
    ``shape`` how its refusals look (RunPod's JSON by default); ``authenticate(scope)``, when given, is run before a request with a body is
    read and refuses it by raising a domain error (``api.http.auth.key_first``)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int],
                 shape: ErrorShape = RUNPOD_JSON,
                 authenticate: Callable[[Scope], None] | None = None) -> None:
        self.app = app
        self.limit_for = limit_for
        self.shape = shape
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared, chunked = 0, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
            elif name == b"transfer-encoding":
                chunked = True
        if self.authenticate is not None and (declared > 0 or chunked):
            try:
                self.authenticate(scope)
            except DomainError as exc:
                await self.shape.answer(Refusal(domain_status(exc), exc.message,
                                                headers=error_headers(exc)))(scope, receive, send)
                return
        limit = self.limit_for(scope["path"])
        if declared > limit:
            await self.shape.answer(Refusal(413, too_large(limit)))(scope, receive, send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self.shape.answer(Refusal(413, too_large(limit)))(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the limit (a chunked body declares no length). An
    HTTPException, because FastAPI's body reader turns any other error into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit))

