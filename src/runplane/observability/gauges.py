"""Reading the current state (queues, workers, machines) for scrapes and the stats sampler.

Pure reads of the broker, worker registry and controller, all in memory; called from the
event loop thread (a scrape, a controller tick, a stats request), never from a hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

from runplane.broker.broker import Broker
from runplane.broker.workers import WorkerRegistry
from runplane.clock import Clock
from runplane.controller.reconcile import Controller
from runplane.observability.stats import WORKER_STATES
from runplane.services.endpoints import EndpointService

_STATE_INDEX = {name: i for i, name in enumerate(WORKER_STATES)}
_THROTTLED = _STATE_INDEX["throttled"]


@dataclass(frozen=True, eq=False)
class LiveState:
    """The parts whose current state the gauges read."""

    endpoints: EndpointService
    broker: Broker
    workers: WorkerRegistry
    controller: Controller
    clock: Clock

    def workers_by_endpoint(self) -> dict[str, list[int]]:
        """Endpoint id -> live worker counts in ``WORKER_STATES`` order (throttled included).

        A parked worker counts as parked whatever its last protocol state; EXITED ones not
        at all. THROTTLED workers are not processes: they are the controller's count of
        wanted workers whose capacity is taken.
        """
        out: dict[str, list[int]] = {}
        for w in self.workers.all():
            state = "parked" if w.parked else w.status.lower()
            i = _STATE_INDEX.get(state)
            if i is None:  # EXITED
                continue
            counts = out.get(w.endpoint_id)
            if counts is None:
                counts = out[w.endpoint_id] = [0] * len(WORKER_STATES)
            counts[i] += 1
        for endpoint_id, throttled in self.controller.readings.throttled_workers():
            counts = out.get(endpoint_id)
            if counts is None:
                counts = out[endpoint_id] = [0] * len(WORKER_STATES)
            counts[_THROTTLED] = throttled
        return out

    def machine_usage(self) -> list[MachineUsage]:
        """Per machine GPU/CPU/memory capacity and use, from the controller's placements."""
        out = []
        for load in self.controller.loads():
            m = load.machine
            gpus: dict[str, int] = {}
            used: dict[str, int] = {}
            for g in m.gpus:
                gpus[g.type_id] = gpus.get(g.type_id, 0) + 1
                used.setdefault(g.type_id, 0)
                if g.index in load.used_gpus:
                    used[g.type_id] += 1
            out.append(MachineUsage(m.id, gpus, used, float(m.cpu_count), load.used_vcpus,
                                    float(m.memory_in_gb), load.used_memory_gb))
        return out


@dataclass(frozen=True)
class MachineUsage:
    """One machine's capacity and what live workers and pods hold of it."""

    machine_id: str
    gpus: dict[str, int]  # GPU type id -> GPUs of that type
    gpus_used: dict[str, int]  # GPU type id -> of those, held by a worker or pod
    vcpus: float
    vcpus_used: float
    memory_gb: float
    memory_used_gb: float
