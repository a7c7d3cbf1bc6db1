"""``strict-resume`` of a scaled-down worker: started again under its own id for a request
that names it (``X-Runpod-Worker-Id: strict-resume <id>``, docs/load-balancing.md).

What may be started again: a worker of a load-balancing endpoint that the autoscaler scaled
down, i.e. stopped for being idle (``Decision.scaled_down``: a surplus idle worker past its
idle timeout, or a parked one evicted for its age or for workersMax), or a parked worker
evicted for another endpoint's placement. Each gets a ``ScaledDown`` record when it is
stopped: its endpoint, the machine it ran on, when. Records live in the server's memory for
``keep_s`` (the controller's ``max_parked_s``: as long as FlashBoot would have kept it
parked) and go with their endpoint; a server restart forgets them. Nothing else ever gets
one: a worker that crashed, failed to start, turned unhealthy, was retired as outdated, was
stopped because its endpoint was deleted, or a manual worker, is not started again.

A request names a worker: ``request`` says whether it will be started (``may_restart``,
pure: a record of the request's own endpoint, not too old; so a worker id of another
endpoint is never started for it) and files a ``Pending`` restart. On each tick
``start_due`` moves every pending restart on (``next_step``, pure): wait for the old process
to be gone; then for the store to hold its exit (the worker registry writes it in the
background, and the new run's row takes the same id); then for room under workersMax (live
and parked workers count, as for any start: at workersMax the request waits within its
limit, as for a worker that is not ready); then start it through the controller's own start
(placement preferring its old machine, registration, launch, billing from the new start).
A pending restart counts as a starting worker for the autoscaler (so the request it waits
for starts no second worker), and is dropped when the request's wait is over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runplane.controller import autoscaler as asc
from runplane.controller.ports import WorkerRegistryPort
from runplane.controller.scheduler import MachineLoad
from runplane.controller.state import Blocked, Tracked
from runplane.schemas.endpoints import Endpoint
from runplane.worker_state import EXITED, INITIALIZING

log = logging.getLogger("runplane.controller")

# What ``next_step`` says to do with a pending restart.
EXPIRE = "expire"  # the request's wait is over: drop it
WAIT_EXIT = "wait-exit"  # the old process is still stopping
SETTLE = "settle"  # wait until the store holds the old run's exit
WAIT_ROOM = "wait-room"  # the endpoint is at workersMax
START = "start"

# ``start(endpoint, now, loads, worker_id, prefer_machine)``: the controller's start.
StartFn = Callable[[Endpoint, float, list[MachineLoad], str, str | None], Blocked | None]


@dataclass(frozen=True, slots=True)
class ScaledDown:
    """A worker the autoscaler stopped for being idle: may be started again until
    ``at + keep_s``."""

    worker_id: str
    endpoint_id: str
    machine_id: str
    at: float


@dataclass(slots=True)
class Pending:
    """A restart a request waits for, until ``until``."""

    record: ScaledDown
    until: float
    settled: bool = False  # the store holds the old run's exit
    settling: bool = False  # a wait for the store is under way


def may_restart(record: ScaledDown | None, endpoint_id: str, now: float,
                keep_s: float) -> str | None:
    """None when a request to ``endpoint_id`` may start the worker of ``record`` again;
    else why not."""
    if record is None:
        return "the worker was not scaled down for idleness"
    if record.endpoint_id != endpoint_id:
        return "the worker belongs to another endpoint"
    if now - record.at > keep_s:
        return f"the worker was scaled down more than {keep_s:g}s ago"
    return None


def next_step(p: Pending, *, old_present: bool, workers: int, workers_max: int,
              now: float) -> str:
    """What to do with a pending restart now: one of EXPIRE, WAIT_EXIT, SETTLE, WAIT_ROOM,
    START. ``old_present``: the old run is still registered (stopping); ``workers``: the
    endpoint's live and parked workers, not counting those leaving."""
    if now > p.until:
        return EXPIRE
    if old_present:
        return WAIT_EXIT
    if not p.settled:
        return SETTLE
    if workers >= workers_max:
        return WAIT_ROOM
    return START


