"""/v1/machines (admin): the machines workers and pods run on, with free and used capacity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from runplane.api.http.errors import ApiError
from runplane.api.http.responses import json_response
from runplane.api.v1 import ERRORS, caller, services
from runplane.controller.capacity import machines_report
from runplane.services.users import Principal

router = APIRouter(prefix="/v1/machines", tags=["machines"], responses=ERRORS)
User = Annotated[Principal, Depends(caller)]


@router.get("", summary="List machines (admin)")
async def list_machines(request: Request, user: User) -> Response:
    if not user.is_admin:
        raise ApiError(403, "listing machines needs an admin key")
    return json_response(machines_report(services(request).controller))
