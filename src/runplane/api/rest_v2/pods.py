"""/v2/pods: the same pods as /v1/pods, with ``POST /{id}/action`` and logs as SSE.

v2's pod is v1's with nested settings: ``gpu {id, count}`` is ``gpuTypeIds [id]`` and
``gpuCount``, ``cpu {id, vcpuCount}`` a CPU pod's flavor, ``mounts.persistent`` its volume
disk, ``mounts.network [{volumeId, path}]`` its network volume. ``status`` is RUNNING while its
process runs, EXITED otherwise. runplane's pods run no SSH or Jupyter server and have no public
IP: ``startSsh``/``startJupyter`` are accepted and change nothing, ``ssh`` answers null
endpoints (docs/migration.md).
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from runplane.api.rest_v2.common import User, V2Route, created, no_content, ok, services
from runplane.api.rest_v2.log_stream import SSE_HEADERS, log_events, parse_query
from runplane.api.rest_v2.serverless_wire import container_fields
from runplane.catalog.machines import cuda_key
from runplane.errors import Invalid
from runplane.schemas.pods import PodCreate, PodUpdate
from runplane.schemas.rest_v2 import PodActionV2, PodCreateV2, PodUpdateV2
from runplane.system import Services

router = APIRouter(prefix="/v2/pods", tags=["pods"], route_class=V2Route)


def pod_view(p: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``Pod`` of a v1 Pod object."""
    running = p["desiredStatus"] == "RUNNING"
    machine = p.get("machine") or {}
    gpu = p.get("gpu")
    mounts: dict[str, Any] = {}
    if p.get("volumeInGb"):
        mounts["persistent"] = {"size": p["volumeInGb"], "path": p.get("volumeMountPath") or "/workspace"}
    if p.get("networkVolume"):
        mounts["network"] = [{"volumeId": p["networkVolume"]["id"],
                              "path": p.get("volumeMountPath") or "/workspace"}]
    body: dict[str, Any] = {
        "id": p["id"], "name": p["name"], "status": "RUNNING" if running else "EXITED",
        "actions": ["stop", "restart", "terminate"] if running else ["start", "terminate"],
        "image": p["image"], "args": shlex.join(p.get("dockerStartCmd") or []),
        "disk": p.get("containerDiskInGb") or 1, "mounts": mounts, "ports": list(p.get("ports") or []),
        "env": dict(p.get("env") or {}), "registry": p.get("containerRegistryAuthId"),
        "cloud": "SECURE" if machine.get("secureCloud", True) else "COMMUNITY",
        "dataCenterId": machine.get("dataCenterId"), "cudaVersion": machine.get("cudaVersion"),
        "ssh": {"proxy": None, "direct": None}, "template": p.get("templateId"),
        "cost": float(p.get("costPerHr") or 0), "locked": bool(p.get("locked")),
        "globalNetworking": {"enabled": False},
        "runtime": ({"uptime": 0, "ports": [
            {"private": int(k), "public": v, "type": "tcp", "ip": None}
            for k, v in (p.get("portMappings") or {}).items() if str(k).isdigit()]}
            if running else None),
        "createdAt": p["createdAt"],
        "startedAt": p.get("lastStartedAt") if running else None,
    }
    if gpu:
        body["gpu"] = {"id": gpu["id"], "count": gpu.get("count", 1)}
    elif p.get("cpuFlavorId"):
        vcpus = int(p.get("vcpuCount") or 0)
        body["cpu"] = {"id": p["cpuFlavorId"], "vcpuCount": max(2, vcpus),
                       "memory": max(1, int(p.get("memoryInGb") or 1))}
    return body


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
    return ok({"pods": [pod_view(p) for p in services(request).pods.list_for(user, {})]})


@router.post("")
async def create_pod(request: Request, body: PodCreateV2, user: User) -> Response:
    parts = services(request)
    made = parts.pods.create(user, PodCreate.model_validate(_create_fields(parts, body)))
    return created(pod_view(made))


@router.get("/{id}")
async def get_pod(request: Request, id: str, user: User) -> Response:
    return ok(pod_view(services(request).pods.get_for(user, id)))


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
    return ok(pod_view(pods.get_for(user, id)))


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
        return ok(pod_view(await pods.start(user, id)))
    if body.action == "stop":
        return ok(pod_view(await pods.stop(user, id)))
    return ok(pod_view(await pods.restart(user, id, "Restarted by user")))


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
    # What runplane recorded of the pod: its last change (when it started, or was made).
    when = pod.get("lastStartedAt") or pod["createdAt"]
    system = [(_epoch(when), pod["lastStatusChange"])] if pod.get("lastStatusChange") else []
    return StreamingResponse(
        log_events(parts.provider.log_path(id), system, q, lambda: parts.pods.runs(id),
                   parts.clock),
        media_type="text/event-stream", headers=SSE_HEADERS)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()
