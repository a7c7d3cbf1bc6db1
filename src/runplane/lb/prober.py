"""Health checks of load-balancing workers, and the routes they open and close.

Every ``health_interval_starting_s`` the prober looks at the registry's workers: a worker of
a load-balancing endpoint gets a route once its provider reports its address; a retired one
loses its route. Each route is checked (``GET http://<its address>:<PORT_HEALTH>
<HEALTH_CHECK_PATH>``) every ``health_interval_starting_s`` until it is healthy, then every
``health_interval_s``; parked (frozen) workers are not checked. ``lb.health.judge`` says what
an answer means; this module tells the registry (seen; ready on the first 200, which the
controller counts as its cold start; UNHEALTHY, which the controller replaces) and wakes the
requests waiting for the endpoint when a worker turns ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import aiohttp

from runplane.broker.workers import WorkerRegistry
from runplane.clock import Clock
from runplane.config import LoadBalancerSettings
from runplane.lb.health import judge
from runplane.lb.pool import LoadBalancer, Route
from runplane.providers.base import ProcessInfo
from runplane.providers.http_ports import address_of
from runplane.schemas.endpoints import Endpoint

log = logging.getLogger("runplane.lb")


class HealthProber:
    """See the module docstring. ``endpoint_of(id)`` is the endpoint (None when deleted);
    ``processes()`` the provider's processes (``Provider.list``)."""

    def __init__(self, lb: LoadBalancer, registry: WorkerRegistry, clock: Clock,
                 settings: LoadBalancerSettings, endpoint_of: Callable[[str], Endpoint | None],
                 processes: Callable[[], Iterable[ProcessInfo]]) -> None:
        self._lb = lb
        self._registry = registry
        self._clock = clock
        self._cfg = settings
        self._endpoint_of = endpoint_of
        self._processes = processes
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()

    async def start(self) -> None:
        """Start checking (the server's start-up)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._cfg.health_timeout_s),
            connector=aiohttp.TCPConnector(limit=0, force_close=True), auto_decompress=False)
        self._task = asyncio.create_task(self._run(), name="runplane-lb-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._session is not None:
            await self._session.close()

    def kick(self) -> None:
        """Look again now (a worker was started or resumed)."""
        self._kick.set()

    async def _run(self) -> None:
        while True:
            try:
                self.sync()
                await self.probe_due()
            except Exception:  # one bad round must not stop the checks
                log.exception("load-balancer health round failed")
            try:
                await asyncio.wait_for(self._kick.wait(), self._cfg.health_interval_starting_s)
            except TimeoutError:
                pass
            self._kick.clear()

    def sync(self) -> None:
        """Routes for the load-balancing workers the provider has addresses for; none for
        the workers that are gone."""
        lb = self._lb
        live: set[str] = set()
        missing = []
        for w in self._registry.all():
            ep = self._endpoint_of(w.endpoint_id)
            if ep is None or not ep.load_balancer:
                continue
            if w.manual:  # routed only through its own tunnel (``api.lb.tunnel``)
                if lb.route_of(w.id) is not None:
                    live.add(w.id)
                continue
            live.add(w.id)
            route = lb.route_of(w.id)
            if route is not None and route.worker is not w:
                lb.untrack(w.id)  # its previous run's (started again under the same id)
                route = None
            if route is None:
                missing.append((w, ep))
        if missing:
            data = {i.id: i.data for i in self._processes()}
            for w, ep in missing:
                address = address_of(data.get(w.id) or {})
                if address is not None:
                    lb.track(ep.id, w, address, health_path(ep))
        for route in lb.all_routes():
            if route.worker.id not in live:
                lb.untrack(route.worker.id)
        lb.settle_statuses()
        for endpoint_id in lb.counted():
            if endpoint_id not in lb.routes and self._endpoint_of(endpoint_id) is None:
                lb.forget(endpoint_id)  # deleted

    async def probe_due(self) -> None:
        """Check every route that is due, concurrently."""
        now = self._clock.now()
        due = [r for r in self._lb.all_routes()
               if r.tunnel is None and not r.worker.parked and r.next_probe_at <= now]
        if due:
            await asyncio.gather(*(self._probe(r) for r in due))

    async def _probe(self, route: Route) -> None:
        assert self._session is not None
        status: int | None = None
        what = ""
        try:
            async with self._session.get(route.address.url(route.health_path, health=True),
                                         allow_redirects=False) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            what = f"did not answer ({type(err).__name__})"
        now = self._clock.now()
        if not record_health(self._registry, self._lb, route, status, now,
                             self._cfg.unhealthy_after, what):
            return  # retired (or started again under its id) while it was checked
        route.next_probe_at = now + (self._cfg.health_interval_s if route.probe.healthy
                                     else self._cfg.health_interval_starting_s)


def record_health(registry: WorkerRegistry, lb: LoadBalancer, route: Route, status: int | None,
                  now: float, unhealthy_after: int, what: str = "", *,
                  manual: bool = False) -> bool:
    """One health check's answer (``status``; None: no answer, ``what`` says why) applied to
    the route and its worker by RunPod's rules (``lb.health.judge``): seen, ready on the first
    200 (the controller's cold start), UNHEALTHY after ``unhealthy_after`` failures (the
    controller replaces it), and the endpoint's waiting requests woken when it turns ready.
    ``manual``: a manual worker reported it through its tunnel: it is alive whatever its app
    answered, and is not made UNHEALTHY (nothing would replace it; it only stays out of
    rotation until its app answers 200 again). False when the route's worker is no longer the
    registry's (retired, or started again under its id)."""
    w = route.worker
    if registry.get(w.id) is not w:
        return False
    was_ready = route.probe.healthy
    verdict = judge(route.probe, status, now, unhealthy_after, what)
    if status is not None or manual:
        registry.seen(w, now)
    if verdict.initializing:
        w.initializing_at = now
    if verdict.became_ready:
        registry.first_take(w)
    if verdict.unhealthy:
        log.warning("%sworker %s of %s: %s", "manual " if manual else "", w.id,
                    route.endpoint_id, verdict.why,
                    extra={"worker_id": w.id, "endpoint_id": route.endpoint_id})
        if not manual:
            registry.report_unhealthy(w, route.health_path, verdict.why)
    if route.probe.healthy and not was_ready:
        lb.wake(route.endpoint_id)
    return True


def health_path(ep: Endpoint) -> str:
    """The endpoint's ``HEALTH_CHECK_PATH`` (RunPod's default ``/ping``)."""
    path = (ep.worker_env.get("HEALTH_CHECK_PATH") or "/ping").strip() or "/ping"
    return path if path.startswith("/") else "/" + path
