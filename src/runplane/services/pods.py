"""Pods: long-running processes from a template (or an image + command) on a machine.

A pod asks for resources like an endpoint does (GPU types and count, or CPU vCPUs), is placed
by the same scheduler and started by the same launcher as workers (``controller/launcher.py``),
and holds its placement in the same ledger (``controller/allocations.py``). ``desiredStatus``
is RUNNING or EXITED; stop frees its GPUs, start places it again. Billing is one usage record
per run.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Engine, delete, insert, select, update

from runplane.catalog.catalog import Catalog
from runplane.clock import Clock
from runplane.controller.allocations import Allocations
from runplane.controller.launcher import Launcher, VolumeMount
from runplane.controller.ports import TemplateSource, UsageRecorder
from runplane.controller.scheduler import NoFit, Placement
from runplane.errors import Conflict, DomainError, Invalid, NotFound
from runplane.ids import new_id
from runplane.providers.base import EXITED, ImageError, ProcessInfo, Provider
from runplane.schemas.pod_records import PodFilter, PodRecord
from runplane.schemas.pods import PodCreate, PodUpdate
from runplane.services.access import can_see, owned_by
from runplane.services.users import Principal
from runplane.store.tables import pods

_STOP_GRACE_S = 10.0
# A pod's desiredStatus (RunPod's PodDesiredStatus; a pod is not a serverless worker).
POD_RUNNING, POD_EXITED = "RUNNING", "EXITED"
NO_COMMAND = ("the process runtime needs a command: set dockerStartCmd (and/or "
              "dockerEntrypoint), e.g. [\"python\", \"app.py\"]")


class PodReferences(Protocol):
    """What the pod service asks of the other services about the ids a pod names."""

    def check_image(self, principal: Principal, image: str | None) -> None:
        """Raise ``Forbidden`` when the caller may not run ``image`` (a ``local:`` one)."""
        ...

    def volume_owner(self, volume_id: str) -> str | None:
        """The owner of a network volume; None when there is none."""
        ...

    def auth_owner(self, auth_id: str) -> str | None:
        """The owner of registry credentials; None when there are none."""
        ...

    def bind_auth(self, auth_id: str, image: str) -> None:
        """Bind registry credentials to ``image``'s registry (``Invalid`` if bound elsewhere)."""
        ...


