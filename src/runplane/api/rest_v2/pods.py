"""/v2/pods: the same pods as /v1/pods, with ``POST /{id}/action`` and logs as SSE.

A v2 pod is rendered from PodService's record by ``api/shapes/rest_v2.py``; its nested
settings (``gpu``, ``cpu``, ``mounts``) are translated here into v1's fields on the way in.
runplane's pods run no SSH or Jupyter server and have no public IP: ``startSsh``/
``startJupyter`` are accepted and change nothing, ``ssh`` answers null endpoints
(docs/migration.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from runplane.api.rest_v2.common import User, V2Route, created, no_content, ok, services
from runplane.api.rest_v2.log_stream import SSE_HEADERS, log_events, parse_query
from runplane.api.rest_v2.serverless_wire import container_fields
from runplane.api.shapes.pod import started_at
from runplane.api.shapes.rest_v2 import pod_v2
from runplane.catalog.machines import cuda_key
from runplane.clock import iso
from runplane.errors import Invalid
from runplane.schemas.pods import PodCreate, PodUpdate
from runplane.schemas.rest_v2 import PodActionV2, PodCreateV2, PodUpdateV2
from runplane.system import Services

router = APIRouter(prefix="/v2/pods", tags=["pods"], route_class=V2Route)


def _mount_fields(mounts: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if mounts is None:
        return out
    if mounts.persistent is not None:
        out["volumeInGb"] = mounts.persistent.size
        out["volumeMountPath"] = mounts.persistent.path
    if mounts.network:
        out["networkVolumeId"] = mounts.network[0].volumeId
        out["volumeMountPath"] = mounts.network[0].path
    return out


def _create_fields(parts: Services, body: PodCreateV2) -> dict[str, Any]:
    out = container_fields(body) | _mount_fields(body.mounts)
    if body.env is not None:
        out["env"] = body.env
    out |= {"name": body.name, "cloudType": body.cloud, "globalNetworking": body.globalNetworking}
    if body.templateId is not None:
        out["templateId"] = body.templateId
    if body.dataCenterIds is not None:
        out["dataCenterIds"] = body.dataCenterIds
    if body.gpu is not None and body.cpu is not None:
        raise Invalid("send at most one of gpu and cpu", "gpu")
    if body.cpu is not None:
        out |= {"computeType": "CPU", "cpuFlavorIds": [body.cpu.id], "vcpuCount": body.cpu.vcpuCount}
    elif body.gpu is not None:
        gpu = body.gpu
        out |= {"computeType": "GPU", "gpuTypeIds": [gpu.id], "gpuCount": gpu.count}
        if gpu.allowedCudaVersions and gpu.minCudaVersion:
            raise Invalid("gpu.minCudaVersion: a non-empty gpu.allowedCudaVersions and a floor "
                          "are mutually exclusive", "gpu.minCudaVersion")
        if gpu.allowedCudaVersions:
            out["allowedCudaVersions"] = gpu.allowedCudaVersions
        elif gpu.minCudaVersion:
            out["allowedCudaVersions"] = [v for v in parts.catalog.cuda_versions
                                          if cuda_key(v) >= cuda_key(gpu.minCudaVersion)]
    return out


@router.get("")
async def list_pods(request: Request, user: User,
                    includeClusterPods: Annotated[bool, Query()] = False) -> Response:
    # No clusters here: includeClusterPods adds nothing.
    return ok({"pods": [pod_v2(p) for p in services(request).pods.list_for(user)]})


@router.post("")
async def create_pod(request: Request, body: PodCreateV2, user: User) -> Response:
    parts = services(request)
    made = parts.pods.create(user, PodCreate.model_validate(_create_fields(parts, body)))
    return created(pod_v2(made))


@router.get("/{id}")
async def get_pod(request: Request, id: str, user: User) -> Response:
    return ok(pod_v2(services(request).pods.get_for(user, id)))


@router.patch("/{id}")
async def update_pod(request: Request, id: str, body: PodUpdateV2, user: User) -> Response:
    if body.templateId is not None:
        raise Invalid("templateId: a pod's template is fixed when it is created", "templateId")
    fields = container_fields(body) | _mount_fields(body.mounts)
    for name in ("name", "env", "locked", "globalNetworking"):
        if getattr(body, name) is not None:
            fields[name] = getattr(body, name)
    pods = services(request).pods
    pods.update(user, id, PodUpdate.model_validate(fields))
    await pods.apply_update(user, id)
    return ok(pod_v2(pods.get_for(user, id)))


@router.delete("/{id}")
async def delete_pod(request: Request, id: str, user: User) -> Response:
    await services(request).pods.delete(user, id)
    return no_content()


@router.post("/{id}/action")
async def pod_action(request: Request, id: str, body: PodActionV2, user: User) -> Response:
    pods = services(request).pods
    if body.action == "terminate":
        await pods.delete(user, id)
        return no_content()
    if body.action == "start":
        return ok(pod_v2(await pods.start(user, id)))
    if body.action == "stop":
        return ok(pod_v2(await pods.stop(user, id)))
    return ok(pod_v2(await pods.restart(user, id, "Restarted by user")))


@router.get("/{id}/logs")
async def pod_logs(
    request: Request, id: str, user: User,
    source: Annotated[str | None, Query()] = None,
    tail: Annotated[int, Query(ge=0, le=5000)] = 100,
    since: Annotated[str | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    parts = services(request)
    pod = parts.pods.get_for(user, id)
    q = parse_query(source, tail, since, last_event_id)
    # What runplane recorded of the pod: its last change (when it started, or was made), at
    # the millisecond the pod's own times show.
    when = started_at(pod) or iso(pod.created_at)
    system = [(_epoch(when), pod.last_status_change)] if pod.last_status_change else []
    return StreamingResponse(
        log_events(parts.provider.log_path(id), system, q, lambda: parts.pods.runs(id),
                   parts.clock),
        media_type="text/event-stream", headers=SSE_HEADERS)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()
