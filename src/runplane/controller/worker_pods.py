"""``includeWorkers``: each endpoint's live workers as spec Pod objects.

Hot on a busy server (every GET of an endpoint with ``includeWorkers``, and of the list), so:

- the worker registry holds every live worker in memory: endpoints without one (most, on a
  GET of a single endpoint or a long list) cost nothing;
- the rest cost SQL only for workers whose row is not cached yet (``WorkerRowCache``: a live
  worker's row does not change once it was started);
- a Pod object is rebuilt only when its key changes (the worker's state, its endpoint's
  version, its start-up progress), and then the endpoint's template is dumped once (the dump
  is the costly part of building one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runplane.accelerator import describe
from runplane.catalog.catalog import Catalog
from runplane.catalog.machines import Machine
from runplane.clock import iso
from runplane.controller.pod_view import pod_object
from runplane.controller.ports import WorkerRegistryPort
from runplane.controller.worker_rows import WorkerRowCache
from runplane.providers.base import Provider
from runplane.schemas.endpoints import Endpoint
from runplane.worker_state import WorkerState

if TYPE_CHECKING:
    from runplane.broker.models import WorkerView


class WorkerPods:
    """Called as ``services.endpoints.worker_pods``: endpoint ids -> their workers' Pods."""

    def __init__(self, registry: WorkerRegistryPort, rows: WorkerRowCache, provider: Provider,
                 endpoint: Callable[[str], Endpoint | None], catalog: Catalog,
                 progress: Callable[[str], str | None]) -> None:
        """``endpoint``: an endpoint by id; ``progress``: what a starting worker does now."""
        self._registry = registry
        self._rows = rows
        self._provider = provider
        self._endpoint = endpoint
        self._catalog = catalog
        self._progress = progress

    def __call__(self, endpoint_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Each endpoint's live workers (not EXITED) as Pod objects; callers must not modify
        them (they are reused while unchanged)."""
        out: dict[str, list[dict[str, Any]]] = {eid: [] for eid in endpoint_ids}
        if not endpoint_ids:
            return out
        views: dict[str, WorkerView] = {}
        for w in self._registry.all():
            if w.endpoint_id in out and w.status != WorkerState.EXITED:
                views[w.id] = self._registry.view(w)
        if not views:
            return out
        rows = self._rows.rows(views, {i: v.created_at for i, v in views.items()})
        machines = {m.id: m for m in self._provider.machines()}
        endpoints = {eid: self._endpoint(eid) for eid in {r.endpoint_id for r in rows}}
        templates: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row.stopped_at is not None or row.endpoint_id not in out:
                continue
            view, ep = views[row.id], endpoints[row.endpoint_id]
            progress = self._progress(row.id)
            # A Pod object only changes with the worker's state or its endpoint's version:
            # rebuild it then, reuse it otherwise (most GETs of a busy endpoint see the same
            # workers).
            key = (view.status, view.desired_status, view.status_changed_at,
                   ep.version if ep else None, progress, view.accelerator)
            body = self._rows.pod(row.id, key)
            if body is None:
                if row.endpoint_id not in templates:
                    templates[row.endpoint_id] = (ep.template.model_dump()
                                                  if ep is not None and ep.template is not None
                                                  else {})
                body = self._pod(row, view, ep, machines.get(row.machine_id),
                                 templates[row.endpoint_id], progress)
                self._rows.keep_pod(row.id, key, body)
            out[row.endpoint_id].append(body)
        return out

    def row(self, worker_id: str) -> Any:
        """A worker's ``workers`` row as stored now (None if there is none)."""
        return self._rows.fresh(worker_id)

    def live(self, endpoint_id: str) -> list[tuple[Any, WorkerView]]:
        """The endpoint's live workers (not EXITED) as (``workers`` row, protocol view),
        oldest first; rows come from the same cache as the Pods'."""
        views = {w.id: self._registry.view(w) for w in self._registry.all()
                 if w.endpoint_id == endpoint_id and w.status != WorkerState.EXITED}
        if not views:
            return []
        rows = [r for r in self._rows.rows(views, {i: v.created_at for i, v in views.items()})
                if r.stopped_at is None]
        rows.sort(key=lambda r: (r.created_at, r.id))
        return [(row, views[row.id]) for row in rows]

    def _pod(self, row: Any, view: WorkerView, ep: Endpoint | None, machine: Machine | None,
             template: dict[str, Any], progress: str | None) -> dict[str, Any]:
        """One worker as a Pod: its placement, process and endpoint version. ``row``: its
        ``workers`` row."""
        status = view.status
        version = row.endpoint_version
        if ep is not None and version != ep.version and status != WorkerState.EXITED:
            status = WorkerState.OUTDATED.value
        env = {**(template.get("env") or {}), **(ep.env if ep is not None else {}),
               "RUNPOD_POD_ID": row.id,
               "RUNPOD_ENDPOINT_ID": row.endpoint_id,
               "CUDA_VISIBLE_DEVICES": ",".join(
                   str(i) for i in (row.provider_data or {}).get("gpus", []))}
        change = (view.status_changed_at or row.last_status_change_at or row.started_at
                  or row.created_at)
        body = pod_object(
            pod_id=row.id, name=f"{ep.name if ep else row.endpoint_id}-worker-{row.id[:6]}",
            user_id=row.user_id, desired_status=view.desired_status or WorkerState.RUNNING.value,
            image=template.get("imageName", ""), env=env, machine=machine,
            catalog=self._catalog, gpu_type_id=row.gpu_type_id, gpu_count=row.gpu_count,
            cost_per_hr=row.cost_per_hr, vcpu_count=row.vcpu_count,
            memory_in_gb=row.memory_in_gb, last_started_at=row.started_at,
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
        # runplane extension: whether its SDK job loop runs accelerated (None: not known
        # before its first job-take).
        body["accelerator"] = describe(*view.accelerator) if view.accelerator else None
        return body
