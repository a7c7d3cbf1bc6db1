"""The API-key dependency for /v1 and the client side of /v2."""

from __future__ import annotations

from fastapi import Request
from starlette.types import Scope

from runplane.api.context import services
from runplane.errors import Unauthorized
from runplane.services.users import Principal


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or a raw ``Authorization: <key>``."""
    header = request.headers.get("authorization")
    if not header:
        return None
    header = header.strip()
    if header[:7].lower() == "bearer ":
        header = header[7:].strip()
    return header or None


def client_address(scope: Scope) -> str:
    """The caller's address, the key of per-client limits (a proxy's X-Forwarded-For is not
    trusted: behind one, every client shares the proxy's address)."""
    client = scope.get("client")
    return client[0] if client else ""


def require_user(request: Request) -> Principal:
    """FastAPI dependency: the calling user, or 401 in the spec's UnauthorizedError shape."""
    key = presented_key(request)
    if key is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    principal = services(request).users.authenticate(key, client_address(request.scope))
    if principal is None:
        raise Unauthorized("invalid or revoked API key")
    return principal


def count_create(request: Request) -> None:
    """Count one resource create against the caller's address (429 past the limit)."""
    limits = services(request).limits
    limits.check(limits.creates, client_address(request.scope), "creates from this address")
