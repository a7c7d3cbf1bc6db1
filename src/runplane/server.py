"""The composition root: builds every part of a server, in dependency order, and its app.

:func:`build_services` opens the store and constructs the parts bottom-up, each given only
what it uses (no part is handed the whole :class:`~runplane.system.Services`);
:func:`create_app` puts the HTTP surface over them with a lifespan that starts and stops them
(:func:`start`, :func:`stop`). ``runplane serve`` (``cli/serve.py``) adds what only a serving
process does: GC tuning and the signal handler.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from runplane.api.app import RunplaneApp, build_app
from runplane.api.v2.webhooks import WebhookBodies
from runplane.broker.broker import Broker
from runplane.broker.webhook_guard import networks
from runplane.broker.writer import Writer
from runplane.catalog.catalog import build_catalog
from runplane.clock import Clock, SystemClock
from runplane.config import Settings
from runplane.controller.allocations import Allocations
from runplane.controller.launcher import Launcher
from runplane.controller.reconcile import Controller
from runplane.controller.worker_pods import WorkerPods
from runplane.controller.worker_rows import WorkerRowCache, WorkerTable
from runplane.lb.demand import Demand
from runplane.lb.pool import LoadBalancer
from runplane.lb.prober import HealthProber
from runplane.observability.hub import Observability
from runplane.providers.make import make_provider
from runplane.services.availability import Availability
from runplane.services.batches import BatchService
from runplane.services.billing.records import BillingService
from runplane.services.endpoint_templates import EndpointTemplates
from runplane.services.endpoints import EndpointService
from runplane.services.host_access import LocalImagePolicy
from runplane.services.pods import PodService
from runplane.services.ratelimit import RateLimits
from runplane.services.references import References
from runplane.services.registry_auths import RegistryAuthService
from runplane.services.releases import ReleaseLog
from runplane.services.ssh_keys import SshKeyService
from runplane.services.templates import TemplateService
from runplane.services.users import UserService
from runplane.services.volumes import NetworkVolumeService
from runplane.store.db import SYNCHRONOUS, make_engine, upgrade
from runplane.system import Services

__all__ = ["Services", "build_services", "create_app", "drain", "start", "stop"]

log = logging.getLogger("runplane")


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Open the store (migrating it) and construct every part of the server."""
    clock = clock or SystemClock()
    private_data_dir(settings.data_dir)
    # "crash" leaves SQLite's pragma to RUNPLANE_SQLITE_SYNCHRONOUS (earlier releases' way).
    engine = make_engine(settings.resolved_database_url,
                         SYNCHRONOUS[settings.durability] if settings.durability != "crash"
                         else None)
    upgrade(engine)
    private_data_dir(settings.data_dir)  # the store's files, now that they exist
    catalog = build_catalog(
        # This host's data center (from [machine]) is one users may ask for.
        list(dict.fromkeys([*settings.extra_data_centers, settings.machine.data_center_id])),
        [(g.id, g.displayName, g.memoryInGb) for g in settings.extra_gpu_types],
    )
    # Rate limits and quotas, shared by every API.
    limits = RateLimits(settings.limits)
    # Control plane.
    users = UserService(engine, limits.failed_auth)
    billing = BillingService(engine, clock)
    registry_auths = RegistryAuthService(engine, clock)
    host_access = LocalImagePolicy(
        settings.security, lambda user_id: (users.find_user(user_id) or {}).get("name"))
    templates = TemplateService(engine, clock, registry_auths, host_access)
    volumes = NetworkVolumeService(
        engine, catalog, clock, settings.resolved_volume_root, billing,
        settings.network_volume_usd_per_gb_month,
    )
    endpoints = EndpointService(engine, catalog, clock, templates, volumes,
                                ReleaseLog(engine, clock))
    # Job plane: the broker rebuilds its state from the store here.
    broker = Broker(engine, settings.broker, clock, settings.resolved_public_url,
                    owner_of=endpoints.owner_of,
                    execution_timeout_ms=endpoints.execution_timeout_ms,
                    webhook_allow=networks(settings.security.webhook_allow_cidrs),
                    max_queued_jobs=settings.limits.max_queued_jobs_per_endpoint,
                    max_queued_bytes=settings.limits.max_queued_bytes_per_endpoint)
    # Settled jobs' webhooks: the api layer renders the body, the broker's sender posts it.
    broker.add_settled_listener(WebhookBodies(broker.webhooks))
    # Batch jobs run as the broker's jobs and hear of their ends from it.
    batches = BatchService(engine, broker, clock)
    # Worker plane: where processes run, what runs where, the one launch pipeline shared by
    # endpoint workers and pods, and the reconcile loop.
    provider = make_provider(settings, catalog)
    allocations = Allocations(provider, settings.machine.cpu_overcommit)
    launcher = Launcher(provider, catalog, volumes, registry_auths)
    pods = PodService(engine, clock, catalog, provider, templates, billing, launcher,
                      allocations, References(volumes, registry_auths, host_access))
    # Load-balancing endpoints' requests scale the controller as queued jobs do (lb.demand).
    # (The controller is built next; a strict-resume request only comes once it runs: it
    # resumes a parked worker, or starts a scaled-down one again, controller/revive.py.)
    lb = LoadBalancer(
        broker.workers, clock,
        resume=lambda worker_id: controller.flashboot.resume_worker(
            worker_id, "a request pinned to it (strict-resume)"),
        restart=lambda worker_id, endpoint_id, wait_s: controller.revivals.request(
            worker_id, endpoint_id, wait_s, clock.now()))
    controller = Controller(
        settings=settings.controller, clock=clock, provider=provider, endpoints=endpoints,
        templates=templates, queues=Demand(broker, lb), registry=broker.workers,
        billing=billing, launcher=launcher, allocations=allocations, rows=WorkerTable(engine),
        pods=pods, settle=_settled(broker.writer))
    worker_pods = WorkerPods(broker.workers, WorkerRowCache(engine), provider, endpoints.get,
                             controller.progress_of)
    # Observability hears of every job and every controller action.
    observability = Observability(clock, endpoints, broker, broker.workers, controller)
    broker.add_job_listener(observability.on_job)
    controller.add_observer(observability)
    lb.add_request_listener(observability.on_lb_request)
    return Services(
        settings=settings, engine=engine, clock=clock, catalog=catalog,
        users=users, registry_auths=registry_auths, templates=templates, volumes=volumes,
        endpoints=endpoints, billing=billing, pods=pods,
        ssh_keys=SshKeyService(engine, clock),
        endpoint_templates=EndpointTemplates(templates, endpoints),
        availability=Availability(allocations.loads),
        broker=broker, handoff=broker.handoff, workers=broker.workers, batches=batches,
        provider=provider, controller=controller, worker_pods=worker_pods,
        observability=observability, limits=limits, lb=lb,
        lb_health=HealthProber(lb, broker.workers, clock, settings.lb, endpoints.get,
                               provider.list),
    )


