"""Every surface's errors mapped once: which exception is which refusal, and the one
installer of a FastAPI app's handlers, to which each surface hands only how its refusals
look (an ``ErrorShape``: RunPod's JSON for /v1, ``api/http/runpod_json.py``; problem+json for
REST v2, ``api/rest_v2/problems.py``); the lean /v2 app asks ``refusal`` itself, and GraphQL's
resolvers ``domain_status``.

Three kinds of refusal reach it: domain errors (``runplane.errors``, raised by services and the
broker, HTTP-free), whose status comes from the one table ``DOMAIN_STATUS`` below for every
surface; ``ApiError``, raised by the API layer itself for refusals that only exist on the wire
(405, 413, a malformed body, a route's own 400s); and the body reader's (``api/http/body.py``).
The router's own (no such route, a method not allowed) and the models' validation errors are
answered by the installer too; anything else is a bug: logged, and a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from runplane.api.http.body import BodyTooLarge, ClientGone
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


@dataclass(frozen=True, slots=True)
class Refusal:
    """What an answer refusing a request says, whatever its surface's shape: the status, the
    words, the input field to blame and the headers it carries (``Retry-After``, ``Allow``)."""

    status: int
    message: str
    field: str | None = None
    headers: dict[str, str] | None = None


INTERNAL = Refusal(500, "internal server error")
log = logging.getLogger("runplane.api")


def refusal(exc: BaseException) -> Refusal | None:
    """The refusal an exception a route raised stands for; None for one that is a bug."""
    if isinstance(exc, ApiError):
        return Refusal(exc.status, exc.message, exc.field)
    if isinstance(exc, DomainError):
        return Refusal(domain_status(exc), exc.message, exc.field, error_headers(exc))
    if isinstance(exc, BodyTooLarge):
        return Refusal(413, str(exc))
    if isinstance(exc, ClientGone):
        return Refusal(400, "client disconnected")
    return None


def router_refusal(exc: StarletteHTTPException, untitled: str) -> Refusal:
    """The router's own refusals (and Starlette's): its words, ours for no such route and a
    method not allowed; ``untitled`` when it has none (a detail that is not text)."""
    message = exc.detail if isinstance(exc.detail, str) else untitled
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route"
    if exc.status_code == 405:
        message = "method not allowed on this route"
    # 405 carries Allow (RFC 9110 15.5.6); the router puts it on the exception.
    return Refusal(exc.status_code, message, headers=dict(exc.headers) if exc.headers else None)


def unexpected(exc: BaseException, method: str, path: str) -> Refusal:
    """A bug, not a refusal: logged with its traceback, answered as a bare 500."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return INTERNAL


class ErrorShape(Protocol):
    """How one surface's refusals look; what they say comes from this module. ``own``: the
    refusals only that surface raises, each with the answer it is (REST v2's ``Problem``)."""

    own: Mapping[type[Exception], Callable[[Any], Response]]

    def answer(self, refusal: Refusal) -> Response:
        """The response of one refusal."""

    def untitled(self, status: int) -> str:
        """The words of a router refusal that came with none."""

    def invalid(self, request: Request,
                exc: RequestValidationError | ValidationError) -> Awaitable[Response]:
        """A body (or a model a service validates past it) that does not fit: the words
        and status of that are the surface's own (v1: a 400; REST v2: a 422 listing all)."""


Handler = Callable[[Request, Any], Awaitable[Response]]


def install_error_handlers(app: FastAPI, shape: ErrorShape) -> None:
    """Answer every error ``app``'s routes can raise in ``shape``."""

    async def refused(_: Request, exc: Exception) -> Response:
        found = refusal(exc)
        assert found is not None  # (registered for the classes refusal knows only)
        return shape.answer(found)

    async def router(_: Request, exc: StarletteHTTPException) -> Response:
        return shape.answer(router_refusal(exc, shape.untitled(exc.status_code)))

    async def bug(request: Request, exc: Exception) -> Response:
        return shape.answer(unexpected(exc, request.method, request.url.path))

    # Starlette finds a handler by the exception's MRO, so DomainError's serves every
    # subclass.
    handlers: dict[type[Exception], Handler] = {
        ApiError: refused, DomainError: refused, BodyTooLarge: refused, ClientGone: refused,
        # A model a service validates past the request's own (an endpoint's template, a REST
        # v2 body mapped onto v1's models) refuses as the body's does, not as a 500.
        RequestValidationError: shape.invalid, ValidationError: shape.invalid,
        StarletteHTTPException: router, Exception: bug,
    }
    for cls, answer in shape.own.items():
        handlers[cls] = _answering(answer)
    for cls, handler in handlers.items():
        app.add_exception_handler(cls, handler)


def _answering(answer: Callable[[Any], Response]) -> Handler:
    async def handler(_: Request, exc: Exception) -> Response:
        return answer(exc)

    return handler
