"""The reconcile loop: read desired state (endpoints, queues) and actual state (workers,
machines), then act through the provider to close the gap. Level-triggered: every tick looks at
everything again, so a missed event is corrected on the next tick; the enqueue listener only
makes the next tick come at once (scale from zero without waiting).

Decisions are the pure functions of ``autoscaler``, ``scheduler`` and ``breaker``; this module
only gathers their inputs, carries out their answers and records what happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import update

from runplane.config import Settings
from runplane.controller import autoscaler as asc
from runplane.controller.breaker import Breaker
from runplane.controller.flashboot import FlashBoot
from runplane.controller.restart import cleanup_previous_run
from runplane.controller.scheduler import MachineLoad, NoFit, apply, place_evicting
from runplane.controller.specs import command_of, request_for, volume_data_center, volume_env
from runplane.controller.state import Blocked, ControllerObserver, EndpointState, Tracked
from runplane.providers.base import (
    EXITED,
    ContainerOptions,
    ImageError,
    Provider,
    WorkerSpec,
    needs_command,
)
from runplane.store.tables import workers

__all__ = ["Blocked", "Controller", "ControllerObserver", "EndpointState", "Tracked"]

log = logging.getLogger("runplane.controller")


class Controller:
    """Runs endpoint workers (and pods) on the provider's machines."""

    def __init__(self, services: Any, provider: Provider, settings: Settings) -> None:
        self.s = services
        self.provider = provider
        self.settings = settings
        self.cfg = settings.controller
        self.clock = services.clock
        self.tracked: dict[str, Tracked] = {}
        self.breakers: dict[str, Breaker] = {}
        self.states: dict[str, EndpointState] = {}
        self.pods: Any = None  # PodService, set when pods are served
        self.tick_count = 0
        self.last_tick_ms = 0.0
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stops: set[asyncio.Task[Any]] = set()
        self.observers: list[ControllerObserver] = []
        self.progress: dict[str, str] = {}  # worker id -> what it does before its code runs
        self.flashboot = FlashBoot(self)  # parked workers (docs/flashboot.md)

    def add_observer(self, observer: ControllerObserver) -> None:
        self.observers.append(observer)

    def _notify(self, method: str, *args: Any) -> None:
        for o in self.observers:
            try:
                getattr(o, method)(*args)
            except Exception:  # noqa: BLE001 - observing must never break reconciling
                log.exception("controller observer failed")

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop; called from the app's startup hooks."""
        broker = self.s.broker
        if hasattr(broker, "add_enqueue_listener"):
            broker.add_enqueue_listener(self._on_enqueue)
        self._task = asyncio.create_task(self._run(), name="runplane-controller")

    async def shutdown(self) -> None:
        """Stop the loop and every process it started (workers and pods)."""
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        infos = [i for i in self.provider.list() if i.state != EXITED]
        await asyncio.gather(*(self.provider.stop(i.id, min(self.cfg.stop_grace_s, 5.0))
                               for i in infos), return_exceptions=True)
        for w in list(self.tracked.values()):
            w.stop_reason = w.stop_reason or "server shut down"
        self._reap(self.clock.now())
        if self.pods is not None:
            self.pods.reap(self.clock.now())

    def kick(self) -> None:
        """Make the next tick happen now (a job arrived, a setting changed)."""
        self._kick.set()

    def _on_enqueue(self, endpoint_id: str) -> None:
        """A job was queued: resume a parked worker at once if it needs one, and tick."""
        try:
            self.flashboot.on_enqueue(endpoint_id)
        finally:
            self._kick.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - one bad tick must not stop the controller
                log.exception("reconcile tick failed")
            try:
                await asyncio.wait_for(self._kick.wait(), self.cfg.tick_s)
            except TimeoutError:
                pass
            self._kick.clear()

    # -- the tick -------------------------------------------------------------------

    async def tick(self) -> None:
        """One pass: reap exits, enforce start-up timeouts, then scale every endpoint."""
        t0 = time.perf_counter()
        now = self.clock.now()
        infos = self.provider.list()
        # What starting workers are doing (pulling their image): shown as the reason.
        self.progress = {i.id: p for i in infos if (p := getattr(i, "progress", None)) is not None}
        self._reap(now, infos)
        if self.pods is not None:
            self.pods.reap(now, infos)
        endpoints = {ep.id: ep for ep in self.s.endpoints.list_all()}
        loads = self.loads()
        for w in list(self.tracked.values()):
            if w.endpoint_id not in endpoints and w.stop_reason is None:
                self._stop(w, "endpoint deleted")
        # Group the workers once: asking the registry per endpoint is O(endpoints x workers).
        registry = self.s.worker_registry
        views: dict[str, list[Any]] = {}
        for rw in registry.all():
            views.setdefault(rw.endpoint_id, []).append(registry.view(rw))
        for ep in endpoints.values():
            self._reconcile_endpoint(ep, now, loads, views.get(ep.id, ()))
        for gone in set(self.states) - set(endpoints):
            del self.states[gone]
        self.tick_count += 1
        self.last_tick_ms = (time.perf_counter() - t0) * 1000
        if self.observers:
            self._notify("ticked", now)

    def loads(self) -> list[MachineLoad]:
        """Each machine with the GPUs/CPUs held by live workers and pods."""
        out = {m.id: MachineLoad(m, overcommit=self.settings.machine.cpu_overcommit)
               for m in self.provider.machines()}
        for w in self.tracked.values():
            if w.placement.machine_id in out:
                apply(out[w.placement.machine_id], w.placement)
        if self.pods is not None:
            for p in self.pods.placements():
                if p.machine_id in out:
                    apply(out[p.machine_id], p)
        return list(out.values())

    def _breaker(self, endpoint_id: str) -> Breaker:
        breaker = self.breakers.get(endpoint_id)
        if breaker is None:
            breaker = self.breakers[endpoint_id] = Breaker(
                self.cfg.crash_loop_threshold, self.cfg.crash_backoff_base_s,
                self.cfg.crash_backoff_max_s)
        return breaker

    def _reconcile_endpoint(self, ep: Any, now: float, loads: list[MachineLoad],
                            views: Any) -> None:
        state = self.states.get(ep.id) or self.states.setdefault(ep.id, EndpointState())
        breaker = self._breaker(ep.id)
        m = self.s.broker.queue_metrics(ep.id)
        if not views and not ep.workersMin and not m.in_queue and not m.in_progress \
                and not breaker.failures:
            # Quiet (most endpoints, most of the time): the autoscaler would want nothing.
            state.reason, state.throttled, state.desired, state.updated_at = None, 0, 0, now
            state.decision = "no jobs, no workers"
            return
        states: list[asc.WorkerState] = []
        for v in views:
            if v.status == asc.EXITED:
                continue
            mine = self.tracked.get(v.id)
            if mine is not None:
                if mine.stop_reason is None:
                    self._stop_if_stuck(mine, v)
                if mine.stop_reason is not None:
                    continue  # leaving: not capacity
                if v.first_take_at is not None and not mine.took:
                    mine.took = True
                    breaker.record_success()
                    if self.observers:
                        self._notify("worker_ready", ep.id, v.id,
                                     max(0.0, v.first_take_at - mine.started_at))
                if not mine.took and now - mine.started_at > self.cfg.startup_timeout_s:
                    mine.failure = (f"no job-take within the startup timeout "
                                    f"({self.cfg.startup_timeout_s:g}s)")
                    breaker.record_failure(now, mine.failure)
                    self._stop(mine, mine.failure)
                    continue
            elif not v.manual:
                continue  # a controller worker of a previous server run; being cleaned up
            status = asc.PARKED if v.parked else v.status
            if mine is not None and mine.resuming:
                status = asc.INITIALIZING  # being thawed: capacity about to take jobs
            # A handler still running a job the server ended is busy, not idle capacity.
            held = len(v.jobs) + len(v.overdue)
            if held and status == asc.IDLE:
                status = asc.RUNNING
            states.append(asc.WorkerState(
                v.id, status, held, v.idle_since, mine.version if mine else ep.version, v.manual,
                mine.parked_at if mine else None))
        q = asc.QueueStats(m.in_queue_normal, m.in_progress, m.oldest_queued_at)
        settings = asc.ScalerSettings(
            ep.workersMin, ep.workersMax, ep.scalerType, float(ep.scalerValue),
            float(ep.idleTimeout), ep.version, bool(getattr(ep, "flashboot", False)),
            self.cfg.max_parked_s)
        decision = asc.decide(settings, q, states, now, breaker.blocked(now))
        state.decision, state.desired, state.updated_at = decision.reason, decision.desired, now
        for wid, why in decision.stop:
            if wid in self.tracked:
                self._stop(self.tracked[wid], why)
                if self.observers:
                    self._notify("scaled", ep.id, "down", 1, why)
        self.flashboot.apply(ep.id, decision, now)
        reason = breaker.status(now)
        throttled = decision.blocked
        started = 0
        for i in range(decision.start):
            problem = self._start_worker(ep, now, loads)
            if problem:
                reason = problem.reason
                throttled += (decision.start - i) if problem.transient else 0
                break
            started += 1
        if started and self.observers:
            self._notify("scaled", ep.id, "up", started, decision.reason)
        if reason is None and self.progress:
            reason = next((f"worker {v.id} is starting: {self.progress[v.id]}" for v in views
                           if v.id in self.progress), None)
        if reason is None and m.in_queue and not states and decision.start == 0:
            reason = ("only lowPriority jobs are queued and workersMin is 0: they wait for a "
                      "worker started by other jobs") if m.in_queue_normal == 0 else None
        state.reason, state.throttled = reason, throttled

    def _stop_if_stuck(self, w: Tracked, v: Any) -> None:
        """Stop a worker the handler asked to replace, or one still running a job that already
        ended on the server (timed out, cancelled) a grace period ago: a sync handler cannot
        be interrupted, so only stopping its process frees the slot."""
        if v.desired_status == asc.EXITED:
            self._stop(w, v.reason or "asked to stop")
            return
        stuck = [(job_id, late) for job_id, late in v.overdue if late >= self.cfg.overdue_grace_s]
        if stuck:
            job_id, late = stuck[0]
            self._stop(w, f"job {job_id} ended on the server (execution timeout or cancel) "
                          f"but the handler was still running it {late:.0f}s later")

    # -- acting ---------------------------------------------------------------------

    def _start_worker(self, ep: Any, now: float, loads: list[MachineLoad]) -> Blocked | None:
        """Place and start one worker; says why (a reason a person can act on) when it cannot."""
        template = ep.template or self.s.templates.get(ep.templateId)
        if template is None:
            return Blocked(f"template {ep.templateId} not found")
        t = template.model_dump() if hasattr(template, "model_dump") else dict(template)
        try:
            self.provider.check_image(t.get("imageName", ""))
        except ImageError as err:
            return Blocked(str(err))
        if not command_of(t) and needs_command(self.provider, t.get("imageName", "")):
            return Blocked("the template has no dockerEntrypoint/dockerStartCmd: the process "
                           "runtime needs the command that starts the worker")
        spec = ep.model_dump()
        vol_dc = volume_data_center(self.s.engine, ep.networkVolumeId or None)
        placed = place_evicting(request_for(spec, ep.id, self.s.catalog, vol_dc), loads,
                                self.flashboot.evictable(ep.id))
        if isinstance(placed, NoFit):
            return Blocked(placed.reason, placed.busy)
        if placed.evict:
            # Parked workers of other endpoints hold what it needs: stop them now; it starts
            # once they are gone (their stop kicks the next tick).
            for wid in placed.evict:
                self._stop(self.tracked[wid], f"evicted: endpoint {ep.id} needs its "
                                              f"{'GPUs' if placed.gpu_type_id else 'share of the host'}",
                           grace_s=0.0)
            return Blocked(f"stopping {len(placed.evict)} parked worker(s) of other endpoints "
                           "to free their capacity", transient=True)
        apply(next(m for m in loads if m.machine.id == placed.machine_id), placed)
        worker_id, token = self.s.worker_registry.register(
            ep.id, manual=False, machine_id=placed.machine_id, gpu_type_id=placed.gpu_type_id,
            gpu_count=len(placed.gpu_indices), vcpu_count=int(placed.vcpu_count),
            memory_in_gb=placed.memory_in_gb, cost_per_hr=placed.cost_per_hr,
            endpoint_version=ep.version)
        env = {**t.get("env", {})}
        env.update(volume_env(self.settings.resolved_volume_root, ep.networkVolumeId or None,
                              vol_dc, "/runpod-volume"))
        env.update(self.s.worker_registry.worker_env(ep.id, worker_id, token,
                                                     gpu=placed.gpu_type_id or ""))
        env.setdefault("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true")  # no internet assumed
        log_path = self.provider.log_path(worker_id)  # type: ignore[attr-defined]
        tracked = Tracked(worker_id, ep.id, ep.userId, ep.version, now, placed)
        self.tracked[worker_id] = tracked
        try:
            info = self.provider.start(WorkerSpec(
                worker_id, t["imageName"], command_of(t), env, log_path, placed.gpu_indices,
                placed.machine_id, ContainerOptions.of(t, self._registry_auth(t))))
        except (OSError, ImageError) as err:
            tracked.failure = f"could not start: {err}"
            self.breakers[ep.id].record_failure(now, tracked.failure)
            tracked.stop_reason = tracked.failure
            self._finish(tracked, now, None, tracked.failure)
            return Blocked(tracked.failure)
        with self.s.engine.begin() as conn:
            conn.execute(update(workers).where(workers.c.id == worker_id).values(
                started_at=info.started_at, provider_data=info.data, log_path=str(log_path),
                machine_id=placed.machine_id, gpu_type_id=placed.gpu_type_id,
                gpu_count=len(placed.gpu_indices), vcpu_count=int(placed.vcpu_count),
                memory_in_gb=placed.memory_in_gb, cost_per_hr=placed.cost_per_hr,
                endpoint_version=ep.version, desired_status="RUNNING"))
        log.info("started worker %s for endpoint %s on %s", worker_id, ep.id, placed.machine_id,
                 extra={"worker_id": worker_id, "endpoint_id": ep.id})
        return None

    def _registry_auth(self, t: dict[str, Any]) -> tuple[str, str] | None:
        """The template's registry credentials, for the container runtime's pull only."""
        auth_id = t.get("containerRegistryAuthId")
        auths = getattr(self.s, "registry_auths", None)
        return auths.credentials(auth_id) if auth_id and auths is not None else None

    def _stop(self, w: Tracked, reason: str, grace_s: float | None = None) -> None:
        """Ask the provider to stop a worker (SIGTERM, then SIGKILL after the grace period)."""
        if w.stop_reason is not None:
            return
        w.stop_reason = reason
        self.flashboot.forget(w)
        if w.parked_at is not None and grace_s is None:
            grace_s = 0.0  # frozen and holding no job: nothing to finish, free its GPUs now
        # No job may be handed to it while it shuts down (its open long-polls are answered).
        registered = self.s.worker_registry.get(w.id)
        if registered is not None:
            self.s.worker_registry.request_stop(registered, reason)
        with self.s.engine.begin() as conn:
            conn.execute(update(workers).where(workers.c.id == w.id).values(
                desired_status="EXITED", reason=reason))
        task = asyncio.create_task(self.provider.stop(
            w.id, self.cfg.stop_grace_s if grace_s is None else grace_s))
        self._stops.add(task)
        task.add_done_callback(lambda t: (self._stops.discard(t), self.kick()))

    def _reap(self, now: float, infos: list[Any] | None = None) -> None:
        """Record every worker process that has exited: breaker, registry, billing."""
        for info in self.provider.list() if infos is None else infos:
            w = self.tracked.get(info.id)
            if w is None or info.state != EXITED:
                continue
            if w.stop_reason is None and w.parked_at is not None:
                # Killed from outside while frozen (OOM killer, a person): not the handler's
                # crash, so not the breaker's business; a new worker starts when needed.
                w.stop_reason = f"its process exited while parked (exit code {info.exit_code})"
            elif w.stop_reason is None:
                # Nobody asked it to stop: a crash (or a failed start before its first job).
                w.failure = getattr(info, "reason", None) or (
                    f"exited with code {info.exit_code} before its first job"
                    if not w.took else f"crashed with exit code {info.exit_code}")
                self._breaker(w.endpoint_id).record_failure(now, w.failure)
            self._finish(w, info.stopped_at or now, info.exit_code, w.stop_reason or w.failure or "")
            self.provider.forget(info.id)

    def _finish(self, w: Tracked, end: float, exit_code: int | None, reason: str) -> None:
        self.tracked.pop(w.id, None)
        self.flashboot.forget(w)
        try:
            self.s.worker_registry.retire(w.id, reason)
        except Exception:  # noqa: BLE001 - the endpoint may be gone with its workers
            log.debug("retire %s failed", w.id, exc_info=True)
        with self.s.engine.begin() as conn:
            conn.execute(update(workers).where(workers.c.id == w.id).values(
                stopped_at=end, exit_code=exit_code, reason=reason, desired_status="EXITED"))
        if w.started_at and w.parked_at is None:  # a parked worker's interval is closed
            self.flashboot.bill(w, end)
        log.info("worker %s of %s exited (%s): %s", w.id, w.endpoint_id, exit_code, reason,
                 extra={"worker_id": w.id, "endpoint_id": w.endpoint_id})

    def _machine_dc(self, machine_id: str) -> str | None:
        for m in self.provider.machines():
            if m.id == machine_id:
                return m.data_center_id
        return None

    def cleanup_previous_run(self) -> None:
        """Kill and retire what the previous server run left behind (``controller.restart``)."""
        cleanup_previous_run(self.s, self.clock.now())

    # -- views ----------------------------------------------------------------------

    def endpoint_reason(self, endpoint_id: str) -> str | None:
        """Why an endpoint's jobs wait, or None; for the endpoint, /health and queued jobs."""
        state = self.states.get(endpoint_id)
        return state.reason if state else None

    def endpoint_status(self, endpoint_id: str) -> dict[str, Any]:
        """The broker's ``endpoint_status`` hook: ``reason`` and ``throttled`` when set."""
        state = self.states.get(endpoint_id)
        out: dict[str, Any] = {}
        if state is not None and state.reason:
            out["reason"] = state.reason
        if state is not None and state.throttled:
            out["throttled"] = state.throttled
        return out
