"""The server: builds the services and the FastAPI application around them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from sqlalchemy import Engine

from runplane import __version__
from runplane.api.body_limit import BodyLimitMiddleware
from runplane.api.errors import install_error_handlers
from runplane.catalog.catalog import Catalog, build_catalog
from runplane.clock import Clock, SystemClock
from runplane.config import Settings
from runplane.services.billing import BillingService
from runplane.services.endpoints import EndpointService
from runplane.services.registry_auths import RegistryAuthService
from runplane.services.templates import TemplateService
from runplane.services.users import UserService
from runplane.services.volumes import NetworkVolumeService
from runplane.store.db import make_engine, upgrade

if TYPE_CHECKING:
    from runplane.broker.broker import Broker
    from runplane.broker.workers import WorkerRegistry
    from runplane.controller.reconcile import Controller
    from runplane.observability.wiring import Observability
    from runplane.providers.base import Provider
    from runplane.services.pods import PodService

log = logging.getLogger("runplane")


@dataclass
class Services:
    """Everything a request handler may need, built once per server."""

    settings: Settings
    engine: Engine
    catalog: Catalog
    clock: Clock
    users: UserService
    # Control plane (/v1 templates, endpoints, network volumes, registry auths, billing).
    registry_auths: RegistryAuthService
    templates: TemplateService
    volumes: NetworkVolumeService
    endpoints: EndpointService
    billing: BillingService
    # Values handed from start-up code to the app (e.g. the bootstrap key for the demo line).
    extra: dict[str, Any] = field(default_factory=dict)
    # The parts below are attached by create_app's install steps, in this order; each
    # module's wiring.py owns its part.
    # Job broker (runplane.broker.wiring): queues, long-polls, workers of the job protocol.
    broker: Broker | None = None
    worker_registry: WorkerRegistry | None = None
    # Controller (runplane.controller.wiring): the provider, pods and the reconcile loop.
    provider: Provider | None = None
    pods: PodService | None = None
    controller: Controller | None = None
    # Metrics and per-endpoint stats (runplane.observability.wiring), fed by the two above.
    observability: Observability | None = None


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Open the store (migrating it) and construct the services."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    catalog = build_catalog(
        # This host's data center (from [machine]) is one users may ask for.
        list(dict.fromkeys([*settings.extra_data_centers, settings.machine.data_center_id])),
        [(g.id, g.displayName, g.memoryInGb) for g in settings.extra_gpu_types],
    )
    clock = clock or SystemClock()
    billing = BillingService(engine, clock)
    registry_auths = RegistryAuthService(engine, clock)
    templates = TemplateService(engine, clock, registry_auths)
    volumes = NetworkVolumeService(
        engine, catalog, clock, settings.resolved_volume_root, billing,
        settings.network_volume_usd_per_gb_month,
    )
    return Services(
        settings=settings,
        engine=engine,
        catalog=catalog,
        clock=clock,
        users=UserService(engine),
        registry_auths=registry_auths,
        templates=templates,
        volumes=volumes,
        endpoints=EndpointService(engine, catalog, clock, templates, volumes),
        billing=billing,
    )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The ASGI application: /v1 control plane, /v2 job API, worker routes."""
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in app.state.startup_hooks:
            await hook()
        try:
            yield
        finally:
            for hook in reversed(app.state.shutdown_hooks):
                await hook()

    app = FastAPI(
        title="runplane",
        version=__version__,
        description="Self-hosted serverless GPU platform speaking RunPod's REST v1 and job APIs.",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit_for=_limit_for(settings))

    from runplane.api.routes import include_routers

    include_routers(app)

    from runplane.broker.wiring import install as install_broker

    install_broker(app, services)

    from runplane.controller.wiring import install as install_controller

    install_controller(app, services)

    from runplane.observability.wiring import install as install_observability

    install_observability(app, services)
    return app


def _limit_for(settings: Settings):  # type: ignore[no-untyped-def]
    def limit(path: str) -> int:
        if path.startswith("/v2/"):
            if path.endswith("/runsync"):
                return settings.max_runsync_body_bytes
            # /run, worker results and stream chunks: RunPod's 10 MB.
            return max(settings.max_run_body_bytes, settings.max_runsync_body_bytes)  \
                if "/job-done/" in path else settings.max_run_body_bytes
        return settings.max_v1_body_bytes

    return limit
