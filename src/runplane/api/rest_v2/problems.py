"""REST v2 errors as RFC 9457 ``application/problem+json``: ``{title, status, detail}`` and
``errors`` (one string per problem, each starting with the field it is about).

What each refusal says, and the domain errors' one status table, come from
``api/http/errors.py``, which installs the handlers; only the body differs from v1's. A
request body that is not JSON is a 400, one that is JSON but does not fit the spec's schema a
422 listing every problem, as RunPod's v2 answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from runplane.api.http.errors import (
    Refusal,
    describe_validation_error,
    install_error_handlers,
    refusal,
)
from runplane.api.rest_v2.common import admit
from runplane.errors import DomainError

PROBLEM_JSON = "application/problem+json"


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


class ProblemJson:
    """The ``ErrorShape`` of the REST v2 app (``api.http.errors.install_error_handlers``)."""

    own: Mapping[type[Exception], Callable[[Any], Response]] = MappingProxyType({
        Problem: lambda exc: problem(exc.status, exc.detail, exc.errors)})

    def answer(self, refusal: Refusal) -> Response:
        return problem(refusal.status, refusal.message,
                       _field_error(refusal.message, refusal.field), refusal.headers)

    def untitled(self, status: int) -> str:
        return title(status)

    async def invalid(self, request: Request,
                      exc: RequestValidationError | ValidationError) -> Response:
        """A body that is not JSON is a 400; one that does not fit the spec's schema, or a
        model a service validates past the body's own (a v2 body mapped onto v1's template
        and endpoint models), a 422 listing every problem."""
        if isinstance(exc, ValidationError):
            return _unprocessable(list(exc.errors()))
        # FastAPI reads the body before the route's dependencies: authenticate now, so a
        # missing key is a 401 whatever the body, and the answer is counted.
        try:
            admit(request)
        except DomainError as err:
            found = refusal(err)
            assert found is not None
            return self.answer(found)
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            message, _ = describe_validation_error(errors[0])
            return problem(400, message)
        return _unprocessable(errors)


PROBLEMS = ProblemJson()


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error the REST v2 app can raise as problem+json."""
    install_error_handlers(app, PROBLEMS)
