"""/v2/serverless: endpoints, their live workers, their releases, a worker's logs (SSE).

The same endpoints as /v1/endpoints (one store, two views: ``serverless_wire``).
LOAD_BALANCER endpoints (``type``, fixed at create) are served by ``api.lb.proxy``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from runplane.api.rest_v2.common import (
    User,
    V2Route,
    created,
    gpu_pools,
    no_content,
    ok,
    services,
)
from runplane.api.rest_v2.log_stream import SSE_HEADERS, log_events, parse_query
from runplane.api.rest_v2.serverless_wire import (
    container_settings,
    create_settings,
    endpoint_view,
    update_changes,
    v2_field_names,
)
from runplane.clock import iso
from runplane.errors import NotFound
from runplane.schemas.endpoints import Endpoint
from runplane.schemas.rest_v2 import EndpointCreateV2, EndpointUpdateV2
from runplane.worker_state import WorkerState

router = APIRouter(prefix="/v2/serverless", tags=["serverless"], route_class=V2Route)

# Worker states that are not REST v2's: a parked (FlashBoot) worker is idle; staleness is
# ``isStale``, not a state.
_V2_STATUS: dict[str, str] = {WorkerState.PARKED: "IDLE", WorkerState.OUTDATED: "IDLE"}
_SUMMARY = ("running", "idle", "initializing", "throttled", "unhealthy")


def _view(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    settings = services(request).settings
    return endpoint_view(endpoint, gpu_pools(request), settings.resolved_api_url,
                         settings.lb.base_domain)


@router.get("")
async def list_endpoints(request: Request, user: User) -> Response:
    found = services(request).endpoints.list_for(user)
    return ok({"endpoints": [_view(request, e) for e in found]})


@router.post("")
async def create_endpoint(request: Request, body: EndpointCreateV2, user: User) -> Response:
    parts = services(request)
    with v2_field_names():
        endpoint = parts.endpoint_templates.create(
            user, create_settings(body, gpu_pools(request)), container_settings(body), body.type)
    return created(_view(request, endpoint))


@router.get("/{id}")
async def get_endpoint(request: Request, id: str, user: User) -> Response:
    return ok(_view(request, services(request).endpoints.get_for(user, id)))


@router.patch("/{id}")
async def update_endpoint(request: Request, id: str, body: EndpointUpdateV2,
                          user: User) -> Response:
    parts = services(request)
    current = parts.endpoints.get_for(user, id)
    with v2_field_names():
        changes = update_changes(body, current, gpu_pools(request))
        endpoint = parts.endpoint_templates.update(user, id, changes, container_settings(body))
    return ok(_view(request, endpoint))


@router.delete("/{id}")
async def delete_endpoint(request: Request, id: str, user: User) -> Response:
    services(request).endpoints.delete(user, id)
    return no_content()


@router.get("/{id}/workers")
async def list_workers(request: Request, id: str, user: User) -> Response:
    parts = services(request)
    endpoint = parts.endpoints.get_for(user, id)
    now = parts.clock.now()
    image = endpoint.template.imageName if endpoint.template else None
    out, summary = [], dict.fromkeys(_SUMMARY, 0)
    live = parts.worker_pods.live(id)
    dcs = {m.id: m.data_center_id for m in parts.provider.machines()} if live else {}
    for row, view in live:
        status = "IDLE" if view.parked else _V2_STATUS.get(view.status, view.status)
        summary[status.lower()] = summary.get(status.lower(), 0) + 1
        out.append({
            "id": row.id, "status": status, "isStale": row.endpoint_version != endpoint.version,
            "version": row.endpoint_version, "gpuCount": row.gpu_count,
            "image": image if row.endpoint_version == endpoint.version else None,
            "uptimeSeconds": int(now - row.started_at) if row.started_at else None,
            "gpuTypeId": row.gpu_type_id, "dataCenterId": dcs.get(row.machine_id),
            "startedAt": iso(row.started_at) if row.started_at else None,
        })
    summary["total"] = len(out)
    return ok({"workers": out, "summary": summary, "endpointVersion": endpoint.version})


@router.get("/{id}/releases")
async def list_releases(request: Request, id: str, user: User) -> Response:
    parts = services(request)
    endpoint = parts.endpoints.get_for(user, id)
    by_version: dict[int, int] = {}
    live = parts.worker_pods.live(id)
    for row, _ in live:
        by_version[row.endpoint_version] = by_version.get(row.endpoint_version, 0) + 1
    releases = [{**r, "source": "MANUAL", "buildId": None,
                 "workerCount": by_version.get(r["version"], 0)}
                for r in parts.endpoints.releases(user, id)]
    on_latest = by_version.get(endpoint.version, 0)
    total = len(live)
    rollout = {"inProgress": on_latest < total, "workersOnLatest": on_latest,
               "workersTotal": total,
               "percentOnLatest": 100 if total == 0 else on_latest * 100 // total}
    return ok({"endpointVersion": endpoint.version, "rollout": rollout, "releases": releases})


@router.get("/{id}/workers/{workerId}/logs")
async def worker_logs(
    request: Request, id: str, workerId: str, user: User,
    source: Annotated[str | None, Query()] = None,
    tail: Annotated[int, Query(ge=0, le=5000)] = 100,
    since: Annotated[str | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    parts = services(request)
    parts.endpoints.get_for(user, id)
    row = parts.worker_pods.row(workerId)
    if row is None or row.endpoint_id != id:
        raise NotFound("worker", workerId)
    q = parse_query(source, tail, since, last_event_id)
    system = _system_lines(row)
    registry = parts.workers

    def running() -> bool:
        worker = registry.get(workerId)
        return worker is not None and worker.status != WorkerState.EXITED

    path = parts.provider.log_path(workerId) if row.log_path or running() else None
    return StreamingResponse(log_events(path, system, q, running, parts.clock),
                             media_type="text/event-stream", headers=SSE_HEADERS)


def _system_lines(row: Any) -> list[tuple[float, str]]:
    """What runplane recorded of a worker, as log lines."""
    registered = (f"worker {row.id} registered for endpoint {row.endpoint_id} "
                  f"(version {row.endpoint_version})")
    out = [(row.created_at, registered)]
    if row.started_at:
        gpus = f"{row.gpu_count} x {row.gpu_type_id}" if row.gpu_type_id else \
            f"{row.vcpu_count} vCPUs"
        out.append((row.started_at, f"started on machine {row.machine_id} with {gpus}"))
    if row.stopped_at:
        code = f" (exit code {row.exit_code})" if row.exit_code is not None else ""
        out.append((row.stopped_at, f"stopped: {row.reason or 'exited'}{code}"))
    return out
