"""The local provider: workers and pods as processes on this host, the host as one machine."""

from __future__ import annotations

from pathlib import Path

from runplane.catalog.catalog import Catalog
from runplane.catalog.machines import Machine, discover_local_machine
from runplane.config import MachineSettings
from runplane.providers.base import ProcessInfo, WorkerSpec
from runplane.providers.runtimes.process import ProcessRuntime, read_tail


class LocalProvider:
    """Runs worker specs through the process runtime on the machine it discovered at start."""

    name = "local"

    def __init__(self, settings: MachineSettings, data_dir: Path, catalog: Catalog | None = None,
                 machine: Machine | None = None) -> None:
        self.machine = machine or discover_local_machine(settings, data_dir, catalog)
        self.log_dir = data_dir / "logs"
        self.runtime = ProcessRuntime()

    def machines(self) -> list[Machine]:
        return [self.machine]

    def log_path(self, worker_id: str) -> Path:
        return self.log_dir / f"{worker_id}.log"

    def check_image(self, image: str) -> Path:
        return self.runtime.check_image(image)

    def start(self, spec: WorkerSpec) -> ProcessInfo:
        return self.runtime.start(spec)

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        return await self.runtime.stop(worker_id, grace_s)

    def park(self, worker_id: str) -> None:
        self.runtime.park(worker_id)

    def resume(self, worker_id: str) -> None:
        self.runtime.resume(worker_id)

    def list(self) -> list[ProcessInfo]:
        return self.runtime.list()

    def get(self, worker_id: str) -> ProcessInfo | None:
        return self.runtime.get(worker_id)

    def forget(self, worker_id: str) -> None:
        self.runtime.forget(worker_id)

    def logs(self, worker_id: str, tail_bytes: int = 65536) -> str:
        return read_tail(self.log_path(worker_id), tail_bytes)
