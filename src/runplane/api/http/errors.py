"""One JSON error shape for every 4xx/5xx, on /v1 and /v2 alike.

``{"error": <reason>, "message": <reason>, "status": <code>}`` plus ``"field"`` when one input
field is to blame. ``error`` is what RunPod's REST and job APIs answer; ``message`` is the
spec's UnauthorizedError shape; both carry the same text so any client finds it.

Two kinds of refusal reach it: domain errors (``runplane.errors``, raised by services and the
broker, HTTP-free), whose status comes from the one table ``DOMAIN_STATUS`` below for FastAPI
and the /v2 app alike, and ``ApiError``, raised by the API layer itself for refusals that only
exist on the wire (405, 413, a malformed body, a route's own 400s).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from runplane.api.http.responses import json_response
from runplane.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
)

# Domain error class -> HTTP status. The only place the two meet: services never see a status.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    RateLimited: 429,
    Unavailable: 503,
}


def domain_status(exc: DomainError) -> int:
    """The status of a domain error: that of its nearest class in ``DOMAIN_STATUS``.

    A subclass the table does not name inherits its parent's status; a bare ``DomainError``
    (a refusal the caller can act on, of no finer kind) is a 400.
    """
    for cls in type(exc).__mro__:
        status = DOMAIN_STATUS.get(cls)
        if status is not None:
            return status
    return 400


class ApiError(Exception):
    """A refusal only the HTTP layer knows (405, 413, a malformed body, a route's own 400s).

    Services raise ``runplane.errors`` instead; this carries its status itself.
    """

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def bad_request(message: str, field: str | None = None) -> ApiError:
    """A 400 raised by the API layer (e.g. a body that is not JSON)."""
    return ApiError(400, message, field)


def not_found(kind: str, ident: str) -> ApiError:
    """A 404 raised by the API layer, worded as ``NotFound``: ``<kind> <ident> not found``."""
    return ApiError(404, f"{kind} {ident} not found")


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON error object: ``error`` and ``message`` (same text), ``status``, ``field``."""
    body: dict[str, Any] = {"error": message, "message": message, "status": status}
    if field:
        body["field"] = field
    return body


def error_response(status: int, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """``error_body`` as a JSON response with that status."""
    return json_response(error_body(status, message, field), status=status, headers=headers)


def error_headers(exc: Exception) -> dict[str, str] | None:
    """Headers a refusal carries: ``Retry-After`` on a 429 and a 503."""
    if isinstance(exc, (RateLimited, Unavailable)):
        return {"retry-after": str(exc.retry_after)}
    return None


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    """('body', 'gpuTypeIds', 0) -> 'gpuTypeIds[0]'; drops pydantic's union/validator tags."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header") and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or "function-" in part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_validation_error(err: dict[str, Any]) -> tuple[str, str | None]:
    """Turn one pydantic error into (message, field)."""
    field = _loc_to_field(tuple(err.get("loc", ())))
    kind = err.get("type", "")
    if kind == "json_invalid":
        return "malformed JSON body: " + str(err.get("ctx", {}).get("error", "")).strip(), None
    if not field and kind == "missing":
        return "request body required: send a JSON object", None
    if not field and kind in ("model_attributes_type", "dict_type", "model_type"):
        return "request body must be a JSON object", None
    if kind == "extra_forbidden":
        return f"{field}: unknown field", field
    if kind == "missing":
        return f"{field}: field required", field
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    return (f"{field}: {msg}" if field else msg), (field or None)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error the stack can raise onto the JSON shape above."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.field)

    # Starlette finds a handler by the exception's MRO, so this one serves every subclass.
    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> Response:
        return error_response(domain_status(exc), exc.message, exc.field, error_headers(exc))

    # A model a service validates past the request's own (a REST v2 body mapped onto v1's
    # models, an endpoint's template) refuses the same way: a 400, not an unhandled 500.
    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError | ValidationError) -> Response:
        errors = list(exc.errors())
        message, field = describe_validation_error(errors[0]) if errors else ("invalid request", None)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return error_response(400, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route"
        if exc.status_code == 405:
            message = "method not allowed on this route"
        # 405 carries Allow (RFC 9110 15.5.6); the router puts it on the exception.
        return error_response(exc.status_code, message,
                              headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        import logging

        logging.getLogger("runplane").exception("unhandled error", exc_info=exc)
        return error_response(500, "internal server error")