class PodService:
    """CRUD and lifecycle of pods. A pod runs while it holds a placement in ``allocations``
    (shared with the controller's workers, so both see the same free GPUs)."""

    def __init__(self, engine: Engine, clock: Clock, catalog: Catalog, provider: Provider,
                 templates: TemplateSource, billing: UsageRecorder, launcher: Launcher,
                 allocations: Allocations, owners: PodReferences) -> None:
        self._engine = engine
        self._clock = clock
        self._catalog = catalog
        self._provider = provider
        self._templates = templates
        self._billing = billing
        self._launcher = launcher
        self._allocations = allocations
        self._owners = owners
        self._stopping: set[str] = set()

    # -- reads --------------------------------------------------------------------

    def _row(self, principal: Principal, pod_id: str) -> Any:
        with self._engine.connect() as conn:
            row = conn.execute(select(pods).where(pods.c.id == pod_id)).first()
        if row is None or not can_see(principal, row.user_id):
            raise NotFound("pod", pod_id)
        return row

    def get_for(self, principal: Principal, pod_id: str) -> PodRecord:
        return self._record(self._row(principal, pod_id))

    def list_for(self, principal: Principal, narrow: PodFilter | None = None) -> list[PodRecord]:
        """The pods ``principal`` may see, oldest first, narrowed by ``narrow``."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(pods).where(owned_by(principal, pods))
                                .order_by(pods.c.created_at, pods.c.id)).all()
        out = [self._record(r) for r in rows]
        return out if narrow is None else [p for p in out if narrow.matches(p)]

    def placements(self) -> list[Placement]:
        """What every running pod holds."""
        return self._allocations.pod_placements()

    def unfinished_process_data(self) -> list[dict[str, Any]]:
        """``provider_data`` of every pod whose run is not recorded as ended (for the
        start-up cleanup of what a previous server run left behind)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(pods.c.provider_data).where(
                pods.c.stopped_at.is_(None), pods.c.provider_data.is_not(None))).all()
        return [row.provider_data or {} for row in rows]

    def _record(self, row: Any) -> PodRecord:
        """A ``pods`` row as what it reports, with the machine it runs on."""
        spec = row.spec
        data = row.provider_data or {}
        return PodRecord(
            id=row.id, name=row.name, user_id=row.user_id, desired_status=row.desired_status,
            image=spec.get("imageName", ""), env=spec.get("env", {}),
            machine=next((m for m in self._provider.machines() if m.id == row.machine_id),
                         None),
            gpu_type_id=row.gpu_type_id, gpu_count=row.gpu_count, cost_per_hr=row.cost_per_hr,
            vcpu_count=row.vcpu_count, memory_in_gb=row.memory_in_gb,
            last_started_at=row.last_started_at, last_status_change=row.last_status_change,
            template_id=row.template_id, network_volume_id=spec.get("networkVolumeId") or None,
            volume_mount_path=spec.get("volumeMountPath"), ports=spec.get("ports") or [],
            # Published ports only while it runs: a stopped pod's are gone.
            port_mappings=(data.get("portMappings") or {}) if row.stopped_at is None else {},
            cpu_flavor_id=data.get("cpuFlavorId"),
            interruptible=spec.get("interruptible", False), locked=spec.get("locked", False),
            container_disk_in_gb=spec.get("containerDiskInGb"),
            volume_in_gb=spec.get("volumeInGb"),
            docker_entrypoint=spec.get("dockerEntrypoint") or [],
            docker_start_cmd=spec.get("dockerStartCmd") or [],
            registry_auth_id=spec.get("containerRegistryAuthId") or None,
            created_at=row.created_at)

    # -- writes -------------------------------------------------------------------

    def create(self, principal: Principal, body: PodCreate) -> PodRecord:
        """Resolve the template, check the image, place and start; 400/409 with the reason."""
        spec = body.model_dump()
        if body.templateId:
            template = self._templates.get(body.templateId)
            if template is None or not (can_see(principal, template.userId) or template.isPublic):
                raise Invalid(f"template {body.templateId} not found", "templateId")
            t = template.model_dump()
            # Another user's public template lends its image and command, never its owner's
            # registry credentials or environment (docs/security.md).
            own = template.userId == principal.user_id
            for key in ("imageName", "dockerEntrypoint", "dockerStartCmd", "ports",
                        "volumeMountPath", "containerDiskInGb", "volumeInGb",
                        *(("containerRegistryAuthId",) if own else ())):
                if key not in body.model_fields_set and t.get(key) is not None:
                    spec[key] = t[key]
            spec["env"] = {**((t.get("env") or {}) if own else {}), **body.env}
        if not spec.get("imageName"):
            raise Invalid("imageName or templateId is required", "imageName")
        self._check_references(principal, principal.user_id, spec, set(spec))
        self._check_runnable(spec)
        pod_id = new_id()
        now = self._clock.now()
        with self._engine.begin() as conn:
            conn.execute(insert(pods).values(
                id=pod_id, user_id=principal.user_id, name=body.name, template_id=body.templateId,
                created_at=now, desired_status=POD_RUNNING, spec=spec, gpu_count=0,
                vcpu_count=0, memory_in_gb=0, cost_per_hr=0, provider_data={},
                last_status_change="Created"))
        try:
            self._launch(pod_id)
        except DomainError:
            with self._engine.begin() as conn:
                conn.execute(delete(pods).where(pods.c.id == pod_id))
            raise
        return self.get_for(principal, pod_id)

    def update(self, principal: Principal, pod_id: str, body: PodUpdate) -> PodRecord:
        row = self._row(principal, pod_id)
        given = body.given()
        spec = {**row.spec, **given}
        self._check_references(principal, row.user_id, spec, set(given))
        self._check_runnable(spec)
        with self._engine.begin() as conn:
            conn.execute(update(pods).where(pods.c.id == pod_id).values(
                spec=spec, name=spec.get("name", row.name)))
        return self.get_for(principal, pod_id)

    async def apply_update(self, principal: Principal, pod_id: str) -> None:
        """A running pod restarts so the new settings take effect."""
        row = self._row(principal, pod_id)
        if row.desired_status == POD_RUNNING:
            await self._halt(pod_id, "Restarted to apply an update")
            self._launch(pod_id)

    async def stop(self, principal: Principal, pod_id: str) -> PodRecord:
        row = self._row(principal, pod_id)
        if row.spec.get("locked"):
            raise Conflict("pod is locked: unlock it (PATCH locked=false) before stopping it")
        await self._halt(pod_id, "Stopped by user")
        self._set(pod_id, desired_status=POD_EXITED)
        return self.get_for(principal, pod_id)

    async def start(self, principal: Principal, pod_id: str) -> PodRecord:
        self._row(principal, pod_id)
        if not self._allocations.pod_runs(pod_id):
            self._launch(pod_id)
        return self.get_for(principal, pod_id)

    async def restart(self, principal: Principal, pod_id: str, why: str) -> PodRecord:
        row = self._row(principal, pod_id)
        if row.spec.get("locked") and why.startswith("Reset"):
            raise Conflict("pod is locked: unlock it before resetting it")
        await self._halt(pod_id, why)
        self._launch(pod_id)
        return self.get_for(principal, pod_id)

    async def delete(self, principal: Principal, pod_id: str) -> None:
        self._row(principal, pod_id)
        await self._halt(pod_id, "Terminated")
        with self._engine.begin() as conn:
            conn.execute(delete(pods).where(pods.c.id == pod_id))

    def runs(self, pod_id: str) -> bool:
        """Whether the pod's process was started and has not ended."""
        return self._allocations.pod_runs(pod_id)

    def logs(self, principal: Principal, pod_id: str) -> str:
        self._row(principal, pod_id)
        return self._provider.logs(pod_id)

    # -- process handling ---------------------------------------------------------

    def _check_references(self, principal: Principal, owner_id: str, spec: dict[str, Any],
                          changed: set[str]) -> None:
        """Every id the pod names is its owner's (400 for another user's, as for a missing
        one), and a ``local:`` image is one the caller may run on the host (403)."""
        if "imageName" in changed:
            self._owners.check_image(principal, spec.get("imageName"))
        volume_id = spec.get("networkVolumeId")
        if "networkVolumeId" in changed and volume_id \
                and self._owners.volume_owner(volume_id) != owner_id:
            raise Invalid(f"networkVolumeId: no network volume {volume_id!r}", "networkVolumeId")
        auth_id = spec.get("containerRegistryAuthId")
        if "containerRegistryAuthId" in changed and auth_id \
                and self._owners.auth_owner(auth_id) != owner_id:
            raise Invalid(f"containerRegistryAuthId: no container registry auth {auth_id!r}",
                          "containerRegistryAuthId")
        if auth_id and changed & {"containerRegistryAuthId", "imageName"}:
            self._owners.bind_auth(auth_id, spec.get("imageName") or "")

    def _check_runnable(self, spec: dict[str, Any]) -> None:
        unrunnable = self._launcher.check(spec, NO_COMMAND)
        if unrunnable is not None:
            raise Invalid(unrunnable.message, unrunnable.field)

    def _launch(self, pod_id: str) -> None:
        """Place the pod's stored spec and start it; Conflict when it cannot."""
        with self._engine.connect() as conn:
            row = conn.execute(select(pods).where(pods.c.id == pod_id)).one()
        spec = row.spec
        volume = self._launcher.volume(spec.get("networkVolumeId"))
        if volume is not None and volume.userId != row.user_id:  # checked on create; again here
            raise Conflict("pod could not start: its network volume is not its owner's")
        placed = self._launcher.place(spec, pod_id, volume.dataCenterId if volume else None,
                                      self._allocations.loads())
        if isinstance(placed, NoFit):
            raise Conflict(f"no capacity for this pod: {placed.reason}")
        own = {"RUNPOD_POD_ID": pod_id, "RUNPOD_POD_HOSTNAME": pod_id}
        if placed.gpu_type_id:
            own["RUNPOD_GPU_COUNT"] = str(len(placed.gpu_indices))
        env = self._launcher.environment(
            spec, VolumeMount(volume, spec.get("volumeMountPath") or "/workspace"), own)
        try:
            started = self._launcher.start(pod_id, spec, placed, env)
        except (OSError, ImageError) as err:
            raise Conflict(f"pod could not start: {err}") from err
        info = started.info
        self._allocations.hold_pod(pod_id, placed)
        self._set(pod_id, desired_status=POD_RUNNING, machine_id=placed.machine_id,
                  gpu_type_id=placed.gpu_type_id, gpu_count=len(placed.gpu_indices),
                  vcpu_count=placed.vcpu_count, memory_in_gb=placed.memory_in_gb,
                  cost_per_hr=placed.cost_per_hr, last_started_at=info.started_at,
                  provider_data={**info.data, "cpuFlavorId": placed.cpu_flavor_id},
                  log_path=str(started.log_path), stopped_at=None, exit_code=None,
                  last_status_change="Started", last_status_change_at=info.started_at)
        self._billing.record_usage(
            user_id=row.user_id, kind="pod", resource_id=pod_id, pod_id=pod_id,
            start_at=info.started_at, usd_per_hr=placed.cost_per_hr,
            gpu_type_id=placed.gpu_type_id, template_id=row.template_id,
            image_name=spec["imageName"],
            data_center_id=self._allocations.data_center_of(placed.machine_id))

    async def _halt(self, pod_id: str, why: str) -> None:
        if not self._allocations.pod_runs(pod_id):
            return
        self._stopping.add(pod_id)
        try:
            info = await self._provider.stop(pod_id, _STOP_GRACE_S)
        finally:
            self._stopping.discard(pod_id)
        self._record_exit(pod_id, info.stopped_at if info and info.stopped_at else self._clock.now(),
                          info.exit_code if info else None, why)

    def _record_exit(self, pod_id: str, end: float, code: int | None, why: str) -> None:
        self._allocations.release_pod(pod_id)
        self._provider.forget(pod_id)
        self._billing.close_open("pod", pod_id, end)
        self._set(pod_id, stopped_at=end, exit_code=code, last_status_change=why,
                  last_status_change_at=end)

    def reap(self, now: float, infos: list[ProcessInfo] | None = None) -> None:
        """Pods whose process ended by itself: record it; they stay EXITED until started.
        ``infos``: the provider's ``list()`` when the caller has it already."""
        for info in self._provider.list() if infos is None else infos:
            if self._allocations.pod_runs(info.id) and info.id not in self._stopping \
                    and info.state == EXITED:
                self._record_exit(info.id, info.stopped_at or now, info.exit_code,
                                  info.reason or f"Exited with code {info.exit_code}")
                self._set(info.id, desired_status=POD_EXITED)

    def _set(self, pod_id: str, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(pods).where(pods.c.id == pod_id).values(**values))

