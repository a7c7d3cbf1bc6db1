"""``POST /graphql``: RunPod's GraphQL API as the ``runpod`` SDK's management calls use it
(``runpod.get_endpoints()``, ``create_template()``, ``create_pod()``...; ``runpod project
deploy``), over the same services as REST v1.

The key comes as ``Authorization: Bearer <key>`` (the SDK) or ``?api_key=<key>`` (RunPod's
GraphQL docs). A missing or invalid key is a 401, which the SDK reports as an
AuthenticationError; every other refusal is an entry of ``errors`` in a 200 (or, for a body
that is not a GraphQL request, a 400; a document over ``[limits] graphql_max_document_bytes``,
a 413; past ``graphql_per_minute`` for the key, a 429 with Retry-After), which the SDK raises
as its ``QueryError`` with the message. Documents are parsed and validated off the event
loop, capped in tokens and fields first (``schema.prepare``). The schema is
``schema.graphql``; resolvers only translate (``account``, ``templates``, ``endpoints``,
``pods``).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from runplane.api.graphql.context import Context
from runplane.api.graphql.schema import run
from runplane.api.http.auth import client_address, count_create, presented_key
from runplane.api.http.context import services
from runplane.api.http.responses import json_response
from runplane.errors import RateLimited

router = APIRouter(tags=["graphql"])


def _errors(status: int, message: str, code: str,
            headers: dict[str, str] | None = None) -> Response:
    return json_response({"errors": [{"message": message, "extensions": {
        "code": code, "status": status}}]}, status=status, headers=headers)


@router.post("/graphql", summary="RunPod's GraphQL API (the runpod SDK's management calls)")
async def graphql_endpoint(request: Request) -> Response:
    parts = services(request)
    key = presented_key(request) or request.query_params.get("api_key")
    if not key:
        return _errors(401, "missing API key: send 'Authorization: Bearer <key>' or ?api_key=",
                       "UNAUTHENTICATED")
    try:
        principal = parts.users.authenticate(key, client_address(request.scope))
    except RateLimited as exc:  # too many failed keys from this address
        return _errors(429, exc.message, "RATE_LIMITED", {"Retry-After": str(exc.retry_after)})
    if principal is None:
        return _errors(401, "invalid or revoked API key", "UNAUTHENTICATED")
    limits = parts.settings.limits
    who = ("graphql", principal.key_id or principal.user_id)
    try:  # before the body is read: a refused request costs a dict lookup
        parts.limits.check(parts.limits.graphql, who, "GraphQL requests for this key")
    except RateLimited as exc:
        return _errors(429, exc.message, "RATE_LIMITED", {"Retry-After": str(exc.retry_after)})
    try:
        payload: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return _errors(400, f"malformed JSON body: {exc}", "BAD_REQUEST")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return _errors(400, "the body must be a JSON object with a 'query' string", "BAD_REQUEST")
    size = len(payload["query"].encode())
    if size > limits.graphql_max_document_bytes:  # refused before the parser sees it
        return _errors(413, f"the document is {size} bytes; at most "
                            f"{limits.graphql_max_document_bytes} are parsed",
                       "PAYLOAD_TOO_LARGE")
    variables = payload.get("variables")
    operation = payload.get("operationName")
    if variables is not None and not isinstance(variables, dict):
        return _errors(400, "'variables' must be a JSON object", "BAD_REQUEST")
    if operation is not None and not isinstance(operation, str):
        return _errors(400, "'operationName' must be a string", "BAD_REQUEST")
    context = Context(parts, principal, lambda: count_create(request))
    return json_response(await run(payload["query"], context, variables, operation,
                                   limits.graphql_max_tokens))
