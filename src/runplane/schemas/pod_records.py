"""What runplane knows of a pod, or of a serverless worker shown as one: typed records the
services and the controller return, which ``api/shapes/`` renders as each surface's JSON.

Facts only, with the defaults already resolved (a worker's ports and disks are its
template's); nothing here is a wire name. Records are frozen and compared by identity
(``eq=False``): a worker's record is reused while the worker's state is unchanged
(``controller/worker_pods.py``), so the api layer may keep what it rendered of it beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runplane.catalog.machines import Machine


@dataclass(frozen=True, eq=False, kw_only=True)
class PodFacts:
    """What a Pod object reports, for a pod and a worker alike."""

    id: str
    name: str
    user_id: str
    desired_status: str
    image: str
    env: Mapping[str, str]
    machine: Machine | None
    gpu_type_id: str | None
    gpu_count: int
    cost_per_hr: float
    vcpu_count: float
    memory_in_gb: float
    last_started_at: float | None
    last_status_change: str | None
    template_id: str | None
    endpoint_id: str | None = None
    sls_version: int | None = None
    network_volume_id: str | None = None
    volume_mount_path: str | None = None
    ports: list[str]
    # Container ports published by the container runtime ({"8888": 8888} on the host
    # network); processes listen on the host itself, so nothing is remapped for them.
    port_mappings: Mapping[str, int]
    cpu_flavor_id: str | None = None
    interruptible: bool = False
    locked: bool = False
    container_disk_in_gb: int | None = None
    volume_in_gb: int | None = None
    docker_entrypoint: list[str]
    docker_start_cmd: list[str]
    registry_auth_id: str | None = None

    @property
    def has_gpu(self) -> bool:
        """Whether it holds GPUs (a CPU pod or worker holds none)."""
        return bool(self.gpu_type_id) and self.gpu_count > 0


@dataclass(frozen=True, eq=False, kw_only=True)
class PodRecord(PodFacts):
    """A pod (``services/pods.py``)."""

    created_at: float


@dataclass(frozen=True, eq=False, kw_only=True)
class WorkerRecord(PodFacts):
    """A live serverless worker as ``includeWorkers`` lists it (``controller/worker_pods.py``)."""

    # RunPod's worker state name (OUTDATED when it runs an older version of its endpoint).
    worker_status: str
    progress: str | None  # what a starting worker does now (pulling its image, ...)
    log_path: str | None
    # (state, SDK version) of its SDK accelerator as it reported it; None before its first
    # job-take.
    accelerator: tuple[str, str] | None


@dataclass(frozen=True)
class PodFilter:
    """What a pod list is narrowed to (None: not narrowed by that)."""

    compute_type: str | None = None  # "GPU" or "CPU"
    gpu_type_id: str | None = None
    data_center_id: str | None = None
    desired_status: str | None = None
    name: str | None = None
    template_id: str | None = None
    image: str | None = None
    id: str | None = None

    def matches(self, pod: PodFacts) -> bool:
        """Whether ``pod`` passes every narrowing given."""
        if self.gpu_type_id is not None and not (pod.has_gpu
                                                 and pod.gpu_type_id == self.gpu_type_id):
            return False
        if self.data_center_id is not None and not (
                pod.machine is not None and pod.machine.data_center_id == self.data_center_id):
            return False
        if self.compute_type is not None and pod.has_gpu != (self.compute_type == "GPU"):
            return False
        return all(want is None or want == have for want, have in (
            (self.image, pod.image), (self.desired_status, pod.desired_status),
            (self.name, pod.name), (self.template_id, pod.template_id), (self.id, pod.id)))
