"""Who a request is from: the API-key dependency for /v1 and the client side of /v2, the
credential an ``Authorization`` header carries, and a worker's own credential."""

from __future__ import annotations

from fastapi import Request
from starlette.types import Scope

from runplane.api.context import services
from runplane.api.errors import ApiError
from runplane.broker.models import Worker
from runplane.errors import Unauthorized
from runplane.services.users import Principal
from runplane.system import Services


def bearer(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <token>`` (or raw ``<token>``) header;
    None when there is none."""
    if not header:
        return None
    token = header.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token or None


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or a raw ``Authorization: <key>``."""
    return bearer(request.headers.get("authorization"))


def worker_by_credential(services: Services, scope: Scope, header: str | None,
                         endpoint_id: str) -> Worker:
    """The worker whose own credential ``header`` (``Authorization``) carries, for
    ``endpoint_id``: ApiError 401 when there is none (a failed authentication, counted per
    client address: RateLimited past the limit), 403 when it is another endpoint's."""
    w = services.workers.authenticate(bearer(header))
    if w is None:
        limits = services.limits
        limits.check(limits.failed_auth, client_address(scope),
                     "failed authentications from this address")
        raise ApiError(401, "missing or invalid worker credential")
    if w.endpoint_id != endpoint_id:
        raise ApiError(403, "this worker credential is not valid for this endpoint")
    return w


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
