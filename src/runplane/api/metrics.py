"""``GET /metrics``: Prometheus' text format (docs/observability.md).

Unauthenticated by default, like most exporters: it carries endpoint, machine and GPU type
ids and counts, never job input, output or keys. ``metrics_require_auth = true`` asks for an
admin API key (Prometheus: ``authorization: {credentials: <key>}``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from runplane.api.http.auth import require_user
from runplane.api.http.context import services
from runplane.api.http.errors import ApiError
from runplane.observability.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    parts = services(request)
    if parts.settings.metrics_require_auth and not require_user(request).is_admin:
        raise ApiError(403, "/metrics needs an admin API key (metrics_require_auth)")
    return Response(parts.observability.metrics.render(), media_type=CONTENT_TYPE)
