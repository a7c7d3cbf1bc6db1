"""The world the simulated controller acts on: queues, workers and processes in memory.

Each class satisfies one of the controller's ports (``controller/ports.py``) or the provider
protocol, as the server's broker, registry and local provider do, but on the virtual clock
and without processes: a started worker reaches its first job-take after a cold start drawn
from the timing distribution, a thawed one is ready after a revival time, a job runs for its
trace's execution time. The controller's decisions are the real ones; only this is modelled.
Jobs are handed out in arrival order to the first worker that can take one, as the broker's
queues do.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runplane.broker.models import QueueMetrics, Worker, WorkerView
from runplane.catalog.machines import Machine
from runplane.clock import ManualClock
from runplane.providers.base import EXITED, PARKED, RUNNING, ProcessInfo, WorkerSpec
from runplane.simulate.timing import Duration
from runplane.worker_state import EXITED as WORKER_EXITED
from runplane.worker_state import IDLE, INITIALIZING
from runplane.worker_state import PARKED as WORKER_PARKED
from runplane.worker_state import RUNNING as BUSY


@dataclass(slots=True)
class SimJob:
    """A trace job as the world runs it."""

    id: str
    endpoint_id: str
    arrived_at: float
    execution_s: float
    taken_at: float | None = None
    worker_id: str | None = None


@dataclass
class Events:
    """The world's future, as a heap of (time, order, action)."""

    heap: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _order: itertools.count = field(default_factory=itertools.count)

    def at(self, t: float, action: Callable[[], None]) -> None:
        """Run ``action`` when the clock reaches ``t``."""
        heapq.heappush(self.heap, (t, next(self._order), action))

    def next_at(self) -> float | None:
        return self.heap[0][0] if self.heap else None

    def pop(self) -> Callable[[], None]:
        return heapq.heappop(self.heap)[2]


@dataclass
class Ledger:
    """What the run measured as it went (``outcome`` turns it into the figures)."""

    jobs: list[SimJob] = field(default_factory=list)
    gpu_s: float = 0.0
    usd: float = 0.0
    cold_starts: int = 0
    revivals: int = 0
    live: int = 0  # workers running and billed now (not parked)
    peak_live: int = 0
    series: list[tuple[float, int, int]] = field(default_factory=list)  # (t, live, queued)
    # The controller's "scaled" events: (time, action, workers, reason).
    scaled: list[tuple[float, str, int, str]] = field(default_factory=list)


class SimQueues:
    """The broker's queues as far as the controller reads them (``JobQueues`` port)."""

    def __init__(self) -> None:
        self.queued: dict[str, deque[SimJob]] = {}
        self.in_progress: dict[str, int] = {}
        self.finished: dict[str, int] = {}
        self.listeners: list[Callable[[str], None]] = []

    def add_enqueue_listener(self, callback: Callable[[str], None]) -> None:
        self.listeners.append(callback)

    def queue_metrics(self, endpoint_id: str) -> QueueMetrics:
        q = self.queued.get(endpoint_id) or ()
        return QueueMetrics(len(q), len(q), self.in_progress.get(endpoint_id, 0),
                            q[0].arrived_at if q else None, self.finished.get(endpoint_id, 0),
                            0, 0)

    def queued_at(self, endpoint_id: str) -> list[float]:
        return [j.arrived_at for j in self.queued.get(endpoint_id) or ()]


class SimRegistry:
    """The worker registry (``WorkerRegistryPort``): the broker's own ``Worker`` records."""

    def __init__(self, clock: ManualClock, owner: Callable[[str], str]) -> None:
        self._clock = clock
        self._owner = owner
        self.by_id: dict[str, Worker] = {}
        self._ids = itertools.count(1)
        self.on_unparked: Callable[[Worker], None] = lambda w: None
        self.on_retired: Callable[[Worker], None] = lambda w: None

    def register(self, endpoint_id: str, *, manual: bool, worker_id: str | None = None,
                 **placement: Any) -> tuple[str, str]:
        wid = worker_id or f"w{next(self._ids)}"
        now = self._clock.now()
        self.by_id[wid] = Worker(id=wid, endpoint_id=endpoint_id, user_id=self._owner(endpoint_id),
                                 token_hash=wid, status=INITIALIZING, desired_status=BUSY,
                                 manual=manual, created_at=now, status_changed_at=now)
        return wid, wid

    def worker_env(self, endpoint_id: str, worker_id: str, token: str,
                   gpu: str = "") -> dict[str, str]:
        return {}

    def view(self, w: Worker) -> WorkerView:
        return WorkerView(
            id=w.id, endpoint_id=w.endpoint_id, status=w.status, desired_status=w.desired_status,
            manual=w.manual, parked=w.parked, jobs=tuple(w.jobs), created_at=w.created_at,
            first_take_at=w.first_take_at, last_seen_at=w.last_seen_at, idle_since=w.idle_since,
            reason=w.reason, polling=not w.jobs, status_changed_at=w.status_changed_at)

    def all(self) -> list[Worker]:
        return list(self.by_id.values())

    def get(self, worker_id: str) -> Worker | None:
        return self.by_id.get(worker_id)

    def request_stop(self, w: Worker, reason: str) -> None:
        w.desired_status = WORKER_EXITED
        w.reason = reason

    def retire(self, worker_id: str, reason: str) -> None:
        w = self.by_id.pop(worker_id, None)
        if w is not None:
            w.status = w.desired_status = WORKER_EXITED
            self.on_retired(w)

    def set_parked(self, worker_id: str, parked: bool) -> bool:
        w = self.by_id.get(worker_id)
        if w is None:
            return False
        if w.parked == parked:
            return True
        now = self._clock.now()
        if parked:
            if not w.may_park():
                return False
            w.parked, w.status, w.status_changed_at = True, WORKER_PARKED, now
        else:
            w.parked, w.status, w.status_changed_at = False, IDLE, now
            w.idle_since = now
            self.on_unparked(w)
        return True


