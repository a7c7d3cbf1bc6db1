"""The reconcile loop: read desired state (endpoints, queues) and actual state (workers,
machines), then act through the provider to close the gap. Level-triggered: every tick looks at
everything again, so a missed event is corrected on the next tick; the enqueue listener only
makes the next tick come at once (scale from zero without waiting).

Each endpoint's pass is gather -> decide -> act: this module gathers the inputs (queue
metrics, the registry's views of its workers, what it tracks), the pure functions of
``verdicts``, ``autoscaler`` and ``scheduler`` decide, and this module acts on their answers:
starts through the ``launcher`` shared with pods, ``workers`` rows through ``WorkerTable``,
placements through ``Allocations``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from runplane.clock import Clock
from runplane.config import ControllerSettings
from runplane.controller import autoscaler as asc
from runplane.controller import verdicts
from runplane.controller.allocations import Allocations
from runplane.controller.breaker import Breaker
from runplane.controller.exits import Exits
from runplane.controller.flashboot import FlashBoot
from runplane.controller.inputs import queue_stats, scaler_settings
from runplane.controller.launcher import Launcher, VolumeMount
from runplane.controller.policies import EndpointPolicies
from runplane.controller.records import Readings, Records
from runplane.controller.ports import (
    EndpointSource,
    JobQueues,
    PodProcesses,
    TemplateSource,
    UsageRecorder,
    WorkerRegistryPort,
)
from runplane.controller.restart import take_over_previous_run
from runplane.controller.revive import Revivals
from runplane.controller.scheduler import MachineLoad, NoFit, apply
from runplane.controller.state import Blocked, ControllerObserver, EndpointState, Observers, Tracked
from runplane.controller.worker_rows import WorkerTable
from runplane.providers.base import EXITED, ImageError, Provider
from runplane.schemas.endpoints import Endpoint

if TYPE_CHECKING:
    from runplane.broker.models import WorkerView

__all__ = ["Blocked", "Controller", "ControllerObserver", "EndpointState", "Tracked"]

log = logging.getLogger("runplane.controller")

NO_COMMAND = ("the template has no dockerEntrypoint/dockerStartCmd: the process runtime needs "
              "the command that starts the worker")


class Controller:
    """Runs endpoint workers on the provider's machines; reaps the pods' exits with theirs
    (pods are started and stopped by the pod service)."""

    def __init__(self, *, settings: ControllerSettings, clock: Clock, provider: Provider,
                 endpoints: EndpointSource, templates: TemplateSource, queues: JobQueues,
                 registry: WorkerRegistryPort, billing: UsageRecorder, launcher: Launcher,
                 allocations: Allocations, rows: WorkerTable, pods: PodProcesses,
                 settle: Callable[[], Awaitable[bool]] | None = None) -> None:
        """``settle()``: True once the store holds every write queued so far (the broker's
        writer; None where writes are synchronous, as in the simulator)."""
        self.cfg = settings
        self.clock = clock
        self.provider = provider
        self.endpoints = endpoints
        self.templates = templates
        self.queues = queues
        self.registry = registry
        self.launcher = launcher
        self.allocations = allocations
        self.rows = rows
        self.pods = pods
        # Its tracked workers and endpoint states (controller/records.py): written only
        # through ``_records``; its parts read ``tracked`` (live, read-only), everyone else
        # ``readings``.
        self._records = Records(allocations)
        self.tracked = self._records.tracked
        self.readings: Readings = self._records
        self.breakers: dict[str, Breaker] = {}
        self.policies = EndpointPolicies()  # scalers other than RunPod's rules, per endpoint
        self.tick_count = 0
        self.last_tick_ms = 0.0
        self.wake = asyncio.Event()  # set: tick now (the loop clears it; a simulator reads it)
        self._task: asyncio.Task[None] | None = None
        # Background stops and blocking park/resume calls: referenced until they finish.
        self.background: set[asyncio.Task[object]] = set()
        self.observers = Observers()
        self.progress: dict[str, str] = {}  # worker id -> what it does before its code runs
        self.flashboot = FlashBoot(  # parked workers (docs/flashboot.md)
            registry=registry, queues=queues, provider=provider, billing=billing, clock=clock,
            workers=self.tracked, data_center_of=allocations.data_center_of, stop=self._stop,
            kick=self.kick, scaled=self.observers.scaled, spawn=self._spawn)
        self.exits = Exits(provider=provider, registry=registry, rows=rows,  # exited workers
                           flashboot=self.flashboot, tracked=self.tracked,
                           forget=self._records.forget, breaker=self._breaker)
        self.revivals = Revivals(  # scaled-down workers started again by strict-resume
            registry=registry, tracked=self.tracked, start=self._start_worker, settle=settle,
            spawn=self._spawn, kick=self.kick, scaled=self.observers.scaled,
            keep_s=settings.max_parked_s)

    def add_observer(self, observer: ControllerObserver) -> None:
        """Tell ``observer`` what the controller does (see ``ControllerObserver``)."""
        self.observers.add(observer)

    def _spawn(self, coro: Coroutine[Any, Any, object], kick: bool = False) -> None:
        """Run ``coro`` in the background; tick again when it ends if ``kick``."""
        task = asyncio.create_task(coro)
        self.background.add(task)

        def done(t: asyncio.Task[object]) -> None:
            self.background.discard(t)
            if kick:
                self.kick()

        task.add_done_callback(done)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop; called from the app's startup hooks."""
        self.queues.add_enqueue_listener(self.on_enqueue)
        self._task = asyncio.create_task(self._run(), name="runplane-controller")

    async def shutdown(self, stop_workers: bool = True) -> None:
        """Stop the loop, the pods, and the workers unless not ``stop_workers`` (outliving)."""
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        infos = [i for i in self.provider.list() if i.state != EXITED
                 and (stop_workers or i.id not in self.tracked)]
        await asyncio.gather(*(self.provider.stop(i.id, min(self.cfg.stop_grace_s, 5.0))
                               for i in infos), return_exceptions=True)
        if stop_workers:
            for w in list(self.tracked.values()):
                w.stop_reason = w.stop_reason or "server shut down"
            self.exits.reap(self.clock.now())
        self.pods.reap(self.clock.now())

    def kick(self) -> None:
        """Make the next tick happen now (a job arrived, a setting changed)."""
        self.wake.set()

    def on_enqueue(self, endpoint_id: str) -> None:
        """A job was queued: resume a parked worker at once if it needs one, and tick."""
        try:
            self.flashboot.on_enqueue(endpoint_id)
        finally:
            self.wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - one bad tick must not stop the controller
                log.exception("reconcile tick failed")
            try:
                await asyncio.wait_for(self.wake.wait(), self.cfg.tick_s)
            except TimeoutError:
                pass
            self.wake.clear()

    # -- the tick -------------------------------------------------------------------

    async def tick(self) -> None:
        """One pass: reap exits, enforce start-up timeouts, then scale every endpoint."""
        t0 = time.perf_counter()
        now = self.clock.now()
        infos = self.provider.list()
        # What starting workers are doing (pulling their image): shown as the reason.
        self.progress = {i.id: p for i in infos if (p := i.progress) is not None}
        self.exits.reap(now, infos)
        self.pods.reap(now, infos)
        endpoints = {ep.id: ep for ep in self.endpoints.list_all()}
        loads = self.loads()
        for w in list(self.tracked.values()):
            if w.endpoint_id not in endpoints and w.stop_reason is None:
                self._stop(w, "endpoint deleted")
        self.revivals.start_due(endpoints, now, loads)  # before the views: they include them
        # Group the workers once: asking the registry per endpoint is O(endpoints x workers).
        views: dict[str, list[WorkerView]] = {}
        for rw in self.registry.all():
            views.setdefault(rw.endpoint_id, []).append(self.registry.view(rw))
        for ep in endpoints.values():
            self._reconcile_endpoint(ep, now, loads, views.get(ep.id, ()))
        self._records.keep_states(endpoints)
        self.policies.keep(endpoints)
        self.tick_count += 1
        self.last_tick_ms = (time.perf_counter() - t0) * 1000
        self.observers.ticked(now)

    def loads(self) -> list[MachineLoad]:
        """Each machine with the GPUs/CPUs held by live workers and pods."""
        return self.allocations.loads()

    def _breaker(self, endpoint_id: str) -> Breaker:
        breaker = self.breakers.get(endpoint_id)
        if breaker is None:
            breaker = self.breakers[endpoint_id] = Breaker(
                self.cfg.crash_loop_threshold, self.cfg.crash_backoff_base_s,
                self.cfg.crash_backoff_max_s)
        return breaker

    def _reconcile_endpoint(self, ep: Endpoint, now: float, loads: list[MachineLoad],
                            views: Sequence[WorkerView]) -> None:
        # Gather.
        state = self._records.state_of(ep.id)
        breaker = self._breaker(ep.id)
        m = self.queues.queue_metrics(ep.id)
        if verdicts.is_quiet(len(views), ep.workersMin, m.in_queue, m.in_progress,
                             breaker.failures):
            state.reason, state.throttled, state.desired = None, 0, 0
            state.decision = "no jobs, no workers"
            return
        # Decide and act per worker first: one stopped now is not capacity for the autoscaler.
        capacity: list[asc.WorkerSnapshot] = []
        tracked, judge = self.tracked, verdicts.judge_worker
        startup_timeout_s, overdue_grace_s = self.cfg.startup_timeout_s, self.cfg.overdue_grace_s
        for v in views:
            mine = tracked.get(v.id)
            verdict = judge(v, mine, endpoint_version=ep.version, now=now,
                            startup_timeout_s=startup_timeout_s, overdue_grace_s=overdue_grace_s)
            if mine is not None and (verdict.ready_after_s is not None or verdict.stop is not None):
                self._act_on_worker(mine, verdict, breaker, now)
            if verdict.capacity is not None:
                capacity.append(verdict.capacity)
        capacity += self.revivals.capacity(ep.id, ep.version)
        # Decide for the endpoint.
        policy = self.policies.of(ep.id, ep.scalerType)
        decision = asc.decide(scaler_settings(ep, self.cfg.max_parked_s),
                              queue_stats(m, policy, self.queues, ep.id), capacity, now,
                              breaker.blocked(now), policy.target if policy else None)
        state.decision, state.desired = decision.reason, decision.desired
        # Act: stop, park/resume, start, then say why jobs wait.
        for wid, why in decision.stop:
            if wid in self.tracked:
                self._stop(self.tracked[wid], why)
                self.observers.scaled(ep.id, "down", 1, why)
        self.revivals.scaled_down(decision.scaled_down, now)
        self.flashboot.apply(ep.id, decision, now)
        breaker_status = breaker.status(now)  # before this tick's starts change the breaker
        throttled = decision.blocked
        started, start_failure = 0, None
        for i in range(decision.start):
            problem = self._start_worker(ep, now, loads)
            if problem:
                start_failure = problem.reason
                throttled += (decision.start - i) if problem.transient else 0
                break
            started += 1
        if started:
            self.observers.scaled(ep.id, "up", started, decision.reason)
        progress = (verdicts.starting_progress([v.id for v in views], self.progress)
                    if self.progress else None)
        state.reason = verdicts.endpoint_reason(
            start_failure, breaker_status, progress,
            bool(m.in_queue) and verdicts.only_low_priority(
                m.in_queue, m.in_queue_normal, len(capacity), decision.start))
        state.throttled = throttled

    # -- acting ---------------------------------------------------------------------

    def _act_on_worker(self, w: Tracked, verdict: verdicts.WorkerVerdict, breaker: Breaker,
                       now: float) -> None:
        """Carry out ``judge_worker``'s verdict on a worker this controller started."""
        if verdict.ready_after_s is not None:
            w.took = True
            breaker.record_success()
            self.policies.observe_ready(w.endpoint_id, verdict.ready_after_s)
            self.observers.worker_ready(w.endpoint_id, w.id, verdict.ready_after_s)
        if verdict.stop is not None:
            if verdict.failed:
                w.failure = verdict.stop
                breaker.record_failure(now, verdict.stop)
            self._stop(w, verdict.stop)

    def _start_worker(self, ep: Endpoint, now: float, loads: list[MachineLoad],
                      worker_id: str | None = None, prefer: str | None = None) -> Blocked | None:
        """Place and start one worker (under ``worker_id``, preferring the machine ``prefer``:
        a scaled-down worker started again); says why (a reason a person can act on) when
        it cannot."""
        template = ep.template or self.templates.get(ep.templateId)
        if template is None:
            return Blocked(f"template {ep.templateId} not found")
        t = template.model_dump()
        if ep.env:  # the endpoint's own variables on top of its template's
            t["env"] = {**t["env"], **ep.env}
        unrunnable = self.launcher.check(t, NO_COMMAND)
        if unrunnable is not None:
            return Blocked(unrunnable.message)
        spec = ep.model_dump()
        volume = self.launcher.volume(ep.networkVolumeId or None)
        placed = self.launcher.place(spec, ep.id, volume.dataCenterId if volume else None, loads,
                                     self.flashboot.evictable(ep.id), prefer)
        if isinstance(placed, NoFit):
            return Blocked(placed.reason, placed.busy)
        if placed.evict:
            # Parked workers of other endpoints hold what it needs: stop them now; it starts
            # once they are gone (their stop kicks the next tick).
            held = "GPUs" if placed.gpu_type_id else "share of the host"
            self.revivals.scaled_down(placed.evict, now)  # idle, not faulty: resumable
            for wid in placed.evict:
                self._stop(self.tracked[wid], f"evicted: endpoint {ep.id} needs its {held}",
                           grace_s=0.0)
            return Blocked(f"stopping {len(placed.evict)} parked worker(s) of other endpoints "
                           "to free their capacity", transient=True)
        apply(next(m for m in loads if m.machine.id == placed.machine_id), placed)
        if worker_id is not None:
            self.rows.reuse(worker_id)  # its previous run's row
        worker_id, token = self.registry.register(
            ep.id, manual=False, worker_id=worker_id, machine_id=placed.machine_id,
            gpu_type_id=placed.gpu_type_id, gpu_count=len(placed.gpu_indices),
            vcpu_count=int(placed.vcpu_count), memory_in_gb=placed.memory_in_gb,
            cost_per_hr=placed.cost_per_hr, endpoint_version=ep.version)
        env = self.launcher.environment(
            t, VolumeMount(volume, "/runpod-volume"),
            self.registry.worker_env(ep.id, worker_id, token, gpu=placed.gpu_type_id or ""),
            defaults={"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true"})  # no internet assumed
        tracked = Tracked(worker_id, ep.id, ep.userId, ep.version, now, placed)
        self._records.track(tracked)
        try:
            started = self.launcher.start(worker_id, t, placed, env, ep.load_balancer)
        except (OSError, ImageError) as err:
            tracked.failure = f"could not start: {err}"
            self._breaker(ep.id).record_failure(now, tracked.failure)
            tracked.stop_reason = tracked.failure
            self.exits.finish(tracked, now, None, tracked.failure)
            return Blocked(tracked.failure)
        self.rows.mark_started(worker_id, started.info, started.log_path, placed, ep.version)
        log.info("started worker %s for endpoint %s on %s", worker_id, ep.id, placed.machine_id,
                 extra={"worker_id": worker_id, "endpoint_id": ep.id})
        return None

    def _stop(self, w: Tracked, reason: str, grace_s: float | None = None) -> None:
        """Ask the provider to stop a worker (SIGTERM, then SIGKILL after the grace period)."""
        if w.stop_reason is not None:
            return
        w.stop_reason = reason
        self.flashboot.forget(w)
        if w.parked_at is not None and grace_s is None:
            grace_s = 0.0  # frozen and holding no job: nothing to finish, free its GPUs now
        # No job may be handed to it while it shuts down (its open long-polls are answered).
        registered = self.registry.get(w.id)
        if registered is not None:
            self.registry.request_stop(registered, reason)
        self.rows.mark_stopping(w.id, reason)
        self._spawn(self.provider.stop(w.id, self.cfg.stop_grace_s if grace_s is None
                                       else grace_s), kick=True)

    def take_over_previous_run(self) -> None:
        """Track the previous run's workers that still run, retire the rest (restart.py)."""
        take_over_previous_run(self.rows, self.pods, self.registry, self.provider,
                               self._records.track, self.clock.now())

    # -- views ----------------------------------------------------------------------

    def progress_of(self, worker_id: str) -> str | None:
        """What a starting worker does before its code runs (pulling its image), or None."""
        return self.progress.get(worker_id)

    def endpoint_reason(self, endpoint_id: str) -> str | None:
        """Why an endpoint's jobs wait, or None; for the endpoint, /health and queued jobs."""
        return self._records.endpoint_reason(endpoint_id)

    def endpoint_status(self, endpoint_id: str) -> dict[str, Any]:
        """``reason`` and ``throttled`` (RunPod's THROTTLED workers) when set; read by /health."""
        return self._records.endpoint_status(endpoint_id)
