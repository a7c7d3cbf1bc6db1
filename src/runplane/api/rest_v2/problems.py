"""REST v2 errors as RFC 9457 ``application/problem+json``: ``{title, status, detail}`` and
``errors`` (one string per problem, each starting with the field it is about).

Domain errors keep their one status table (``api/http/errors.py``: ``domain_status``); only the
body differs from v1's. A request body that is not JSON is a 400, one that is JSON but does
not fit the spec's schema a 422 listing every problem, as RunPod's v2 answers.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from runplane.api.http.errors import ApiError, describe_validation_error, domain_status, error_headers
from runplane.api.rest_v2.common import admit
from runplane.errors import DomainError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("runplane.api.rest_v2")


class Problem(Exception):
    """A refusal only the REST v2 layer knows (e.g. a route runplane cannot serve: 501)."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def title(status: int) -> str:
    """The status's reason phrase ("Not Found"), RFC 9457's ``title``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(status: int, detail: str, errors: list[str] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """One problem+json answer."""
    body: dict[str, Any] = {"title": title(status), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON,
                    headers=headers)


def _field_error(message: str, field: str | None) -> list[str] | None:
    if not field:
        return None
    return [message if message.startswith(field) else f"{field}: {message}"]


def _unprocessable(errors: list[Any]) -> Response:
    """422 listing every problem pydantic found."""
    described = [describe_validation_error(e) for e in errors]
    lines = [m if not f or m.startswith(f) else f"{f}: {m}" for m, f in described]
    return problem(422, "request validation failed: " + "; ".join(lines[:3])
                   + (f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""), lines)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error the REST v2 app can raise as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> Response:
        return problem(exc.status, exc.detail, exc.errors)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return problem(exc.status, exc.message, _field_error(exc.message, exc.field))

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> Response:
        return problem(domain_status(exc), exc.message, _field_error(exc.message, exc.field),
                       error_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI reads the body before the route's dependencies: authenticate now, so a
        # missing key is a 401 whatever the body, and the answer is counted.
        try:
            admit(request)
        except DomainError as err:
            return await _domain(request, err)
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            message, _ = describe_validation_error(errors[0])
            return problem(400, message)
        return _unprocessable(errors)

    # A model a service validates past the body's own (a v2 body mapped onto v1's template
    # and endpoint models) refuses as the body's validation does: 422, not a 500.
    @app.exception_handler(ValidationError)
    async def _service_validation(_: Request, exc: ValidationError) -> Response:
        return _unprocessable(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else title(exc.status_code)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such route"
        if exc.status_code == 405:
            detail = "method not allowed on this route"
        return problem(exc.status_code, detail, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal server error")
