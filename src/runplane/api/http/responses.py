"""Fast JSON responses (orjson) used by every router."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

# Deeper values are cut when written (orjson writes at most 254 levels).
_MAX_DEPTH = 200
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def dumps(body: Any) -> bytes:
    """orjson's bytes; NaN/Infinity become null. What orjson cannot write (an integer past 64
    bits, nesting past its limit: results stored before job-done refused them) is written
    with such integers as strings and the too-deep part replaced, so no read answers 500."""
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson.JSONEncodeError
        return orjson.dumps(_writable(body, 0))


def _writable(value: Any, depth: int) -> Any:
    if depth >= _MAX_DEPTH:
        return "(nested too deep to show)"
    if isinstance(value, dict):
        return {str(k): _writable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(v, depth + 1) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) \
            and not _INT_MIN <= value <= _INT_MAX:
        return str(value)
    return value


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise with ``dumps``; NaN/Infinity become null rather than invalid JSON."""
    return Response(
        dumps(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