def private_data_dir(data_dir: Path) -> None:
    """The data directory 0700 and the SQLite store's files 0600: they hold registry
    passwords and every job's input and output (``runplane serve`` also sets umask 077, so
    logs and everything else it writes there are the server user's only)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    for path in data_dir.glob("runplane.db*"):
        os.chmod(path, 0o600)


def _settled(writer: Writer) -> Callable[[], Awaitable[bool]]:
    """``settle()`` for the controller: True once every write queued to the store so far is
    committed (an empty write goes through the writer's queue behind them)."""

    async def settle() -> bool:
        await writer.write()
        return not writer.pending

    return settle


async def start(services: Services) -> None:
    """Start the sweeps and, unless it is turned off, the reconcile loop (after taking over
    the workers a previous run left running)."""
    services.broker.start()
    services.controller.take_over_previous_run()
    await services.lb_health.start()
    if services.settings.controller.enabled:
        await services.controller.start()


async def stop(services: Services, keep_workers: bool = False) -> None:
    """Stop the controller, the pods and (unless ``keep_workers``: they outlive the server,
    its next run takes them over) the workers, the provider, then the broker (answering
    every long-poll at once and flushing its writes)."""
    await services.lb_health.stop()
    await services.controller.shutdown(stop_workers=not keep_workers)
    await services.provider.close()
    await services.broker.shutdown()


async def drain(services: Services, timeout_s: float) -> None:
    """A warm shutdown, while the server still listens: no job accepted or handed out any
    more, running jobs finish (their results taken) for up to ``timeout_s``, then every
    worker is stopped (the results of jobs that end meanwhile are still taken)."""
    services.broker.drain()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while services.broker.running() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    left = services.broker.running()
    if left:
        log.warning("warm shutdown: %d jobs still running after %.0f s; stopping their "
                    "workers (the jobs are retried on the next run)", left, timeout_s)
    await services.controller.shutdown(stop_workers=True)
    await asyncio.get_running_loop().run_in_executor(None, services.broker.writer.flush)


def create_app(services: Services, keep_workers: bool = False) -> RunplaneApp:
    """The ASGI application over ``services``; its lifespan runs :func:`start` and
    :func:`stop` (``keep_workers``: see there)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await start(services)
        try:
            yield
        finally:
            await app.lb_proxy.close()
            await stop(services, keep_workers)

    app = build_app(services, lifespan)
    return app
