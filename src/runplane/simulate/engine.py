"""The controller's loop on a virtual clock: one simulated run of a trace per candidate.

The real ``Controller`` (its tick: verdicts, autoscaler and policies, scheduler, FlashBoot,
breaker) is built over the simulated world of ``world.py`` and driven as ``Controller._run``
drives it on a server: a tick every ``tick_s`` and at once when kicked (a job queued, a stop
finished). Between ticks the world's events run: arrivals, first job-takes after a cold start,
revivals, job completions. Ticks that could decide nothing are skipped exactly: while no job
and no worker exists (the controller would not even ask the autoscaler), and while every live
worker is busy and nothing waits (until the next event, on the same tick grid), for the
scalers whose decisions do not sample every tick.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from runplane.broker.models import Worker
from runplane.catalog.catalog import build_catalog
from runplane.catalog.machines import Gpu, Machine
from runplane.clock import ManualClock
from runplane.config import ControllerSettings
from runplane.controller.allocations import Allocations
from runplane.controller.launcher import Launcher
from runplane.controller.policies import POLICIES
from runplane.controller.reconcile import Controller
from runplane.schemas.endpoints import Endpoint
from runplane.schemas.templates import Template
from runplane.schemas.volumes import NetworkVolume
from runplane.simulate.budget import Budget
from runplane.simulate.timing import Duration
from runplane.simulate.trace import Trace
from runplane.simulate.world import (
    Events,
    Ledger,
    NoPods,
    SimBilling,
    SimJob,
    SimProvider,
    SimQueues,
    SimRegistry,
    SimRows,
)
from runplane.worker_state import IDLE
from runplane.worker_state import RUNNING as BUSY

START = 1_700_000_000.0  # the virtual clock's origin (the trace's 0)
ENDPOINT_ID = "sim"
GPU_TYPE = "NVIDIA A40"


@dataclass(frozen=True)
class Candidate:
    """Endpoint settings to try; ``label`` names it in tables and plots."""

    label: str
    scaler_type: str = "QUEUE_DELAY"
    scaler_value: int = 4
    idle_timeout_s: int = 5
    workers_min: int = 0
    workers_max: int = 3
    flashboot: bool = True

    def settings(self) -> dict[str, object]:
        """The endpoint fields it sets (RunPod's names)."""
        return {"scalerType": self.scaler_type, "scalerValue": self.scaler_value,
                "idleTimeout": self.idle_timeout_s, "workersMin": self.workers_min,
                "workersMax": self.workers_max, "flashboot": self.flashboot}


@dataclass(frozen=True)
class Setup:
    """The simulated installation: timings, the machine, prices, the controller's settings."""

    cold_start: Duration
    revival: Duration
    gpus: int = 8  # GPUs of the simulated machine (at least workersMax to never bind)
    gpu_type: str = GPU_TYPE
    gpus_per_worker: int = 1
    usd_per_gpu_hr: float = 1.0
    controller: ControllerSettings = field(default_factory=ControllerSettings)
    seed: int = 1
    # How long after the last job the run goes on (idle workers parking or stopping).
    drain_s: float = 900.0


def _machine(setup: Setup) -> Machine:
    gpus = [Gpu(i, setup.gpu_type, 48, "12.4") for i in range(setup.gpus)]
    return Machine(id="sim-machine", name="simulated", cpu_type="sim", cpu_count=16 * setup.gpus,
                   memory_in_gb=64.0 * setup.gpus, disk_in_gb=1000, data_center_id="SIM-1",
                   location="simulated", secure_cloud=True, support_public_ip=False,
                   cost_per_gpu_hr=setup.usd_per_gpu_hr, cost_per_vcpu_hr=0.0, gpus=gpus)


def endpoint_for(candidate: Candidate, setup: Setup) -> Endpoint:
    """A GPU endpoint with the candidate's settings (validation skipped: the simulator also
    runs the scalers the API does not accept, KNATIVE_KPA and RAY_SERVE)."""
    template = Template(id="sim-template", name="sim", imageName="sim", userId="sim-user")
    base = Endpoint(id=ENDPOINT_ID, userId="sim-user", name="sim", templateId=template.id,
                    version=0, createdAt="", gpuTypeIds=[setup.gpu_type],
                    gpuCount=setup.gpus_per_worker, template=template)
    return base.model_copy(update=candidate.settings())


class _Endpoints:
    """The one simulated endpoint (``EndpointSource``)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def list_all(self) -> list[Endpoint]:
        return [self.endpoint]

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self.endpoint if endpoint_id == self.endpoint.id else None


class _Templates:
    """Its template (``TemplateSource``)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def get(self, template_id: str) -> Template | None:
        return self.endpoint.template


class _Nothing:
    """Network volumes and registry credentials: a simulated endpoint has none."""

    def get(self, volume_id: str) -> NetworkVolume | None:
        return None

    def path_of(self, volume: NetworkVolume) -> Path:
        raise AssertionError("a simulated endpoint has no network volume")

    def credentials_for(self, auth_id: str, image: str) -> tuple[str, str] | None:
        return None


class Run:
    """One trace through one candidate (``simulate`` below runs it)."""

    def __init__(self, trace: Trace, candidate: Candidate, setup: Setup,
                 budget: Budget | None = None) -> None:
        self.trace, self.candidate, self.setup = trace, candidate, setup
        self.budget = budget or Budget()
        self.clock = ManualClock(START)
        self.ledger = Ledger()
        self.events = Events()
        self.queues = SimQueues()
        self.registry = SimRegistry(self.clock, lambda _ep: "sim-user")
        rng = random.Random(f"timing-{setup.seed}")
        self.provider = SimProvider(_machine(setup), self.clock, setup.cold_start,
                                    setup.revival, rng)
        self.endpoint = endpoint_for(candidate, setup)
        self.controller = Controller(
            settings=setup.controller, clock=self.clock, provider=self.provider,
            endpoints=_Endpoints(self.endpoint), templates=_Templates(self.endpoint),
            queues=self.queues, registry=self.registry,
            billing=SimBilling(self.ledger, setup.gpus_per_worker),
            launcher=Launcher(self.provider, build_catalog(), _Nothing(), _Nothing()),
            allocations=Allocations(self.provider, cpu_overcommit=1.0), rows=SimRows(),  # type: ignore[arg-type]
            pods=NoPods())
        self.controller.add_observer(_Recorder(self))
        # As ``Controller.start`` does, without its real-time loop (this class is the loop).
        self.queues.add_enqueue_listener(self.controller.on_enqueue)
        self.polling: deque[Worker] = deque()  # free workers, in the order they asked
        self.available_at: dict[str, float] = {}
        self.provider.on_started = self._started
        self.provider.live = self._live
        self.registry.on_unparked = self._thawing
        self.registry.on_retired = self._retired
        policy = POLICIES.get(candidate.scaler_type)
        self.skippable = not getattr(policy, "every_tick", False)

    # -- the world's events ------------------------------------------------------------

    def _note(self) -> None:
        q = self.queues.queued.get(ENDPOINT_ID) or ()
        self.ledger.series.append((self.clock.now() - START, self.ledger.live, len(q)))

    def _live(self, delta: int) -> None:
        self.ledger.live += delta
        self.ledger.peak_live = max(self.ledger.peak_live, self.ledger.live)
        self._note()

    def _arrive(self, job: SimJob) -> None:
        self.queues.queued.setdefault(job.endpoint_id, deque()).append(job)
        self.ledger.jobs.append(job)
        self._dispatch()
        self._note()
        for listener in self.queues.listeners:
            listener(job.endpoint_id)

    def _started(self, worker_id: str, ready_in: float) -> None:
        self.ledger.cold_starts += 1
        self.events.at(self.clock.now() + ready_in, lambda: self._first_take(worker_id))

    def _first_take(self, worker_id: str) -> None:
        w = self.registry.get(worker_id)
        if w is None or not w.can_take():
            return
        now = self.clock.now()
        w.first_take_at = w.idle_since = w.last_seen_at = now
        w.status = IDLE  # type: ignore[assignment]
        self.polling.append(w)
        self._dispatch()

    def _thawing(self, w: Worker) -> None:
        self.ledger.revivals += 1
        ready = self.clock.now() + self.setup.revival.sample(self.provider.rng)
        self.available_at[w.id] = ready
        self.events.at(ready, lambda: self._free(w))

    def _free(self, w: Worker) -> None:
        if w.can_take() and not w.jobs and w.first_take_at is not None:
            self.polling.append(w)
            self._dispatch()

    def _retired(self, w: Worker) -> None:
        for job in list(w.jobs.values()):  # lost with its worker: back to the head, as the broker
            job.taken_at = job.worker_id = None  # type: ignore[attr-defined]
            self.queues.in_progress[job.endpoint_id] -= 1  # type: ignore[attr-defined]
            self.queues.queued.setdefault(job.endpoint_id, deque()).appendleft(job)  # type: ignore[arg-type]
        w.jobs.clear()

    def _dispatch(self) -> None:
        q = self.queues.queued.get(ENDPOINT_ID)
        now = self.clock.now()
        while q and self.polling:
            w = self.polling.popleft()
            if (not w.can_take() or w.jobs or w.id not in self.registry.by_id
                    or self.available_at.get(w.id, 0.0) > now):
                continue
            job = q.popleft()
            job.taken_at, job.worker_id = now, w.id
            w.jobs[job.id] = job  # type: ignore[assignment]
            w.status = BUSY  # type: ignore[assignment]
            self.queues.in_progress[ENDPOINT_ID] = self.queues.in_progress.get(ENDPOINT_ID, 0) + 1
            self.events.at(now + job.execution_s, functools.partial(self._done, w, job))

    def _done(self, w: Worker, job: SimJob) -> None:
        if w.jobs.pop(job.id, None) is None:
            return  # its worker was retired and the job re-queued
        now = self.clock.now()
        self.queues.in_progress[ENDPOINT_ID] -= 1
        self.queues.finished[ENDPOINT_ID] = self.queues.finished.get(ENDPOINT_ID, 0) + 1
        w.status, w.idle_since = IDLE, now  # type: ignore[assignment]
        if w.can_take():
            self.polling.append(w)
        self._dispatch()
        self._note()

    # -- the loop ------------------------------------------------------------------------

    def _settled_until(self) -> float | None:
        """When the next tick that could decide something is due, if it is later than the
        next grid tick: None when ticks must go on."""
        q = self.queues.queued.get(ENDPOINT_ID)
        if q:
            return None
        workers = self.registry.all()
        if not workers and not self.queues.in_progress.get(ENDPOINT_ID):
            return math.inf  # quiet: the next arrival kicks a tick
        if not self.skippable:
            return None
        parked_until = math.inf
        for w in workers:
            if w.parked:
                parked_at = self.controller.readings.parked_since(w.id)
                if parked_at is not None:
                    parked_until = min(parked_until,
                                       parked_at + self.setup.controller.max_parked_s)
            elif not w.jobs or w.first_take_at is None:
                return None  # idle or starting: its timeout is counted in ticks
        nxt = self.events.next_at()
        return min(parked_until, nxt if nxt is not None else math.inf)

    async def run(self) -> Ledger:
        """Replay the trace; the ledger of what happened."""
        for i, tj in enumerate(self.trace.jobs):
            job = SimJob(f"j{i}", ENDPOINT_ID, START + tj.at, tj.execution_s)
            self.events.at(job.arrived_at, functools.partial(self._arrive, job))
        tick_s = self.setup.controller.tick_s
        end = START + self.trace.duration_s + self.setup.drain_s
        next_tick = START
        kick = self.controller.wake  # the live loop's wake-up event, read the same way
        same_time = 0
        step = self.budget.step  # one per event and per tick: where a cancel or the cap stops it
        while True:
            step()
            t_event = self.events.next_at()
            if t_event is not None and t_event < next_tick:
                self.clock.advance(t_event - self.clock.now())
                self.events.pop()()
                if kick.is_set():
                    kick.clear()
                    next_tick = self.clock.now()
                continue
            if next_tick > end:
                break
            self.clock.advance(next_tick - self.clock.now())
            await self.controller.tick()
            while self.controller.background:  # the stops it asked for (immediate here)
                await asyncio.sleep(0)
            if kick.is_set() and same_time < 10:
                kick.clear()
                same_time += 1
                continue  # kicked: tick again now, as the live loop does
            kick.clear()
            same_time = 0
            next_tick = self.clock.now() + tick_s
            until = self._settled_until()
            if until is not None and until > next_tick:
                # The first tick of the live loop's grid after ``until``.
                next_tick = math.inf if math.isinf(until) else self.clock.now() + tick_s * (
                    math.floor((until - self.clock.now()) / tick_s) + 1)
        if self.clock.now() < end:
            self.clock.advance(end - self.clock.now())
        await self.controller.shutdown()  # bills what still runs
        return self.ledger


class _Recorder:
    """The controller's observer: its scaling actions, with their virtual times."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def scaled(self, endpoint_id: str, action: str, workers: int, reason: str) -> None:
        self._run.ledger.scaled.append((self._run.clock.now() - START, action, workers, reason))

    def worker_ready(self, endpoint_id: str, worker_id: str, cold_start_s: float) -> None:
        return None

    def ticked(self, now: float) -> None:
        return None


def simulate(trace: Trace, candidate: Candidate, setup: Setup,
             budget: Budget | None = None) -> Ledger:
    """Replay ``trace`` through the controller with ``candidate``'s settings, its steps
    counted against ``budget`` (which raises ``Cancelled`` or ``Exhausted`` to stop it)."""
    return asyncio.run(Run(trace, candidate, setup, budget).run())

