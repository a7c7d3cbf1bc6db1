"""RunPod's REST v1 control plane: one router module per resource.

Handlers only translate: parse (FastAPI + the models in runplane.schemas), authorize
(``caller``), call a service, and answer the spec's JSON shape with orjson.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.responses import Response

from runplane.api.http.auth import count_create, require_user
from runplane.api.http.context import services
from runplane.api.http.errors import bad_request
from runplane.services.users import Principal

__all__ = ["ERRORS", "JsonBodyRoute", "Responses", "caller", "no_content", "services"]

# FastAPI's type of a route's documented answers.
Responses = dict[int | str, dict[str, Any]]

# Answers documented on every authenticated route (the bodies follow api/http/errors.py).
ERRORS: Responses = {
    400: {"description": "Invalid input: `{error, message, status, field}` names the field."},
    401: {"description": "Missing or invalid API key."},
    404: {"description": "No such resource (or it belongs to another user)."},
}


# Declares the spec's "ApiKey" bearer scheme in runplane's OpenAPI document (the docs'
# Authorize button); the key itself is checked by require_user, which also takes raw keys.
_bearer = HTTPBearer(scheme_name="ApiKey", auto_error=False, description="runplane API key")


async def caller(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The authenticated user. ``async`` so FastAPI calls it inline instead of in a thread
    (``require_user`` is a cheap cached lookup). A POST on a collection (``/v1/templates``,
    ``/v1/pods``...) is a create, counted per client address."""
    principal = require_user(request)
    if request.method == "POST" and request.url.path.rstrip("/").count("/") == 2:
        count_create(request)
    return principal


def no_content() -> Response:
    return Response(status_code=204)


# Content types under which a /v1 body is still read as JSON: none at all, and what
# ``curl -d '{...}'`` sends by default. text/plain is not among them: it is what a page of
# another origin can POST without a preflight. Anything else (multipart...) is refused by
# validation.
_JSON_ANYWAY = (b"", b"application/x-www-form-urlencoded")


class JsonBodyRoute(APIRoute):
    """Reads request bodies as JSON whatever (reasonable) Content-Type the client sent.

    RunPod's API is JSON only; clients that forget the header (plain ``curl -d``) should get
    their request parsed, or a clear "malformed JSON" error, not "Input should be a valid
    dictionary".

    Unknown top-level fields: RunPod's v1 request schemas do not forbid them and real v1
    clients send some (``volumeType``, ``tags``...), so they are dropped before validation
    and named in the ``X-Runplane-Ignored-Fields`` header of the answer, unless the operator
    set ``strict_validation`` (then the model refuses them: a 400 naming the field).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        model = self.body_field.field_info.annotation if self.body_field else None
        known = (frozenset(model.model_fields) | getattr(model, "FIXED_AT_CREATE", frozenset())
                 if isinstance(model, type) and issubclass(model, BaseModel) else None)

        async def json_handler(request: Request) -> Response:
            headers = request.scope["headers"]
            content_type = next((v for k, v in headers if k == b"content-type"), b"")
            if content_type.split(b";")[0].strip().lower() in _JSON_ANYWAY:
                request.scope["headers"] = [(k, v) for k, v in headers if k != b"content-type"] + [
                    (b"content-type", b"application/json")
                ]
                request.__dict__.pop("_headers", None)
            ignored = await _drop_unknown(request, known) if known is not None else []
            response = await handler(request)
            if ignored:
                response.headers[IGNORED_HEADER] = ", ".join(ignored[:50])
            return response

        return json_handler


IGNORED_HEADER = "X-Runplane-Ignored-Fields"
# An ignored field is named in that header, so its name must be one a header carries:
# printable ASCII (no CR/LF, nothing past latin-1), and short. Any other is no field of any
# client: refused before the handler runs, so the refusal changes nothing.
_HEADER_SAFE_NAME = re.compile(r"[\x20-\x7e]{1,200}")


async def _drop_unknown(request: Request, known: frozenset[str]) -> list[str]:
    """Remove the body's top-level fields the model does not know (unless strict); their
    names, sorted."""
    if services(request).settings.strict_validation:
        return []
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return []  # the model's validation answers it
    if not isinstance(data, dict):
        return []
    ignored = sorted(k for k in data if k not in known)
    for name in ignored:
        if not _HEADER_SAFE_NAME.fullmatch(name):
            raise bad_request(f"unknown field {name[:50]!r}: a field name is printable ASCII, "
                              "at most 200 characters")
    if ignored:
        request._body = orjson.dumps({k: v for k, v in data.items() if k in known})
    return ignored
