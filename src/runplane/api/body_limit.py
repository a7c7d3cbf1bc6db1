"""Refuse oversized request bodies with 413 before they are read into memory."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runplane.api.errors import error_response


class BodyLimitMiddleware:
    """Pure ASGI middleware: ``limit_for(path)`` gives the byte limit for a request path;
    ``answer(status, message)`` the refusal's response (RunPod's JSON shape by default)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int],
                 answer: Callable[[int, str], Response] = error_response) -> None:
        self.app = app
        self.limit_for = limit_for
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self.answer(413, _message(limit))(scope, receive, send)
                    return
                break

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
                await self.answer(413, _message(limit))(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the limit (a chunked body declares no length). An
    HTTPException, because FastAPI's body reader turns any other error into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _message(limit))


def _message(limit: int) -> str:
    return f"request body larger than the {limit:,}-byte limit of this route"

