"""Who a request is from: the API-key dependency for /v1 and the client side of /v2, the
credential an ``Authorization`` header carries, and a worker's own credential."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from starlette.types import Scope

from runplane.api.http.context import services
from runplane.api.http.errors import ApiError
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
    """The caller's address, the key of per-client limits: the TCP peer's, or the address a
    proxy named in ``trusted_proxies`` forwarded (uvicorn rewrites ``client`` then; no other
    sender's X-Forwarded-For is believed: cli/connections.py)."""
    client = scope.get("client")
    return client[0] if client else ""


# Where the key check made before a request's body is read (``key_first``) leaves the caller.
AUTHENTICATED = "runplane.principal"


def require_user(request: Request) -> Principal:
    """FastAPI dependency: the calling user, or 401 in the spec's UnauthorizedError shape."""
    state = request.scope.get("state")
    if state:
        principal: Principal | None = state.get(AUTHENTICATED)
        if principal is not None:  # checked by key_first before the body was read
            return principal
    return user_of(services(request), request.scope)


def user_of(services: Services, scope: Scope) -> Principal:
    """The user whose API key the request's ``Authorization`` header carries: Unauthorized
    when none or an invalid one (a failed authentication, counted per client address:
    RateLimited past the limit)."""
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    key = bearer(header.decode("latin-1")) if header is not None else None
    if key is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    principal = services.users.authenticate(key, client_address(scope))
    if principal is None:
        raise Unauthorized("invalid or revoked API key")
    return principal


def key_first(services: Services, prefix: str = "/") -> Callable[[Scope], None]:
    """For ``BodyLimitMiddleware``: authenticate a request under ``prefix`` (every route
    there needs a user's key) before its body is read, so that a caller without a valid key
    gets its 401 without the server reading or holding what it sends; the user is left in the
    request's state for ``require_user``. Raises what ``user_of`` raises."""

    def check(scope: Scope) -> None:
        if scope["path"].startswith(prefix):
            principal = user_of(services, scope)
            scope.setdefault("state", {})[AUTHENTICATED] = principal

    return check


def count_create(request: Request) -> None:
    """Count one resource create against the caller's address (429 past the limit)."""
    limits = services(request).limits
    limits.check(limits.creates, client_address(request.scope), "creates from this address")
