"""/v1/templates: create, list, get, update (PATCH and POST .../update), delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runplane.api.http.responses import json_response
from runplane.api.v1 import ERRORS, JsonBodyRoute, Responses, caller, no_content, services
from runplane.schemas.templates import Template, TemplateCreate, TemplateUpdate
from runplane.services.users import Principal

router = APIRouter(
    prefix="/v1/templates", tags=["templates"], responses=ERRORS, route_class=JsonBodyRoute
)
User = Annotated[Principal, Depends(caller)]
BoundFlag = Annotated[bool, Query(description="Include templates used by endpoints.")]
PublicFlag = Annotated[bool, Query(description="Include other users' public templates.")]
RunpodFlag = Annotated[bool, Query(description="Include the operator's public templates.")]
ONE: Responses = {200: {"model": Template, "description": "The template."}}


@router.post("", summary="Create a template", responses=ONE)
async def create_template(request: Request, body: TemplateCreate, user: User) -> Response:
    return json_response(services(request).templates.create(user, body).wire())


@router.get("", summary="List templates", responses={200: {"model": list[Template]}})
async def list_templates(
    request: Request,
    user: User,
    includeEndpointBoundTemplates: BoundFlag = False,
    includePublicTemplates: PublicFlag = False,
    includeRunpodTemplates: RunpodFlag = False,
) -> Response:
    found = services(request).templates.list_for(
        user, includeEndpointBoundTemplates, includePublicTemplates, includeRunpodTemplates
    )
    return json_response([t.wire() for t in found])


@router.get("/{templateId}", summary="Get a template", responses=ONE)
async def get_template(
    request: Request,
    templateId: str,
    user: User,
    includeEndpointBoundTemplates: BoundFlag = False,
    includePublicTemplates: PublicFlag = False,
    includeRunpodTemplates: RunpodFlag = False,
) -> Response:
    # Endpoint-bound templates are the caller's own: always readable by id.
    found = services(request).templates.get_for(
        user, templateId, includePublicTemplates, includeRunpodTemplates
    )
    return json_response(found.wire())


@router.patch("/{templateId}", summary="Update a template", responses=ONE)
@router.post("/{templateId}/update", summary="Update a template (POST alias)", responses=ONE)
async def update_template(
    request: Request, templateId: str, body: TemplateUpdate, user: User
) -> Response:
    return json_response(services(request).templates.update(user, templateId, body).wire())


@router.delete("/{templateId}", summary="Delete a template", status_code=204,
               responses={409: {"description": "An endpoint still uses the template."}})
async def delete_template(request: Request, templateId: str, user: User) -> Response:
    services(request).templates.delete(user, templateId)
    return no_content()