class Revivals:
    """The records and pending restarts of the module docstring (one owner: the controller).

    ``start``: the controller's start of one worker under a given id; ``settle()``: True once
    every write queued to the store so far is committed (None: the store is written at once);
    ``tracked``: the controller's live workers; ``scaled(endpoint_id, action, n, why)``: the
    observers' event."""

    def __init__(self, *, registry: WorkerRegistryPort, tracked: Mapping[str, Tracked],
                 start: StartFn, settle: Callable[[], Awaitable[bool]] | None,
                 spawn: Callable[[Coroutine[Any, Any, None]], None], kick: Callable[[], None],
                 scaled: Callable[[str, str, int, str], None], keep_s: float) -> None:
        self._registry = registry
        self._tracked = tracked
        self._start = start
        self._settle = settle
        self._spawn = spawn
        self._kick = kick
        self._scaled = scaled
        self.keep_s = keep_s
        self.records: dict[str, ScaledDown] = {}
        self.pending: dict[str, Pending] = {}

    def scaled_down(self, worker_ids: Iterable[str], now: float) -> None:
        """These workers are being stopped for being idle: remember them."""
        for wid in worker_ids:
            w = self._tracked.get(wid)
            if w is not None:
                self.records[wid] = ScaledDown(wid, w.endpoint_id, w.placement.machine_id, now)

    def request(self, worker_id: str, endpoint_id: str, wait_s: float, now: float) -> bool:
        """A request to ``endpoint_id`` waits ``wait_s`` at most for ``worker_id`` (named by
        strict-resume, and gone or leaving): True when it is being started again."""
        if worker_id in self.pending:
            p = self.pending[worker_id]
            if p.record.endpoint_id != endpoint_id:
                return False
            p.until = max(p.until, now + wait_s)
            return True
        record = self.records.get(worker_id)
        why = may_restart(record, endpoint_id, now, self.keep_s)
        if why is not None or record is None:
            # (debug: any caller may name any id; a refusal is a 404, not news)
            log.debug("strict-resume of worker %s of %s refused: %s", worker_id, endpoint_id,
                      why, extra={"worker_id": worker_id, "endpoint_id": endpoint_id})
            return False
        self.pending[worker_id] = Pending(record, now + wait_s)
        self._kick()
        return True

    def capacity(self, endpoint_id: str, version: int) -> list[asc.WorkerSnapshot]:
        """The endpoint's pending restarts, as starting workers for the autoscaler."""
        if not self.pending:
            return []
        return [asc.WorkerSnapshot(wid, INITIALIZING, version=version)
                for wid, p in self.pending.items() if p.record.endpoint_id == endpoint_id]

    def start_due(self, endpoints: Mapping[str, Endpoint], now: float,
                  loads: list[MachineLoad]) -> None:
        """Once a tick: forget what can no longer be started, move pending restarts on."""
        if not self.records and not self.pending:
            return
        for wid, r in list(self.records.items()):
            ep = endpoints.get(r.endpoint_id)
            if ep is None or not ep.load_balancer or now - r.at > self.keep_s:
                del self.records[wid]
        for wid, p in list(self.pending.items()):
            ep = endpoints.get(p.record.endpoint_id)
            if ep is None or not ep.load_balancer:
                del self.pending[wid]
                continue
            step = next_step(p, old_present=self._present(wid),
                             workers=self._workers(ep.id), workers_max=ep.workersMax, now=now)
            if step == EXPIRE:
                del self.pending[wid]
            elif step == SETTLE and not p.settling:
                self._wait_for_store(p)
            elif step == START:
                self._start_one(ep, p, now, loads)

    # -- helpers --------------------------------------------------------------------------

    def _start_one(self, ep: Endpoint, p: Pending, now: float,
                   loads: list[MachineLoad]) -> None:
        wid = p.record.worker_id
        try:
            problem = self._start(ep, now, loads, wid, p.record.machine_id)
        except Exception:  # (the id taken after all, the store refused): not every tick again
            del self.pending[wid]
            log.exception("worker %s of %s could not be started again", wid, ep.id,
                          extra={"worker_id": wid, "endpoint_id": ep.id})
            return
        if problem is None:
            del self.pending[wid]
            self.records.pop(wid, None)  # this run is new: it is resumable only if scaled down
            why = "strict-resume: a request named this scaled-down worker"
            log.info("started worker %s of %s again: %s", wid, ep.id, why,
                     extra={"worker_id": wid, "endpoint_id": ep.id})
            self._scaled(ep.id, "up", 1, why)
        elif not problem.transient:
            del self.pending[wid]  # it cannot start (template gone, image refused): the
            log.warning("worker %s of %s cannot be started again: %s",  # request times out
                        wid, ep.id, problem.reason,
                        extra={"worker_id": wid, "endpoint_id": ep.id})

    def _wait_for_store(self, p: Pending) -> None:
        if self._settle is None:
            p.settled = True
            return
        settle = self._settle
        p.settling = True

        async def wait() -> None:
            try:
                p.settled = await settle()
            except Exception:  # the store refused even an empty write: try again next tick
                log.warning("waiting for the store before restarting worker %s failed",
                            p.record.worker_id, exc_info=True)
            finally:
                p.settling = False
                self._kick()

        self._spawn(wait())

    def _present(self, worker_id: str) -> bool:
        """The old run is still here (stopping, or not yet reaped)."""
        return worker_id in self._tracked or self._registry.get(worker_id) is not None

    def _workers(self, endpoint_id: str) -> int:
        """The endpoint's workers that count against workersMax: live and parked, not those
        leaving."""
        return sum(1 for w in self._registry.all() if w.endpoint_id == endpoint_id
                   and w.status != EXITED and w.desired_status != EXITED)
