"""A minimal request/response layer for the /v2 routes (hot paths: no FastAPI models)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable
from typing import Any
from urllib.parse import unquote_plus

import orjson
from starlette.types import Receive, Scope, Send

from runplane.api.http.body import read_body, until_disconnect
from runplane.api.http.errors import bad_request
from runplane.api.http.responses import dumps
from runplane.api.http.runpod_json import error_body
from runplane.system import Services

JSON_HEADERS = [(b"content-type", b"application/json")]

# The deepest a /v2 body may nest. What the server keeps and hands back wraps a body in a few
# levels more (a job's stored payload, the OpenAI passthrough's input envelope, the list a
# worker's take answers) and orjson writes at most 254: a deeper body would be taken, then
# fail to store or to reach a worker. 128 leaves the wrappers ample room.
MAX_DEPTH = 128
# orjson.dumps refuses values nested past this many levels (its fixed recursion limit).
_ORJSON_DEPTH = 254
_TOO_DEEP = f"request body nested deeper than {MAX_DEPTH} levels"
# Up to this size counting a body's brackets costs less than the exact check (one orjson.dumps
# inside 126 levels, ~1.5 µs before the body's own bytes).
_COUNT_UP_TO = 4096


class Req:
    """One /v2 request: its ASGI channels, the path's parts after ``/v2`` and the server's
    parts its handler calls (``services.broker``, ``services.handoff``...)."""

    __slots__ = ("_headers", "_query", "limit", "parts", "receive", "release", "scope", "send",
                 "services")

    def __init__(self, scope: Scope, receive: Receive, send: Send, services: Services,
                 parts: list[str]) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.services = services
        self.parts = parts
        self._query: dict[str, str] | None = None
        self._headers: dict[bytes, bytes] | None = None
        # Largest body accepted (V2App sets it when no middleware enforces one).
        self.limit: int | None = None
        # An in-flight slot the handler took (limiter, key): V2App gives it back at the end.
        self.release: tuple[Any, Any] | None = None

    @property
    def method(self) -> str:
        return self.scope["method"]

    def header(self, name: bytes) -> str | None:
        for k, v in self.scope["headers"]:
            if k == name:
                return v.decode("latin-1")
        return None

    def query(self, name: str) -> str | None:
        """The last non-blank value of a query parameter (as ``parse_qs(...)[name][-1]``)."""
        if self._query is None:
            self._query = parse_query(self.scope.get("query_string", b""))
        return self._query.get(name)

    def body(self) -> Awaitable[bytes]:
        """The whole body (``api.http.body.read_body``, awaited by the caller: no coroutine
        of its own on the hot path). Past ``limit`` it raises ``BodyTooLarge``, and
        ``ClientGone`` when the client hung up: V2App answers both (413, 400)."""
        return read_body(self.receive, self.limit)

    async def json(self, *, lenient: bool = False) -> Any:
        """The body as JSON whatever the Content-Type; ``lenient`` also takes NaN/Infinity."""
        raw = await self.body()
        return parse_json(raw, lenient=lenient)

    def disconnect_watcher(self) -> asyncio.Future:
        """A task that finishes when the client goes away (request body already read)."""

        return asyncio.get_running_loop().create_task(until_disconnect(self.receive))


def parse_query(raw: bytes) -> dict[str, str]:
    """``name -> last non-blank value``, decoded as ``urllib.parse.parse_qs`` does, without its
    cost on the hot path (most values need no unquoting)."""
    out: dict[str, str] = {}
    if not raw:
        return out
    for part in raw.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if not value:
            continue
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        out[name] = value
    return out


def parse_json(raw: bytes, *, lenient: bool = False) -> Any:
    """The body as JSON, or a 400: not JSON, or nested deeper than ``MAX_DEPTH``."""
    if not raw.strip():
        raise bad_request("request body is empty; expected JSON")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson reads at most 1,024 levels
            raise bad_request(_TOO_DEEP) from None
        value = _lenient(raw) if lenient else None
        if value is None:
            raise bad_request(f"malformed JSON body: {exc}") from None
    # Nesting past the limit takes at least 2 * (MAX_DEPTH + 1) bytes, and as many brackets:
    # shorter bodies skip the check, and those of a few kB with fewer brackets (counted at C
    # speed, cheaper than the check there; past that the check is the cheaper of the two).
    size = len(raw)
    if size > 2 * MAX_DEPTH and (size > _COUNT_UP_TO or raw.count(b"[") + raw.count(b"{")
                                 > MAX_DEPTH) and too_deep(value):
        raise bad_request(_TOO_DEEP)
    return value


def _lenient(raw: bytes) -> Any:
    """What stdlib json reads that orjson does not (bare NaN/Infinity, which Python's encoder
    writes), or None."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


class _Chain(threading.local):
    """Lists nested ``254 - MAX_DEPTH`` deep (one set per thread), the innermost left empty
    for the value being checked."""

    def __init__(self) -> None:
        self.outer: list[Any] = []
        inner = self.outer
        for _ in range(_ORJSON_DEPTH - MAX_DEPTH - 1):
            inner.append([])
            inner = inner[0]
        self.inner = inner


_CHAIN = _Chain()


def too_deep(value: Any) -> bool:
    """Whether ``value`` (as JSON decodes it) nests containers deeper than ``MAX_DEPTH``:
    orjson (C speed, and fast on long strings, unlike a scan of the raw bytes) refuses to
    write it inside the chain's levels. The chain is built once, so a check costs one
    ``orjson.dumps``."""
    chain = _CHAIN
    chain.inner.append(value)
    try:
        orjson.dumps(chain.outer)
    except TypeError as exc:  # orjson.JSONEncodeError
        return "recursion" in str(exc).lower()
    finally:
        chain.inner.clear()
    return False


async def send_json(send: Send, body: Any, status: int = 200,
                    extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = dumps(body)
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(data)).encode())]
    if extra_headers:
        headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def send_error(send: Send, status: int, message: str, field: str | None = None,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_json(send, error_body(status, message, field), status, headers)


async def send_empty(send: Send, status: int = 204) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})
