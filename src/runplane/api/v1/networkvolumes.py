"""/v1/networkvolumes: create, list, get, update (PATCH and POST .../update), delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from runplane.api.http.responses import json_response
from runplane.api.v1 import ERRORS, JsonBodyRoute, Responses, caller, no_content, services
from runplane.schemas.volumes import NetworkVolumeCreate, NetworkVolumeUpdate
from runplane.services.users import Principal

router = APIRouter(
    prefix="/v1/networkvolumes",
    tags=["network volumes"],
    responses=ERRORS,
    route_class=JsonBodyRoute,
)
User = Annotated[Principal, Depends(caller)]


class NetworkVolumeOut(BaseModel):
    """The spec's NetworkVolume (documentation only)."""

    id: str
    name: str
    size: int
    dataCenterId: str


ONE: Responses = {200: {"model": NetworkVolumeOut, "description": "The network volume."}}


@router.post("", summary="Create a network volume", responses=ONE)
async def create_volume(request: Request, body: NetworkVolumeCreate, user: User) -> Response:
    return json_response(services(request).volumes.create(user, body).wire())


@router.get("", summary="List network volumes", responses={200: {"model": list[NetworkVolumeOut]}})
async def list_volumes(request: Request, user: User) -> Response:
    return json_response([v.wire() for v in services(request).volumes.list_for(user)])


@router.get("/{networkVolumeId}", summary="Get a network volume", responses=ONE)
async def get_volume(request: Request, networkVolumeId: str, user: User) -> Response:
    return json_response(services(request).volumes.get_for(user, networkVolumeId).wire())


@router.patch("/{networkVolumeId}", summary="Rename or grow a network volume", responses=ONE)
@router.post("/{networkVolumeId}/update", summary="Rename or grow (POST alias)", responses=ONE)
async def update_volume(
    request: Request, networkVolumeId: str, body: NetworkVolumeUpdate, user: User
) -> Response:
    return json_response(services(request).volumes.update(user, networkVolumeId, body).wire())


@router.delete("/{networkVolumeId}", summary="Delete a network volume and its data",
               status_code=204,
               responses={409: {"description": "An endpoint still mounts the volume."}})
async def delete_volume(request: Request, networkVolumeId: str, user: User) -> Response:
    services(request).volumes.delete(user, networkVolumeId)
    return no_content()
