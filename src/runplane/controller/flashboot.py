"""FlashBoot: idle workers are parked (frozen, keeping their memory and GPUs, not billed)
instead of stopped, and resumed in milliseconds when jobs come back (docs/flashboot.md).

The autoscaler decides what to park, resume and evict (pure, ``autoscaler.decide``) and the
scheduler which parked workers to evict for another endpoint's placement
(``scheduler.place_evicting``); this module carries those decisions out. Order of operations,
so that no job is ever written to a frozen worker:

- park: mark the worker parked in the worker registry first (refused while it holds a job or
  a job-take response is on its way; from then on no job is handed to it and its open
  long-poll is answered empty), close its billed interval, then freeze it (SIGSTOP to its
  process group, which holds the SDK's heartbeat process too; ``pause`` for a container).
- resume: thaw it first, then unmark it: a job-take it holds open gets the job at once, or
  its next one does. Its heartbeat gets a fresh grace period; a new billed interval opens.

Resuming does not wait for a tick: a job queued for an endpoint that has parked workers and no
worker ready to take it resumes one from the enqueue listener (``on_enqueue``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from runplane.clock import Clock
from runplane.controller.autoscaler import Decision
from runplane.controller.ports import JobQueues, UsageRecorder, WorkerRegistryPort
from runplane.controller.scheduler import Parked
from runplane.controller.state import Tracked
from runplane.providers.base import Provider
from runplane.worker_state import WorkerState

log = logging.getLogger("runplane.controller")

_READY = (WorkerState.IDLE, WorkerState.INITIALIZING)

# ``stop(worker, reason)``: the controller's stop (frees what it holds, tells the registry).
StopFn = Callable[[Tracked, str], None]
# ``scaled(endpoint_id, action, workers, reason)``: the observers' "scaled" event.
ScaledFn = Callable[[str, str, int, str], None]
# ``spawn(coroutine)``: run it as a background task the controller keeps a reference to.
SpawnFn = Callable[[Coroutine[Any, Any, None]], None]


class FlashBoot:
    """The controller's parked workers and the park/resume operations (see module doc)."""

    def __init__(self, *, registry: WorkerRegistryPort, queues: JobQueues, provider: Provider,
                 billing: UsageRecorder, clock: Clock, workers: Mapping[str, Tracked],
                 data_center_of: Callable[[str], str | None], stop: StopFn,
                 kick: Callable[[], None], scaled: ScaledFn, spawn: SpawnFn) -> None:
        """``workers``: the controller's live workers by id, read only here."""
        self._registry = registry
        self._queues = queues
        self._provider = provider
        self._billing = billing
        self._clock = clock
        self._workers = workers
        self._data_center_of = data_center_of
        self._stop = stop
        self._kick = kick
        self._scaled = scaled
        self._spawn = spawn
        # endpoint id -> worker id -> worker, in the order they were parked.
        self.parked: dict[str, dict[str, Tracked]] = {}

    # -- operations ---------------------------------------------------------------------

    def apply(self, endpoint_id: str, decision: Decision, now: float) -> None:
        """Carry out the autoscaler's ``resume`` and ``park`` answers for one endpoint."""
        for wid in decision.resume:
            w = self._workers.get(wid)
            if w is not None and self.resume(w, decision.reason):
                self._scaled(endpoint_id, "resume", 1, decision.reason)
        for wid, why in decision.park:
            w = self._workers.get(wid)
            if w is not None and self.park(w, why, now):
                self._scaled(endpoint_id, "park", 1, why)

    def park(self, w: Tracked, reason: str, now: float) -> bool:
        """Park ``w``; False when the registry refuses (a job is on its way to it)."""
        if w.parked_at is not None or w.stop_reason is not None:
            return False
        if not self._registry.set_parked(w.id, True):
            return False
        self.bill(w, now)
        w.billed_from = None
        w.parked_at = now
        self.parked.setdefault(w.endpoint_id, {})[w.id] = w

        def failed(err: BaseException) -> None:
            log.warning("could not park worker %s: %s", w.id, err,
                        extra={"worker_id": w.id, "endpoint_id": w.endpoint_id})
            self._stop(w, f"could not be parked: {err}")

        self._call(w, self._provider.park, None, failed)
        log.info("parked worker %s of %s: %s", w.id, w.endpoint_id, reason,
                 extra={"worker_id": w.id, "endpoint_id": w.endpoint_id})
        return True

    def resume(self, w: Tracked, why: str) -> bool:
        """Thaw ``w`` and hand it back to the broker; False when it is not parked."""
        parked = self.parked.get(w.endpoint_id)
        if w.parked_at is None or w.resuming or w.stop_reason is not None or not parked:
            return False
        parked.pop(w.id, None)
        if not parked:
            del self.parked[w.endpoint_id]
        w.resuming = True

        def thawed() -> None:
            w.resuming = False
            if w.stop_reason is not None:
                return
            now = self._clock.now()
            w.parked_at = None
            w.billed_from = now
            self._registry.set_parked(w.id, False)

        def failed(err: BaseException) -> None:
            w.resuming = False
            log.info("parked worker %s could not be resumed (%s): replaced", w.id, err,
                     extra={"worker_id": w.id, "endpoint_id": w.endpoint_id})
            self._stop(w, f"could not be resumed: {err}")
            self._kick()

        ok = self._call(w, self._provider.resume, thawed, failed)
        if ok is not False:
            log.info("resumed worker %s of %s: %s", w.id, w.endpoint_id, why,
                     extra={"worker_id": w.id, "endpoint_id": w.endpoint_id})
        return ok is not False

    def resume_worker(self, worker_id: str, why: str) -> bool:
        """Resume this parked worker now (a request pinned to it: ``strict-resume``); False
        when it is not parked here."""
        w = self._workers.get(worker_id)
        if w is None or not self.resume(w, why):
            return False
        self._scaled(w.endpoint_id, "resume", 1, why)
        return True

    def forget(self, w: Tracked) -> None:
        """``w`` is stopping or gone: never resume it."""
        parked = self.parked.get(w.endpoint_id)
        if parked is not None and parked.pop(w.id, None) is not None and not parked:
            del self.parked[w.endpoint_id]

    def bill(self, w: Tracked, end: float) -> None:
        """Close ``w``'s open billed interval at ``end`` (usage record, kind endpoint)."""
        start = w.billed_from
        if start is None:
            return
        self._billing.record_usage(
            user_id=w.user_id, kind="endpoint", resource_id=w.endpoint_id, pod_id=w.id,
            start_at=start, end_at=max(end, start), usd_per_hr=w.placement.cost_per_hr,
            gpu_type_id=w.placement.gpu_type_id,
            data_center_id=self._data_center_of(w.placement.machine_id))

    def _call(self, w: Tracked, fn: Callable[[str], None], then: Callable[[], None] | None,
              failed: Callable[[BaseException], None]) -> bool | None:
        """``fn(w.id)`` at once when the provider says it does not block (a signal), else in a
        thread (``podman pause``). Returns False when it failed at once, None when it runs in
        the background, True when done."""
        if not self._provider.park_blocks(w.id):
            try:
                fn(w.id)
            except Exception as err:  # noqa: BLE001 - the process died, the engine refused
                failed(err)
                return False
            if then is not None:
                then()
            return True

        async def run() -> None:
            try:
                await asyncio.to_thread(fn, w.id)
            except Exception as err:  # noqa: BLE001
                failed(err)
                return
            if then is not None:
                then()

        self._spawn(run())
        return None

    # -- the fast path and the scheduler's view -------------------------------------------

    def on_enqueue(self, endpoint_id: str) -> None:
        """A job was queued: resume a parked worker at once when no worker is ready to take
        it (O(1) for endpoints without parked workers)."""
        parked = self.parked.get(endpoint_id)
        if not parked:
            return
        m = self._queues.queue_metrics(endpoint_id)
        if not m.in_queue_normal:
            return  # lowPriority jobs never scale up
        ready = 0
        for rw in self._registry.all():
            if rw.endpoint_id == endpoint_id and rw.can_take() and not rw.jobs \
                    and rw.status in _READY:
                ready += 1
        ready += sum(1 for w in self._workers.values()
                     if w.resuming and w.endpoint_id == endpoint_id)
        if m.in_queue_normal <= ready:
            return
        for w in reversed(list(parked.values())):  # the most recently parked: the warmest
            if self.resume(w, "a job arrived and no worker was ready"):
                self._scaled(endpoint_id, "resume", 1,
                             "FlashBoot: a job arrived and no worker was ready")
                return

    def evictable(self, endpoint_id: str) -> list[Parked]:
        """Other endpoints' parked workers, whose GPUs and host share a placement may take."""
        return [Parked(w.id, w.placement, w.parked_at or 0.0)
                for eid, ws in self.parked.items() if eid != endpoint_id
                for w in ws.values() if w.stop_reason is None and w.parked_at is not None]
