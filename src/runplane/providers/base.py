"""The provider interface: the small, fixed surface through which the controller runs things.

``start(spec) / stop(id) / park(id) / resume(id) / list() / logs(id)``, plus ``machines()``
for what the provider can place work on; ``Provider`` lists every call made on one. Workers
and pods alike are started from a ``WorkerSpec``; the provider knows nothing about
endpoints, jobs or billing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runplane.catalog.machines import Machine

RUNNING = "running"
PARKED = "parked"
EXITED = "exited"


class ImageError(ValueError):
    """The template's image cannot be run by this provider; the message says what would work."""


@dataclass(frozen=True)
class ContainerOptions:
    """Template/pod fields only the container runtime uses (the process runtime ignores them).

    ``entrypoint``/``cmd`` are dockerEntrypoint/dockerStartCmd kept apart (an image supplies
    its own when they are empty); ``ports`` as the template lists them ("8888/http",
    "22/tcp"); ``disk_gb`` is containerDiskInGb; ``registry_auth`` the (username, password)
    of the template's containerRegistryAuthId, for pulling only (never shown).
    """

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    disk_gb: int | None = None
    registry_auth: tuple[str, str] | None = field(default=None, repr=False)
    # The size it was placed with: the container's CPU and memory limits (0: none).
    cpus: float = 0.0
    memory_gb: float = 0.0

    @classmethod
    def of(cls, t: Mapping[str, Any],
           registry_auth: tuple[str, str] | None = None) -> ContainerOptions:
        """From a template's (or a pod spec's) RunPod field names."""
        return cls(
            entrypoint=tuple(t.get("dockerEntrypoint") or ()),
            cmd=tuple(t.get("dockerStartCmd") or ()),
            ports=tuple(t.get("ports") or ()),
            disk_gb=t.get("containerDiskInGb") or None,
            registry_auth=registry_auth,
        )


@dataclass(frozen=True)
class HttpPorts:
    """A load-balancing worker's ``PORT`` and ``PORT_HEALTH`` (``providers.http_ports``):
    as asked (the app's own, equal when it has one port) until the runtime settles them, then
    where they are and how the server reaches them (``host``; ``mapped``: published ports)."""

    port: int = 80
    health_port: int = 80
    host: str = ""
    mapped: bool = False


@dataclass(frozen=True)
class WorkerSpec:
    """Everything needed to run one worker or pod process."""

    id: str
    image: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    gpu_indices: tuple[int, ...] = ()
    machine_id: str = ""
    container: ContainerOptions = ContainerOptions()
    # Set for a load-balancing worker: it serves HTTP on ports the runtime assigns.
    http: HttpPorts | None = None


@dataclass
class ProcessInfo:
    """A started worker as the provider sees it."""

    id: str
    state: str  # running | parked | exited
    pid: int | None = None
    started_at: float = 0.0
    exit_code: int | None = None
    stopped_at: float | None = None
    log_path: str = ""
    data: dict[str, object] = field(default_factory=dict)  # persisted as provider_data
    # Why it exited when the runtime knows better than the exit code (an image pull failed).
    reason: str | None = None
    # What a starting worker is doing before its code runs (pulling its image: 2 of 5 layers).
    progress: str | None = None


class Provider(Protocol):
    """Every call the controller, the pod service and the app make on a provider."""

    name: str

    def machines(self) -> list[Machine]:
        """The machines this provider can place work on."""
        ...

    def log_path(self, worker_id: str) -> Path:
        """Where the worker's (or pod's) output is written; known before it starts."""
        ...

    def check_image(self, image: str) -> Path:
        """Where the image's code lives, or ImageError saying why it cannot be run."""
        ...

    def needs_command(self, image: str) -> bool:
        """True when the template must say what to run (no image supplies a default)."""
        ...

    def start(self, spec: WorkerSpec) -> ProcessInfo:
        """Start a worker; raises ImageError or OSError when it cannot be started."""
        ...

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        """SIGTERM, then SIGKILL after ``grace_s``; returns the final info (None if unknown)."""
        ...

    def park(self, worker_id: str) -> None:
        """Freeze the worker (it keeps its memory, GPU memory included)."""
        ...

    def resume(self, worker_id: str) -> None:
        """Thaw a parked worker."""
        ...

    def park_blocks(self, worker_id: str) -> bool:
        """Whether ``park``/``resume`` wait for something (a container engine) rather than
        send a signal: the controller then calls them in a thread."""
        ...

    def list(self) -> list[ProcessInfo]:
        """Every worker started by this provider and not yet forgotten, exited ones included."""
        ...

    def adopt(self, worker_id: str, data: dict[str, object], log_path: Path) -> ProcessInfo | None:
        """After a restart: watch a worker a previous server run started (``data`` is the
        ``ProcessInfo.data`` recorded then) if it still runs, as if started here; None when
        it is gone or this provider cannot find it again."""
        ...

    def remove_leftovers(self) -> None:
        """After every ``adopt`` of a start-up: remove what a previous server run left running
        and was not adopted (its pods, parked workers, workers the store no longer lists), so
        nothing outlives it unseen. May finish in the background (an engine or cluster call)."""
        ...

    def forget(self, worker_id: str) -> None:
        """Drop an exited worker from ``list()`` once its exit has been recorded."""
        ...

    def logs(self, worker_id: str, tail_bytes: int = 65536) -> str:
        """The end of the worker's output."""
        ...

    async def close(self) -> None:
        """Release what the provider holds (a cluster connection); after every stop."""
        ...
