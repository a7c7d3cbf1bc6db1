"""The provider interface: the small, fixed surface through which the controller runs things.

``start(spec) / stop(id) / park(id) / resume(id) / list() / logs(id)``, plus ``machines()``
for what the provider can place work on. Workers and pods alike are started from a
``WorkerSpec``; the provider knows nothing about endpoints, jobs or billing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from runplane.catalog.machines import Machine

RUNNING = "running"
PARKED = "parked"
EXITED = "exited"


class ImageError(ValueError):
    """The template's image cannot be run by this provider; the message says what would work."""


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


class Provider(Protocol):
    name: str

    def machines(self) -> list[Machine]:
        """The machines this provider can place work on."""
        ...

    def check_image(self, image: str) -> Path:
        """Where the image's code lives, or ImageError saying why it cannot be run."""
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

    def list(self) -> list[ProcessInfo]:
        """Every worker started by this provider and not yet forgotten, exited ones included."""
        ...

    def forget(self, worker_id: str) -> None:
        """Drop an exited worker from ``list()`` once its exit has been recorded."""
        ...

    def logs(self, worker_id: str, tail_bytes: int = 65536) -> str:
        """The end of the worker's output."""
        ...
