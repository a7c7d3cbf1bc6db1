"""/v1/containerregistryauth: create, list, get, delete (no update in the spec)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from runplane.api.http.responses import json_response
from runplane.api.v1 import ERRORS, JsonBodyRoute, Responses, caller, no_content, services
from runplane.schemas.registry import RegistryAuthCreate
from runplane.services.users import Principal

router = APIRouter(
    prefix="/v1/containerregistryauth",
    tags=["container registry auth"],
    responses=ERRORS,
    route_class=JsonBodyRoute,
)
User = Annotated[Principal, Depends(caller)]


class RegistryAuthOut(BaseModel):
    """The spec's ContainerRegistryAuth: never the username or password."""

    id: str
    name: str


ONE: Responses = {200: {"model": RegistryAuthOut, "description": "The credentials' id and name."}}


@router.post("", summary="Store container registry credentials", responses=ONE)
async def create_auth(request: Request, body: RegistryAuthCreate, user: User) -> Response:
    return json_response(services(request).registry_auths.create(user, body).wire())


@router.get("", summary="List container registry auths",
            responses={200: {"model": list[RegistryAuthOut]}})
async def list_auths(request: Request, user: User) -> Response:
    return json_response([a.wire() for a in services(request).registry_auths.list_for(user)])


@router.get("/{containerRegistryAuthId}", summary="Get a container registry auth", responses=ONE)
async def get_auth(request: Request, containerRegistryAuthId: str, user: User) -> Response:
    return json_response(
        services(request).registry_auths.get_for(user, containerRegistryAuthId).wire()
    )


@router.delete("/{containerRegistryAuthId}", summary="Delete a container registry auth",
               status_code=204,
               responses={409: {"description": "A template still uses the credentials."}})
async def delete_auth(request: Request, containerRegistryAuthId: str, user: User) -> Response:
    services(request).registry_auths.delete(user, containerRegistryAuthId)
    return no_content()
