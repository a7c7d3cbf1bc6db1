"""/v1/pods: create, list, get, update, delete, start, stop, reset, restart, and logs.

PodService answers records; each is rendered as the spec's Pod object here
(``api/shapes/pod.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import PlainTextResponse, Response

from runplane.api.http.responses import json_response
from runplane.api.shapes.pod import pod
from runplane.api.v1 import ERRORS, caller, no_content, services
from runplane.schemas.pod_records import PodFilter, PodRecord
from runplane.schemas.pods import PodCreate, PodUpdate
from runplane.services.users import Principal

router = APIRouter(prefix="/v1/pods", tags=["pods"], responses=ERRORS)
User = Annotated[Principal, Depends(caller)]


def _pods(request: Request):  # type: ignore[no-untyped-def]
    return services(request).pods


def _answer(request: Request, record: PodRecord, status: int = 200) -> Response:
    return json_response(pod(record, services(request).catalog), status=status)


@router.post("", summary="Create a pod", status_code=201)
async def create_pod(request: Request, body: PodCreate, user: User) -> Response:
    return _answer(request, _pods(request).create(user, body), 201)


@router.get("", summary="List pods")
async def list_pods(
    request: Request,
    user: User,
    computeType: Annotated[str | None, Query()] = None,
    gpuTypeId: Annotated[str | None, Query()] = None,
    dataCenterId: Annotated[str | None, Query()] = None,
    desiredStatus: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    templateId: Annotated[str | None, Query()] = None,
    imageName: Annotated[str | None, Query()] = None,
    id: Annotated[str | None, Query()] = None,
) -> Response:
    narrow = PodFilter(compute_type=computeType, gpu_type_id=gpuTypeId,
                       data_center_id=dataCenterId, desired_status=desiredStatus, name=name,
                       template_id=templateId, image=imageName, id=id)
    catalog = services(request).catalog
    return json_response([pod(p, catalog) for p in _pods(request).list_for(user, narrow)])


@router.get("/{podId}", summary="Get a pod")
async def get_pod(request: Request, podId: str, user: User) -> Response:
    return _answer(request, _pods(request).get_for(user, podId))


@router.get("/{podId}/logs", summary="The pod's output (runplane extension)")
async def pod_logs(request: Request, podId: str, user: User) -> Response:
    return PlainTextResponse(_pods(request).logs(user, podId))


@router.patch("/{podId}", summary="Update a pod (restarts it if running)")
@router.post("/{podId}/update", summary="Update a pod (POST alias)")
async def update_pod(request: Request, podId: str, body: PodUpdate, user: User) -> Response:
    svc = _pods(request)
    svc.update(user, podId, body)
    await svc.apply_update(user, podId)
    return _answer(request, svc.get_for(user, podId))


@router.delete("/{podId}", summary="Delete a pod", status_code=204)
async def delete_pod(request: Request, podId: str, user: User) -> Response:
    await _pods(request).delete(user, podId)
    return no_content()


@router.post("/{podId}/start", summary="Start a pod")
async def start_pod(request: Request, podId: str, user: User) -> Response:
    return _answer(request, await _pods(request).start(user, podId))


@router.post("/{podId}/stop", summary="Stop a pod")
async def stop_pod(request: Request, podId: str, user: User) -> Response:
    return _answer(request, await _pods(request).stop(user, podId))


@router.post("/{podId}/restart", summary="Restart a pod")
async def restart_pod(request: Request, podId: str, user: User) -> Response:
    return _answer(request, await _pods(request).restart(user, podId, "Restarted by user"))


@router.post("/{podId}/reset", summary="Reset a pod")
async def reset_pod(request: Request, podId: str, user: User) -> Response:
    return _answer(request, await _pods(request).restart(user, podId, "Reset by user"))
