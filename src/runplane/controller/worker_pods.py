"""``includeWorkers``: each endpoint's live workers as records (``WorkerRecord``), which the
api layer renders as spec Pod objects (``api/shapes/workers.py``).

Hot on a busy server (every GET of an endpoint with ``includeWorkers``, and of the list), so:

- the worker registry holds every live worker in memory: endpoints without one (most, on a
  GET of a single endpoint or a long list) cost nothing;
- the rest cost SQL only for workers whose row is not cached yet (``WorkerRowCache``: a live
  worker's row does not change once it was started);
- a record is rebuilt only when its key changes (the worker's state, its endpoint's version,
  its start-up progress), and then the endpoint's template is dumped once (the dump is the
  costly part of building one); while it is reused, so is what the api layer rendered of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runplane.catalog.machines import Machine
from runplane.clock import iso
from runplane.controller.ports import WorkerRegistryPort
from runplane.controller.worker_rows import WorkerRowCache
from runplane.providers.base import Provider
from runplane.schemas.endpoints import Endpoint
from runplane.schemas.pod_records import WorkerRecord
from runplane.worker_state import WorkerState

if TYPE_CHECKING:
    from runplane.broker.models import WorkerView


class WorkerPods:
    """Called as ``services.worker_pods``: endpoint ids -> their workers' records."""

    def __init__(self, registry: WorkerRegistryPort, rows: WorkerRowCache, provider: Provider,
                 endpoint: Callable[[str], Endpoint | None],
                 progress: Callable[[str], str | None]) -> None:
        """``endpoint``: an endpoint by id; ``progress``: what a starting worker does now."""
        self._registry = registry
        self._rows = rows
        self._provider = provider
        self._endpoint = endpoint
        self._progress = progress

    def __call__(self, endpoint_ids: list[str]) -> dict[str, list[WorkerRecord]]:
        """Each endpoint's live workers (not EXITED) as records; a record is the same object
        while its worker is unchanged (callers must not modify it)."""
        out: dict[str, list[WorkerRecord]] = {eid: [] for eid in endpoint_ids}
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
            # A record only changes with the worker's state or its endpoint's version:
            # rebuild it then, reuse it otherwise (most GETs of a busy endpoint see the same
            # workers).
            key = (view.status, view.desired_status, view.status_changed_at,
                   ep.version if ep else None, progress, view.accelerator)
            record = self._rows.record(row.id, key)
            if record is None:
                if row.endpoint_id not in templates:
                    templates[row.endpoint_id] = (ep.template.model_dump()
                                                  if ep is not None and ep.template is not None
                                                  else {})
                record = _record(row, view, ep, machines.get(row.machine_id),
                                 templates[row.endpoint_id], progress)
                self._rows.keep_record(row.id, key, record)
            out[row.endpoint_id].append(record)
        return out

    def row(self, worker_id: str) -> Any:
        """A worker's ``workers`` row as stored now (None if there is none)."""
        return self._rows.fresh(worker_id)

    def live(self, endpoint_id: str) -> list[tuple[Any, WorkerView]]:
        """The endpoint's live workers (not EXITED) as (``workers`` row, protocol view),
        oldest first; rows come from the same cache as the records'."""
        views = {w.id: self._registry.view(w) for w in self._registry.all()
                 if w.endpoint_id == endpoint_id and w.status != WorkerState.EXITED}
        if not views:
            return []
        rows = [r for r in self._rows.rows(views, {i: v.created_at for i, v in views.items()})
                if r.stopped_at is None]
        rows.sort(key=lambda r: (r.created_at, r.id))
        return [(row, views[row.id]) for row in rows]


def _record(row: Any, view: WorkerView, ep: Endpoint | None, machine: Machine | None,
            template: dict[str, Any], progress: str | None) -> WorkerRecord:
    """One worker as a pod: its placement, process and endpoint version, with its
    template's settings. ``row``: its ``workers`` row."""
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
    volume = ep.networkVolumeId if ep is not None else None
    return WorkerRecord(
        id=row.id, name=f"{ep.name if ep else row.endpoint_id}-worker-{row.id[:6]}",
        user_id=row.user_id, desired_status=view.desired_status or WorkerState.RUNNING.value,
        image=template.get("imageName", ""), env=env, machine=machine,
        gpu_type_id=row.gpu_type_id, gpu_count=row.gpu_count,
        cost_per_hr=row.cost_per_hr, vcpu_count=row.vcpu_count,
        memory_in_gb=row.memory_in_gb, last_started_at=row.started_at,
        last_status_change=f"{status} at {iso(change)}" if change else status,
        template_id=ep.templateId if ep else None,
        endpoint_id=row.endpoint_id, sls_version=version,
        network_volume_id=volume or None,
        volume_mount_path="/runpod-volume" if volume else template.get("volumeMountPath"),
        ports=list(template.get("ports") or []),
        port_mappings=(row.provider_data or {}).get("portMappings") or {},
        container_disk_in_gb=template.get("containerDiskInGb"),
        volume_in_gb=template.get("volumeInGb"),
        docker_entrypoint=list(template.get("dockerEntrypoint") or []),
        docker_start_cmd=list(template.get("dockerStartCmd") or []),
        registry_auth_id=template.get("containerRegistryAuthId") or None,
        worker_status=status, progress=progress, log_path=row.log_path,
        accelerator=view.accelerator)
