"""RunPod's JSON error shape, that of /v1 (the FastAPI app: GraphQL's HTTP layer, /metrics
and the dashboard's routes included) and of the /v2 job API.

``{"error": <reason>, "message": <reason>, "status": <code>}`` plus ``"field"`` when one input
field is to blame. ``error`` is what RunPod's REST and job APIs answer; ``message`` is the
spec's UnauthorizedError shape; both carry the same text so any client finds it. What each
refusal says comes from ``api/http/errors.py``; this is only how it looks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from runplane.api.http.errors import Refusal, describe_validation_error
from runplane.api.http.responses import json_response


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


class RunPodJson:
    """The ``ErrorShape`` of the FastAPI app (``api.http.errors.install_error_handlers``)."""

    own: Mapping[type[Exception], Callable[[Any], Response]] = MappingProxyType({})

    def answer(self, refusal: Refusal) -> Response:
        return error_response(refusal.status, refusal.message, refusal.field, refusal.headers)

    def untitled(self, status: int) -> str:
        return "error"

    async def invalid(self, request: Request,
                      exc: RequestValidationError | ValidationError) -> Response:
        """A 400 naming the first problem (and how many more there are)."""
        errors = list(exc.errors())
        message, field = describe_validation_error(errors[0]) if errors else ("invalid request", None)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return error_response(400, message, field)


RUNPOD_JSON = RunPodJson()