class SimProvider:
    """Processes on the virtual clock (the ``Provider`` protocol): one machine, no processes."""

    name = "simulated"

    def __init__(self, machine: Machine, clock: ManualClock, cold_start: Duration,
                 revival: Duration, rng: random.Random) -> None:
        self.machine = machine
        self._clock = clock
        self.cold_start = cold_start
        self.revival = revival
        self.rng = rng
        self.infos: dict[str, ProcessInfo] = {}
        self.on_started: Callable[[str, float], None] = lambda wid, ready_in: None
        # ``live(delta)``: the count of running (billed, not parked) processes changed.
        self.live: Callable[[int], None] = lambda delta: None

    def machines(self) -> list[Machine]:
        return [self.machine]

    def log_path(self, worker_id: str) -> Path:
        return Path("/dev/null")

    def check_image(self, image: str) -> Path:
        return Path("/")

    def needs_command(self, image: str) -> bool:
        return False

    def start(self, spec: WorkerSpec) -> ProcessInfo:
        info = ProcessInfo(spec.id, RUNNING, started_at=self._clock.now())
        self.infos[spec.id] = info
        self.live(1)
        self.on_started(spec.id, self.cold_start.sample(self.rng))
        return info

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        info = self.infos.get(worker_id)
        if info is not None and info.state != EXITED:
            if info.state == RUNNING:
                self.live(-1)
            info.state, info.exit_code, info.stopped_at = EXITED, -15, self._clock.now()
        return info

    def park(self, worker_id: str) -> None:
        self.infos[worker_id].state = PARKED
        self.live(-1)

    def resume(self, worker_id: str) -> None:
        self.infos[worker_id].state = RUNNING
        self.live(1)

    def park_blocks(self, worker_id: str) -> bool:
        return False

    def list(self) -> list[ProcessInfo]:
        return list(self.infos.values())

    def adopt(self, worker_id: str, data: dict[str, object], log_path: Path) -> ProcessInfo | None:
        return None  # a simulation never restarts

    def remove_leftovers(self) -> None:
        return None

    def forget(self, worker_id: str) -> None:
        info = self.infos.get(worker_id)
        if info is not None and info.state == EXITED:
            del self.infos[worker_id]

    def logs(self, worker_id: str, tail_bytes: int = 65536) -> str:
        return ""

    async def close(self) -> None:
        return None


class SimBilling:
    """The usage recorder: sums billed worker-seconds and their cost (``UsageRecorder``)."""

    def __init__(self, ledger: Ledger, gpus_per_worker: int) -> None:
        self._ledger = ledger
        self._gpus = max(1, gpus_per_worker)

    def record_usage(self, *, user_id: str, kind: str, resource_id: str, start_at: float,
                     end_at: float | None = None, usd_per_hr: float = 0.0,
                     pod_id: str | None = None, gpu_type_id: str | None = None,
                     data_center_id: str | None = None, template_id: str | None = None,
                     image_name: str | None = None) -> int:
        # The controller records closed intervals only (open ones are pods').
        seconds = max(0.0, (end_at if end_at is not None else start_at) - start_at)
        self._ledger.gpu_s += seconds * self._gpus
        self._ledger.usd += seconds / 3600 * usd_per_hr
        return 0

    def close_open(self, kind: str, resource_id: str, end_at: float) -> int:
        return 0


class SimRows:
    """The ``workers`` table: nothing is stored in a simulation."""

    def mark_started(self, *args: Any, **kwargs: Any) -> None:
        return None

    def mark_stopping(self, *args: Any, **kwargs: Any) -> None:
        return None

    def mark_exited(self, *args: Any, **kwargs: Any) -> None:
        return None


class NoPods:
    """No pods run in a simulation (``PodProcesses``)."""

    def reap(self, now: float, infos: list[ProcessInfo] | None = None) -> None:
        return None

    def unfinished_process_data(self) -> list[dict[str, Any]]:
        return []
