"""Liveness probe for operators and tests."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from runplane import __version__
from runplane.api.http.responses import json_response

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok", "version": __version__})
