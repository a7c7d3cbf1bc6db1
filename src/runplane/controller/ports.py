"""What the controller needs from the rest of the server, as narrow structural types.

The controller is handed these at construction (by the composition root); the broker's
``Broker`` and ``WorkerRegistry`` and the endpoint, template, network-volume, registry-auth
and billing services satisfy them as they are. Tests may pass anything with the same methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runplane.providers.base import ProcessInfo
from runplane.schemas.endpoints import Endpoint
from runplane.schemas.templates import Template
from runplane.schemas.volumes import NetworkVolume

if TYPE_CHECKING:
    # The job protocol's records, read by the controller (never built by it).
    from runplane.broker.models import QueueMetrics, Worker, WorkerView


class JobQueues(Protocol):
    """The job broker's queues, as far as scaling goes."""

    def queue_metrics(self, endpoint_id: str) -> QueueMetrics:
        """Queued and in-progress counts of one endpoint, now."""
        ...

    def add_enqueue_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(endpoint_id)`` whenever a job is queued (synchronously)."""
        ...

    def queued_at(self, endpoint_id: str) -> list[float]:
        """When each queued normal-priority job was submitted, oldest first."""
        ...


class WorkerRegistryPort(Protocol):
    """The job protocol's workers: credentials, state, and the stop channel."""

    def register(self, endpoint_id: str, *, manual: bool, worker_id: str | None = None,
                 **placement: Any) -> tuple[str, str]:
        """Create the worker's row and credential; ``(worker_id, token)``."""
        ...

    def worker_env(self, endpoint_id: str, worker_id: str, token: str,
                   gpu: str = "") -> dict[str, str]:
        """The RUNPOD_* variables an unmodified SDK worker needs."""
        ...

    def view(self, w: Worker) -> WorkerView:
        """A snapshot of one worker as the protocol sees it now."""
        ...

    def all(self) -> Sequence[Worker]:
        """Every worker that is not retired."""
        ...

    def get(self, worker_id: str) -> Worker | None:
        """One worker that is not retired, or None."""
        ...

    def request_stop(self, w: Worker, reason: str) -> None:
        """No more jobs for it; its open long-polls are answered."""
        ...

    def retire(self, worker_id: str, reason: str) -> None:
        """It is gone: revoke its credential and re-queue its jobs."""
        ...

    def set_parked(self, worker_id: str, parked: bool) -> bool:
        """Mark it frozen (no job is handed to it) or thawed; False when refused."""
        ...


class EndpointSource(Protocol):
    """The endpoints, with their templates loaded (the controller's desired state)."""

    def list_all(self) -> list[Endpoint]:
        """Every endpoint of every user, oldest first."""
        ...

    def get(self, endpoint_id: str) -> Endpoint | None:
        """One endpoint, or None."""
        ...


class TemplateSource(Protocol):
    """Templates by id, for an endpoint whose template is not loaded with it."""

    def get(self, template_id: str) -> Template | None:
        """One template, or None."""
        ...


class VolumeDirectory(Protocol):
    """Network volumes: their data center, and where their data lives on this server."""

    def get(self, volume_id: str) -> NetworkVolume | None:
        """One volume, or None."""
        ...

    def path_of(self, volume: NetworkVolume) -> Path:
        """The volume's directory (the volume service alone says where volumes live)."""
        ...


class RegistryCredentials(Protocol):
    """Private registries' credentials, for the container runtime's pull only."""

    def credentials_for(self, auth_id: str, image: str) -> tuple[str, str] | None:
        """(username, password) of a containerRegistryAuthId for pulling ``image``: None when
        there are none, or when they are bound to another registry host."""
        ...


class UsageRecorder(Protocol):
    """Billing: one usage record per billed interval."""

    def record_usage(self, *, user_id: str, kind: str, resource_id: str, start_at: float,
                     end_at: float | None = None, usd_per_hr: float = 0.0,
                     pod_id: str | None = None, gpu_type_id: str | None = None,
                     data_center_id: str | None = None, template_id: str | None = None,
                     image_name: str | None = None) -> int:
        """Store one interval (open while ``end_at`` is None); its id."""
        ...

    def close_open(self, kind: str, resource_id: str, end_at: float) -> int:
        """End the resource's open intervals at ``end_at``; how many."""
        ...


class PodProcesses(Protocol):
    """The pods, whose exits the controller reaps with its workers' on every tick."""

    def reap(self, now: float, infos: list[ProcessInfo] | None = None) -> None:
        """Record every pod whose process ended by itself."""
        ...

    def unfinished_process_data(self) -> list[dict[str, Any]]:
        """``provider_data`` of every pod whose run is not recorded as ended."""
        ...
