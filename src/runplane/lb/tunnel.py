"""The tunnel a manual load-balancing worker opens to the server: its framing. Pure.

A manual worker (``runplane worker run``) has no address the server may call (the server
never dials an address a user names), so the worker dials out: one WebSocket to
``/v2/{endpointId}/workers/{workerId}/tunnel``, authenticated with its own credential. The
server sends it requests over that socket and it answers them from its local app, many at
once, each by its request id; its health check's status goes over the same socket.

Every WebSocket message is one binary frame: ``kind`` (1 byte), the request id (4 bytes, big
endian; 0 for HEALTH), then the payload:

| kind | from | payload |
|---|---|---|
| HEAD | server | the request's head (JSON: method, path, query, headers) |
| HEAD | worker | the response's head (JSON: status, headers) |
| BODY | both | a piece of the body (at most ``CHUNK`` bytes) |
| END | both | the body is complete (empty) |
| ERROR | worker | the local app did not answer (UTF-8 text) |
| CANCEL | server | the caller is gone or out of time: stop (empty) |
| HEALTH | worker | the local health check's HTTP status (JSON int, or null: no answer) |

Headers travel as ``[name, value]`` pairs of latin-1 strings, as HTTP/1.1 carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.types import Receive, Scope, Send

from runplane.providers.http_ports import HttpAddress

HEAD, BODY, END, ERROR, CANCEL, HEALTH = 1, 2, 3, 4, 5, 6
KINDS = frozenset({HEAD, BODY, END, ERROR, CANCEL, HEALTH})
CHUNK = 64 * 1024  # a body goes in pieces of at most this, so requests interleave
MAX_ID = 2**32 - 1
_PREFIX = 5
# A tunnelled route's address: never called (its requests go through the tunnel), and a name
# that resolves nowhere should anything try.
NOWHERE = HttpAddress("tunnel.invalid", 0, 0)

Headers = list[tuple[str, str]]


class BadFrame(ValueError):
    """A message that is not a frame of this protocol."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    rid: int
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    path: str
    query: str
    headers: Headers
    has_body: bool


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    headers: Headers


class TunnelLink(Protocol):
    """The server's end of one worker's tunnel, as the proxy sees it (``api.lb.tunnel``)."""

    async def forward(self, scope: Scope, receive: Receive, send: Send, path: str,
                      started: list[bool]) -> bool:
        """Serve one request through the tunnel; True when the worker answered."""
        ...


def encode(kind: int, rid: int, payload: bytes = b"") -> bytes:
    """One frame as a WebSocket message."""
    if kind not in KINDS:
        raise BadFrame(f"unknown frame kind {kind}")
    if not 0 <= rid <= MAX_ID:
        raise BadFrame(f"request id {rid} out of range")
    return bytes((kind,)) + rid.to_bytes(4, "big") + payload


def decode(data: bytes | str) -> Frame:
    """A WebSocket message as a frame; ``BadFrame`` when it is not one."""
    if isinstance(data, str):
        raise BadFrame("text message: frames are binary")
    if len(data) < _PREFIX:
        raise BadFrame(f"frame of {len(data)} bytes is shorter than its {_PREFIX}-byte prefix")
    kind = data[0]
    if kind not in KINDS:
        raise BadFrame(f"unknown frame kind {kind}")
    rid = int.from_bytes(data[1:_PREFIX], "big")
    if (kind == HEALTH) != (rid == 0):
        raise BadFrame("HEALTH frames, and only they, have request id 0")
    return Frame(kind, rid, bytes(data[_PREFIX:]))


def chunks(data: bytes, size: int = CHUNK) -> list[bytes]:
    """``data`` in pieces of at most ``size`` bytes (none for an empty body)."""
    return [data[i:i + size] for i in range(0, len(data), size)]


def _headers(value: Any) -> Headers:
    if not isinstance(value, list) or not all(
            isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h)
            for h in value):
        raise BadFrame("headers must be a list of [name, value] strings")
    return [(k, v) for k, v in value]


def _json(payload: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadFrame("payload is not JSON") from None
    if not isinstance(value, dict):
        raise BadFrame("payload is not a JSON object")
    return value


def request_head(head: RequestHead) -> bytes:
    return orjson.dumps({"method": head.method, "path": head.path, "query": head.query,
                         "headers": head.headers, "body": head.has_body})


def parse_request_head(payload: bytes) -> RequestHead:
    value = _json(payload)
    method, path, query = value.get("method"), value.get("path"), value.get("query", "")
    if not isinstance(method, str) or not method.isalpha():
        raise BadFrame("method must be a token")
    if not isinstance(path, str) or not path.startswith("/"):
        raise BadFrame("path must start with /")
    if not isinstance(query, str):
        raise BadFrame("query must be a string")
    return RequestHead(method, path, query, _headers(value.get("headers", [])),
                       bool(value.get("body")))


def response_head(head: ResponseHead) -> bytes:
    return orjson.dumps({"status": head.status, "headers": head.headers})


def parse_response_head(payload: bytes) -> ResponseHead:
    value = _json(payload)
    status = value.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadFrame("status must be an HTTP status (100..599)")
    return ResponseHead(status, _headers(value.get("headers", [])))


def health(status: int | None) -> bytes:
    """A HEALTH frame: the local health check answered ``status`` (None: did not answer)."""
    return encode(HEALTH, 0, orjson.dumps(status))


def parse_health(payload: bytes) -> int | None:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadFrame("payload is not JSON") from None
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise BadFrame("health must be an HTTP status or null")
    return value
