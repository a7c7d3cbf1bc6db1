"""/v1/endpoints: create, list, get, update (PATCH and POST .../update), delete.

``includeWorkers``: the controller's records of the live workers, as Pod objects
(``api/shapes/workers.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from runplane.api.http.responses import json_response
from runplane.api.shapes.workers import WorkerShapes
from runplane.api.v1 import ERRORS, JsonBodyRoute, Responses, caller, no_content, services
from runplane.schemas.endpoints import Endpoint, EndpointCreate, EndpointUpdate
from runplane.services.users import Principal
from runplane.system import Services

router = APIRouter(
    prefix="/v1/endpoints", tags=["endpoints"], responses=ERRORS, route_class=JsonBodyRoute
)
User = Annotated[Principal, Depends(caller)]
TemplateFlag = Annotated[bool, Query(description="Include the endpoint's template.")]
WorkersFlag = Annotated[bool, Query(description="Include the endpoint's workers as Pods.")]
ONE: Responses = {200: {"model": Endpoint, "description": "The endpoint."}}


@router.post("", summary="Create an endpoint", responses=ONE)
async def create_endpoint(request: Request, body: EndpointCreate, user: User) -> Response:
    return json_response(services(request).endpoints.create(user, body).wire())


@router.get("", summary="List endpoints", responses={200: {"model": list[Endpoint]}})
async def list_endpoints(
    request: Request,
    user: User,
    includeTemplate: TemplateFlag = False,
    includeWorkers: WorkersFlag = False,
) -> Response:
    parts = services(request)
    found = parts.endpoints.list_for(user)
    records = parts.worker_pods([e.id for e in found]) if includeWorkers and found else {}
    shapes = worker_shapes(request)
    return json_response(
        [e.wire(includeTemplate, shapes(records.get(e.id, [])) if includeWorkers else None)
         | _status(parts, e.id) for e in found]
    )


@router.get("/{endpointId}", summary="Get an endpoint", responses=ONE)
async def get_endpoint(
    request: Request,
    endpointId: str,
    user: User,
    includeTemplate: TemplateFlag = False,
    includeWorkers: WorkersFlag = False,
) -> Response:
    parts = services(request)
    found = parts.endpoints.get_for(user, endpointId)
    workers = (worker_shapes(request)(parts.worker_pods([endpointId]).get(endpointId, []))
               if includeWorkers else None)
    return json_response(found.wire(includeTemplate, workers) | _status(parts, endpointId))


def worker_shapes(request: Request) -> WorkerShapes:
    """The app's rendered workers (``includeWorkers``), kept while their records live
    (``runplane.api.app`` puts them on the app's state)."""
    shapes: WorkerShapes = request.app.state.worker_shapes
    return shapes


def _status(parts: Services, endpoint_id: str) -> dict[str, Any]:
    """``reason``: why the endpoint's jobs wait, while the controller says they do."""
    reason = parts.controller.endpoint_reason(endpoint_id)
    return {"reason": reason} if reason else {}


@router.patch("/{endpointId}", summary="Update an endpoint", responses=ONE)
@router.post("/{endpointId}/update", summary="Update an endpoint (POST alias)", responses=ONE)
async def update_endpoint(
    request: Request, endpointId: str, body: EndpointUpdate, user: User
) -> Response:
    return json_response(services(request).endpoints.update(user, endpointId, body).wire())


@router.delete("/{endpointId}", summary="Delete an endpoint", status_code=204)
async def delete_endpoint(request: Request, endpointId: str, user: User) -> Response:
    services(request).endpoints.delete(user, endpointId)
    return no_content()
