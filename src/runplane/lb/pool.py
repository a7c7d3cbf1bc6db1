"""The load balancer's state: each load-balancing endpoint's routable workers, their requests
in flight, and the requests waiting for a worker.

A worker gets a ``Route`` once the prober (``lb.prober``) knows its address (from the
provider: the only addresses ever called). A request ``acquire``s a route (the balancer's
choice, ``lb.balance``), waiting while none is ready: the first wait of an endpoint tells the
enqueue listeners (the controller ticks at once, FlashBoot resumes a parked worker), so a
request to an endpoint without workers starts one (scale from zero). ``release`` ends it. The
requests in flight are kept on the registry's worker (``Worker.requests``: the controller
counts them as its load, and idle timeouts run from a worker's last request); the registry's
RUNNING / IDLE status follows on the prober's round (``settle_statuses``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from runplane.broker.models import QueueMetrics, Worker
from runplane.broker.workers import WorkerRegistry
from runplane.clock import Clock
from runplane.lb.affinity import Affinity
from runplane.lb.balance import OUT, PARKED, READY, STARTING, Candidate, choose
from runplane.lb.health import ProbeState
from runplane.lb.tunnel import TunnelLink
from runplane.providers.http_ports import HttpAddress
from runplane.worker_state import EXITED, RUNNING, UNHEALTHY

log = logging.getLogger("runplane.lb")

RequestListener = Callable[[str, float, float, float, bool], None]


class NoWorkers(Exception):
    """No worker became ready within the wait (RunPod's 503 ``no workers available``)."""


class WorkerGone(Exception):
    """A strict affinity names a worker the endpoint does not have (any more)."""


class WorkerTimeout(Exception):
    """The strictly named worker did not become ready within the wait."""


@dataclass(eq=False, slots=True)
class Route:
    """One load-balancing worker: where it listens, and what its health checks showed."""

    endpoint_id: str
    worker: Worker
    address: HttpAddress
    health_path: str = "/ping"
    probe: ProbeState = field(default_factory=ProbeState)
    next_probe_at: float = 0.0
    # A manual worker's tunnel (``lb.tunnel``): its requests go through it, never to
    # ``address``, and its health is what it reports there, not probed.
    tunnel: TunnelLink | None = None

    @property
    def state(self) -> str:
        """READY, STARTING, PARKED or OUT (``lb.balance``)."""
        w = self.worker
        if w.status in (EXITED, UNHEALTHY) or w.desired_status == EXITED:
            return OUT
        if w.parked:
            return PARKED
        return READY if self.probe.healthy else STARTING


@dataclass(eq=False, slots=True)
class _Waiter:
    since: float
    future: asyncio.Future[None]


class LoadBalancer:
    """See the module docstring. ``resume(worker_id)`` wakes a parked worker (FlashBoot's;
    True when it is being resumed); ``restart(worker_id, endpoint_id, wait_s)`` starts a
    scaled-down worker of that endpoint again under its id, for a request that waits up to
    ``wait_s`` for it (``controller/revive.py``; True when it will be)."""

    def __init__(self, registry: WorkerRegistry, clock: Clock,
                 resume: Callable[[str], bool],
                 restart: Callable[[str, str, float], bool]) -> None:
        self._registry = registry
        self._clock = clock
        self.routes: dict[str, dict[str, Route]] = {}
        self._by_worker: dict[str, Route] = {}
        self._waiting: dict[str, list[_Waiter]] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._request_listeners: list[RequestListener] = []
        self._counts: dict[str, list[int]] = {}  # endpoint -> [completed, failed]
        self._turn = 0
        self._resume = resume
        self._restart = restart
        registry.add_listener(self._on_worker_event)

    # -- requests ---------------------------------------------------------------------

    async def acquire(self, endpoint_id: str, affinity: Affinity | None,
                      wait_s: float) -> Route:
        """The route that takes one request, marked in flight; waits up to ``wait_s`` for
        one to be ready. Raises ``NoWorkers``, ``WorkerTimeout`` or ``WorkerGone``."""
        route = self.pick(endpoint_id, affinity)
        if route is not None:
            return route
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        resumed = restarting = False
        while True:
            route = self.pick(endpoint_id, affinity)
            if route is not None:
                return route
            choice = choose(self._candidates(endpoint_id), affinity)
            if choice.gone and not self._starting(endpoint_id, affinity):
                if choice.restart and not restarting:  # strict-resume of a scaled-down one
                    restarting = self._restart(choice.restart, endpoint_id,
                                               max(0.0, deadline - loop.time()))
                if not restarting:
                    raise WorkerGone(affinity.worker_id if affinity else "")
            if choice.resume and not resumed:
                resumed = True
                self._resume(choice.resume)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WorkerTimeout() if affinity is not None and affinity.strict else NoWorkers()
            await self._wait(endpoint_id, remaining)

    def release(self, route: Route, ok: bool, arrived_at: float | None = None,
                started_at: float | None = None) -> None:
        """One request of ``route`` ended (``ok``: it got a response from the worker; it
        arrived at ``arrived_at`` and went to the worker at ``started_at``, clock times)."""
        if arrived_at is not None and started_at is not None:
            now = self._clock.now()
            for listener in self._request_listeners:
                try:
                    listener(route.endpoint_id, arrived_at, started_at, now, ok)
                except Exception:  # observing must not fail the request
                    log.exception("request listener failed")
        w = route.worker
        w.requests -= 1
        if w.requests <= 0:
            w.requests = 0
            w.idle_since = self._clock.now()
        counts = self._counts.setdefault(route.endpoint_id, [0, 0])
        counts[0 if ok else 1] += 1

    def pick(self, endpoint_id: str, affinity: Affinity | None) -> Route | None:
        """A ready route for one request now, marked in flight (no waiting); None when the
        request would have to wait."""
        routes = self.routes.get(endpoint_id)
        if not routes:
            return None
        if len(routes) == 1 and affinity is None:  # the common small case, without lists
            route = next(iter(routes.values()))
            if route.state != READY:
                return None
        else:
            choice = choose(self._candidates(endpoint_id), affinity, self._turn)
            if choice.worker_id is None:
                return None
            self._turn += 1
            route = routes[choice.worker_id]
        w = route.worker
        w.requests += 1
        if w.requests == 1:
            w.idle_since = None
        return route

    def settle_statuses(self) -> None:
        """Tell the registry which workers are busy (RUNNING) or idle now. Called by the
        prober on its round rather than per request: a worker serving one request at a time
        would otherwise flip, and write, its status twice a request."""
        registry = self._registry
        for route in self._by_worker.values():
            w = route.worker
            if (w.requests > 0) != (w.status == RUNNING):
                registry.holds_changed(w)

    def _starting(self, endpoint_id: str, affinity: Affinity | None) -> bool:
        """The named worker was just started: the registry has it, the prober not yet (or
        only its previous run, when it was started again under the same id)."""
        if affinity is None:
            return False
        w = self._registry.get(affinity.worker_id)
        if w is None or w.endpoint_id != endpoint_id or not w.can_take():
            return False
        route = self._by_worker.get(w.id)
        return route is None or route.worker is not w

    def _candidates(self, endpoint_id: str) -> list[Candidate]:
        return [Candidate(r.worker.id, r.state, r.worker.requests)
                for r in self.routes.get(endpoint_id, {}).values()]

    async def _wait(self, endpoint_id: str, timeout: float) -> None:
        waiters = self._waiting.setdefault(endpoint_id, [])
        waiter = _Waiter(self._clock.now(), asyncio.get_running_loop().create_future())
        waiters.append(waiter)
        for listener in self._listeners:  # a request waits: scale up (from zero) now
            try:
                listener(endpoint_id)
            except Exception:  # a listener must not fail the request
                log.exception("enqueue listener failed")
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            pass
        finally:
            waiters.remove(waiter)
            if not waiters:
                self._waiting.pop(endpoint_id, None)

    def wake(self, endpoint_id: str) -> None:
        """A worker of the endpoint may be ready now: its waiting requests look again."""
        for waiter in self._waiting.get(endpoint_id, ()):
            if not waiter.future.done():
                waiter.future.set_result(None)

    # -- workers (the prober's) -------------------------------------------------------------

    def track(self, endpoint_id: str, worker: Worker, address: HttpAddress,
              health_path: str, tunnel: TunnelLink | None = None) -> Route:
        """Start routing to ``worker`` at ``address`` (or through ``tunnel``) once its
        health checks say so."""
        route = Route(endpoint_id, worker, address, health_path, tunnel=tunnel)
        self.routes.setdefault(endpoint_id, {})[worker.id] = route
        self._by_worker[worker.id] = route
        return route

    def untrack(self, worker_id: str) -> None:
        """The worker is gone: no request goes to it any more."""
        route = self._by_worker.pop(worker_id, None)
        if route is None:
            return
        routes = self.routes.get(route.endpoint_id)
        if routes is not None:
            routes.pop(worker_id, None)
            if not routes:
                del self.routes[route.endpoint_id]

    def route_of(self, worker_id: str) -> Route | None:
        return self._by_worker.get(worker_id)

    def all_routes(self) -> list[Route]:
        return list(self._by_worker.values())

    def _on_worker_event(self, worker_id: str, endpoint_id: str, event: str, _reason: str) -> None:
        if event == "unparked" and worker_id in self._by_worker:
            self.wake(endpoint_id)

    # -- the controller's view (``lb.demand``) ----------------------------------------------

    def add_request_listener(self, callback: RequestListener) -> None:
        """``callback(endpoint_id, arrived_at, started_at, ended_at, ok)`` after each request
        a worker took (synchronously: O(1), no I/O)."""
        self._request_listeners.append(callback)

    def add_enqueue_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(endpoint_id)`` whenever a request starts waiting for a worker."""
        self._listeners.append(callback)

    def metrics(self, endpoint_id: str) -> QueueMetrics | None:
        """Waiting and in-flight requests as queue metrics; None for an endpoint with
        neither workers nor waiting requests here (a queue endpoint)."""
        routes = self.routes.get(endpoint_id)
        waiters = self._waiting.get(endpoint_id)
        if not routes and not waiters:
            counts = self._counts.get(endpoint_id)
            if counts is None:
                return None
        in_flight = sum(r.worker.requests for r in routes.values()) if routes else 0
        waiting = len(waiters) if waiters else 0
        completed, failed = self._counts.get(endpoint_id, (0, 0))
        return QueueMetrics(waiting, waiting, in_flight,
                            waiters[0].since if waiters else None, completed, failed, 0)

    def queued_at(self, endpoint_id: str) -> list[float]:
        """When each waiting request arrived, oldest first."""
        return [w.since for w in self._waiting.get(endpoint_id, ())]

    def counted(self) -> list[str]:
        """The endpoints with request counters."""
        return list(self._counts)

    def forget(self, endpoint_id: str) -> None:
        """The endpoint is gone: drop its counters."""
        self._counts.pop(endpoint_id, None)


__all__ = ["READY", "STARTING", "LoadBalancer", "NoWorkers", "Route", "WorkerGone",
           "WorkerTimeout"]
