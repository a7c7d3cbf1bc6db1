"""The local provider: workers and pods on this host, the host as one machine.

Runtime per image: ``local:``/``file://`` directories run as host processes (process runtime),
every other image through podman or docker (container runtime, docs/containers.md).
"""

from __future__ import annotations

import threading
from pathlib import Path

from runplane.catalog.catalog import Catalog
from runplane.catalog.machines import Machine, discover_local_machine
from runplane.config import ContainerSettings, MachineSettings
from runplane.providers.base import HttpPorts, ProcessInfo, WorkerSpec
from runplane.providers.http_ports import resolve as resolve_ports
from runplane.providers.runtimes.container.image import is_container_image
from runplane.providers.runtimes.container.runtime import ContainerRuntime
from runplane.providers.runtimes.process import ProcessRuntime, read_tail


class LocalProvider:
    """Runs worker specs through the process or container runtime on the machine it
    discovered at start."""

    name = "local"

    def __init__(self, settings: MachineSettings, data_dir: Path, catalog: Catalog | None = None,
                 machine: Machine | None = None, container: ContainerSettings | None = None,
                 worker_user: str = "", server_url: str = "") -> None:
        self.machine = machine or discover_local_machine(settings, data_dir, catalog)
        self.log_dir = data_dir / "logs"
        self.runtime = ProcessRuntime(worker_user=worker_user)
        # server_url: where workers reach the server (public_url); a container on a network of
        # its own reaches it through a door to that address (container.network).
        self.containers = ContainerRuntime(container or ContainerSettings(), data_dir / "containers",
                                           owner=str(Path(data_dir).resolve()),
                                           server_url=server_url)

    def _runtime(self, worker_id: str) -> ProcessRuntime | ContainerRuntime:
        return self.containers if self.containers.has(worker_id) else self.runtime

    def machines(self) -> list[Machine]:
        return [self.machine]

    def log_path(self, worker_id: str) -> Path:
        return self.log_dir / f"{worker_id}.log"

    def check_image(self, image: str) -> Path:
        if is_container_image(image):
            return self.containers.check_image(image)
        return self.runtime.check_image(image)

    def needs_command(self, image: str) -> bool:
        """A directory has no default command; an image has its ENTRYPOINT/CMD."""
        return not is_container_image(image)

    def start(self, spec: WorkerSpec) -> ProcessInfo:
        if is_container_image(spec.image):
            network = self.containers.config.network
            host = self.containers.config.publish_ip
            return self.containers.start(resolve_ports(
                spec, "127.0.0.1" if host in ("0.0.0.0", "::", "") else host, network != "host"))
        return self.runtime.start(resolve_ports(spec, "127.0.0.1", False, "127.0.0.1"))

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        return await self._runtime(worker_id).stop(worker_id, grace_s)

    def park(self, worker_id: str) -> None:
        self._runtime(worker_id).park(worker_id)

    def resume(self, worker_id: str) -> None:
        self._runtime(worker_id).resume(worker_id)

    def park_blocks(self, worker_id: str) -> bool:
        """Whether park/resume wait for an engine (``podman pause``, ~0.1 s) rather than
        send a signal: the controller runs those in a thread (docs/flashboot.md)."""
        return self.containers.has(worker_id)

    def list(self) -> list[ProcessInfo]:
        if self.containers.has_any():
            return self.runtime.list() + self.containers.list()
        return self.runtime.list()

    def adopt(self, worker_id: str, data: dict[str, object], log_path: Path) -> ProcessInfo | None:
        """A process worker's supervisor is found by pid and start time, a container worker's
        container by its name among this server's running ones (``ContainerRuntime.adopt``:
        a follower relays its output and exit code again). Either keeps its GPUs and, serving
        HTTP, its ports and port mappings."""
        runtime = data.get("runtime")
        if runtime not in ("process", "container"):
            return None
        gpus = data.get("gpus")
        http = data.get("http")  # a load-balancing worker keeps its ports
        spec = WorkerSpec(id=worker_id, image=str(data.get("image", "")), command=[], env={},
                          log_path=log_path,
                          gpu_indices=tuple(int(i) for i in gpus) if isinstance(gpus, list) else (),
                          http=HttpPorts(int(http["port"]), int(http["health_port"]),
                                         str(http["host"]), bool(http.get("mapped")))
                          if isinstance(http, dict) else None)
        if runtime == "container":
            if self.containers.config.engine == "none":
                return None
            return self.containers.adopt(spec, data)
        return self.runtime.adopt(spec, data)

    def remove_leftovers(self) -> None:
        """Containers a previous run left and ``adopt`` did not take are removed, off the
        start-up path (a data dir that never ran one costs no engine call). Process leftovers
        are killed by the take-over itself (``controller.restart``)."""
        self.containers.takeover_done()
        if self.containers.config.engine != "none" and self.containers.run_dir.is_dir():
            threading.Thread(target=self.containers.cleanup_orphans, daemon=True,
                             name="runplane-container-cleanup").start()

    def get(self, worker_id: str) -> ProcessInfo | None:
        return self._runtime(worker_id).get(worker_id)

    def forget(self, worker_id: str) -> None:
        self._runtime(worker_id).forget(worker_id)

    def logs(self, worker_id: str, tail_bytes: int = 65536) -> str:
        return read_tail(self.log_path(worker_id), tail_bytes)

    async def close(self) -> None:
        """Nothing to release: the controller's shutdown already stopped every process."""
