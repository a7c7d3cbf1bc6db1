"""A provider in memory: the ``Provider`` protocol without processes, for controller tests.

``start`` records the spec and answers a running process at once; ``crash`` and ``stop``
make it exited (as a real process's exit would be seen by ``list``); ``park``/``resume`` only
change its state. Nothing runs, so a whole ``Controller.tick()`` is a table test.
"""

from __future__ import annotations

import builtins
from pathlib import Path

from runplane.catalog.machines import Machine
from runplane.clock import Clock
from runplane.providers.base import EXITED, PARKED, RUNNING, ImageError, ProcessInfo, WorkerSpec


class FakeProvider:
    """See the module docstring. ``clock`` gives the processes' start and exit times."""

    name = "fake"

    def __init__(self, machine: Machine, log_dir: Path, clock: Clock) -> None:
        self.machine = machine
        self.log_dir = log_dir
        self._clock = clock
        self.infos: dict[str, ProcessInfo] = {}
        self.specs: dict[str, WorkerSpec] = {}
        self.stopped: list[tuple[str, float]] = []  # (id, grace_s), in the order asked
        self.fail_start: str | None = None  # the OSError the next start raises

    def _t(self) -> float:
        return self._clock.now()

    # -- the Provider protocol ------------------------------------------------------------

    def machines(self) -> list[Machine]:
        return [self.machine]

    def log_path(self, worker_id: str) -> Path:
        return self.log_dir / f"{worker_id}.log"

    def check_image(self, image: str) -> Path:
        if not image.startswith("local:"):
            raise ImageError(f"fake provider runs local: images only, not {image!r}")
        return Path(image.removeprefix("local:"))

    def needs_command(self, image: str) -> bool:
        return True

    def start(self, spec: WorkerSpec) -> ProcessInfo:
        if self.fail_start is not None:
            raise OSError(self.fail_start)
        self.specs[spec.id] = spec
        info = ProcessInfo(spec.id, RUNNING, pid=1000 + len(self.specs), started_at=self._t(),
                           log_path=str(spec.log_path), data={"pid": None})
        self.infos[spec.id] = info
        return info

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        self.stopped.append((worker_id, grace_s))
        info = self.infos.get(worker_id)
        if info is not None and info.state != EXITED:
            info.state, info.exit_code, info.stopped_at = EXITED, -15, self._t()
        return info

    def park(self, worker_id: str) -> None:
        self.infos[worker_id].state = PARKED

    def resume(self, worker_id: str) -> None:
        self.infos[worker_id].state = RUNNING

    def park_blocks(self, worker_id: str) -> bool:
        return False  # a signal: done at once

    def list(self) -> list[ProcessInfo]:
        return list(self.infos.values())

    def adopt(self, worker_id: str, data: dict[str, object], log_path: Path) -> ProcessInfo | None:
        return None

    def remove_leftovers(self) -> None:
        pass

    def forget(self, worker_id: str) -> None:
        info = self.infos.get(worker_id)
        if info is not None and info.state == EXITED:
            del self.infos[worker_id]

    def logs(self, worker_id: str, tail_bytes: int = 65536) -> str:
        return ""

    async def close(self) -> None:
        return None

    # -- what a test does to its processes --------------------------------------------------

    def crash(self, worker_id: str, exit_code: int = 1) -> None:
        """The process exits by itself."""
        info = self.infos[worker_id]
        info.state, info.exit_code, info.stopped_at = EXITED, exit_code, self._t()

    def running(self) -> builtins.list[str]:  # ``list`` is the protocol's method here
        """Ids of processes that have not exited."""
        return [i.id for i in self.infos.values() if i.state != EXITED]
