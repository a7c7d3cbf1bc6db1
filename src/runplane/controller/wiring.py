"""Builds the provider, pod service and controller, and hooks them into the app."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from sqlalchemy import bindparam, select

from runplane.clock import iso
from runplane.controller.pod_view import pod_object
from runplane.controller.reconcile import Controller
from runplane.controller.worker_rows import WorkerRowCache
from runplane.providers.local import LocalProvider
from runplane.providers.runtimes.container_engine import ContainerConfig
from runplane.services.pods import PodService
from runplane.store.tables import workers

log = logging.getLogger("runplane.controller")


def build(services: Any) -> None:
    """Attach ``provider``, ``pods`` and ``controller`` to the services."""
    settings = services.settings
    if settings.provider == "ray":
        provider: Any = ray_provider(settings, services.catalog)
    else:
        provider = LocalProvider(settings.machine, settings.data_dir, services.catalog,
                                 container=ContainerConfig.from_settings(settings))
    controller = Controller(services, provider, settings)
    services.provider = provider
    services.controller = controller
    services.pods = PodService(services.engine, services.clock, settings, services.catalog,
                               provider, services.templates, services.billing, controller.loads,
                               registry_auths=getattr(services, "registry_auths", None))
    controller.pods = services.pods
    row_cache = WorkerRowCache(services.engine)
    services.endpoints.worker_pods = lambda ids: worker_pods(services, ids, row_cache)
    services.endpoints.endpoint_reason = controller.endpoint_reason
    if getattr(services, "broker", None) is not None:
        services.broker.endpoint_status = controller.endpoint_status


def ray_provider(settings: Any, catalog: Any) -> Any:
    """The Ray provider (docs/ray.md), imported only when chosen: ray is an optional extra."""
    try:
        from runplane.providers.ray_provider import RayProvider
    except ImportError as err:
        raise RuntimeError("provider = \"ray\" needs Ray: pip install 'runplane[ray]' "
                           f"({err})") from err
    return RayProvider(settings.machine, settings.data_dir, catalog,
                       address=settings.ray_address, namespace=settings.ray_namespace)


def install(app: FastAPI, services: Any) -> None:
    """Start the reconcile loop with the app, stop it (and every process) with the app."""
    if getattr(services, "controller", None) is None:
        build(services)
    controller: Controller = services.controller
    enabled = services.settings.controller.enabled

    async def start() -> None:
        controller.cleanup_previous_run()
        if enabled and getattr(services, "broker", None) is not None \
                and getattr(services, "worker_registry", None) is not None:
            await controller.start()
        elif enabled:
            log.warning("no job broker: the controller does not scale endpoints")

    app.state.startup_hooks.append(start)
    close = getattr(services.provider, "close", None)
    if close is not None:  # hooks run in reverse: after the controller stopped every worker
        app.state.shutdown_hooks.append(close)
    app.state.shutdown_hooks.append(controller.shutdown)


def worker_pods(services: Any, endpoint_ids: list[str],
                row_cache: WorkerRowCache) -> dict[str, list[dict[str, Any]]]:
    """``includeWorkers``: each endpoint's live workers as spec Pod objects."""
    out: dict[str, list[dict[str, Any]]] = {eid: [] for eid in endpoint_ids}
    if not endpoint_ids:
        return out
    registry = getattr(services, "worker_registry", None)
    views: dict[str, Any] = {}
    if registry is not None:
        # The registry holds every live worker in memory: endpoints without one (most, on a
        # GET of a single endpoint or a long list) cost nothing, the rest only new workers'
        # rows from SQL (see WorkerRowCache).
        for w in registry.all():
            if w.endpoint_id in out and w.status != "EXITED":
                views[w.id] = registry.view(w)
        if not views:
            return out
        rows = row_cache.rows(views)
    else:
        with services.engine.connect() as conn:
            rows = conn.execute(_LIVE_ROWS_OF_ENDPOINTS, {"endpoint_ids": endpoint_ids}).all()
    machines = {m.id: m for m in services.provider.machines()}
    endpoints = {eid: services.endpoints.get(eid) for eid in {r.endpoint_id for r in rows}}
    # One template dump per endpoint, and only when a Pod object must be rebuilt (the dump is
    # the costly part of building one).
    templates: dict[str, dict[str, Any]] = {}
    controller = getattr(services, "controller", None)
    for row in rows:
        if row.stopped_at is not None or row.endpoint_id not in out:
            continue
        view, ep = views.get(row.id), endpoints[row.endpoint_id]
        progress = controller.progress.get(row.id) if controller is not None else None
        # A Pod object only changes with the worker's state or its endpoint's version: rebuild
        # it then, reuse it otherwise (most GETs of a busy endpoint see the same workers).
        key = (view.status if view else row.status, view.desired_status if view else None,
               view.status_changed_at if view else None, ep.version if ep else None, progress)
        body = row_cache.pod(row.id, key)
        if body is None:
            if row.endpoint_id not in templates:
                templates[row.endpoint_id] = (ep.template.model_dump()
                                              if ep is not None and ep.template is not None else {})
            body = worker_pod(services, row, view, ep, machines.get(row.machine_id),
                              templates[row.endpoint_id], progress)
            row_cache.keep_pod(row.id, key, body)
        out[row.endpoint_id].append(body)
    return out


# Built once: SQLAlchemy caches its compiled form, so the IN clause is not recompiled per request.
_LIVE_ROWS_OF_ENDPOINTS = select(workers).where(
    workers.c.endpoint_id.in_(bindparam("endpoint_ids", expanding=True))
    & workers.c.stopped_at.is_(None)
)


def worker_pod(services: Any, row: Any, view: Any, ep: Any, machine: Any,
               template: dict[str, Any], progress: str | None) -> dict[str, Any]:
    """One worker as a Pod: its placement, process and endpoint version."""
    status = view.status if view is not None else row.status
    version = row.endpoint_version
    if ep is not None and version != ep.version and status not in ("EXITED",):
        status = "OUTDATED"
    env = {**(template.get("env") or {}), "RUNPOD_POD_ID": row.id,
           "RUNPOD_ENDPOINT_ID": row.endpoint_id,
           "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in (row.provider_data or {}).get("gpus", []))}
    change = ((view.status_changed_at if view is not None else None)
              or row.last_status_change_at or row.started_at or row.created_at)
    body = pod_object(
        pod_id=row.id, name=f"{ep.name if ep else row.endpoint_id}-worker-{row.id[:6]}",
        user_id=row.user_id,
        desired_status=(view.desired_status if view is not None else row.desired_status)
        or "RUNNING",
        image=template.get("imageName", ""), env=env, machine=machine,
        catalog=services.catalog, gpu_type_id=row.gpu_type_id, gpu_count=row.gpu_count,
        cost_per_hr=row.cost_per_hr, vcpu_count=row.vcpu_count, memory_in_gb=row.memory_in_gb,
        last_started_at=row.started_at,
        last_status_change=f"{status} at {iso(change)}" if change else status,
        template=template, template_id=ep.templateId if ep else None,
        endpoint_id=row.endpoint_id, sls_version=version,
        network_volume=({"id": ep.networkVolumeId} if ep is not None and ep.networkVolumeId
                        else None),
        volume_mount_path="/runpod-volume" if ep is not None and ep.networkVolumeId else None,
        port_mappings=(row.provider_data or {}).get("portMappings"),
    )
    body["workerStatus"] = status  # runplane extension: RunPod's worker state name
    if progress:
        body["reason"] = progress  # runplane extension: e.g. pulling its image, 2 of 5 layers
    body["logPath"] = row.log_path
    return body

