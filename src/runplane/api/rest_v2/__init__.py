"""RunPod's REST v2 control plane (``/v2/<resource>``): FastAPI routers over the services.

``/v2/{endpointId}/...`` is the job API (``runplane.api.v2``) and ``/v2/serverless/...`` this
control plane: they share a prefix, told apart by the path's first segment, which is one of
``RESOURCES`` for this app (``runplane.api.app``). Endpoint ids are 14 random lowercase
letters and digits (``runplane.ids``), so none can be one of these names (they have a
hyphen or another length); ``tests/unit/test_v2_routing.py`` keeps it so.

Errors are problem+json (``problems``); answers carry RateLimit headers (``common``). The
spec the conformance tests hold these routes to is ``spec/runpod-openapi-v2.json``.
"""

from __future__ import annotations

from fastapi import FastAPI

from runplane import __version__
from runplane.api.http.auth import key_first
from runplane.api.http.body_limit import BodyLimitMiddleware
from runplane.api.rest_v2 import (
    account,
    billing,
    catalog,
    pods,
    serverless,
    storage,
    templates,
    unbuilt,
)
from runplane.api.rest_v2.common import RateLimitHeaders
from runplane.api.rest_v2.problems import PROBLEMS, install_problem_handlers
from runplane.catalog.pools import GpuPools
from runplane.services.billing.breakdowns import BillingBreakdowns
from runplane.system import Services

# The spec's resource names: the first path segment after /v2/ that this app serves.
RESOURCES = frozenset({"account", "pods", "clusters", "serverless", "templates",
                       "network-volumes", "registries", "catalog", "billing"})


def build_control_app(services: Services) -> FastAPI:
    """The REST v2 app over ``services`` (no lifespan: the main app's starts the parts)."""
    app = FastAPI(title="runplane REST v2", version=__version__, openapi_url=None,
                  docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.gpu_pools = GpuPools(services.catalog)
    app.state.billing_v2 = BillingBreakdowns(services.billing, services.clock)
    install_problem_handlers(app)
    app.add_middleware(RateLimitHeaders)
    # Every route needs a key: checked before a body is read (api/http/body_limit.py).
    app.add_middleware(BodyLimitMiddleware, limit_for=lambda _: services.settings.max_v1_body_bytes,
                       shape=PROBLEMS, authenticate=key_first(services))
    # Fixed paths before the {id} routes that would take them (registries/delegations).
    app.include_router(unbuilt.router)
    for router in (serverless.router, templates.catalog_router, templates.router,
                   storage.volumes, storage.registries, pods.router, account.router,
                   catalog.router, billing.router):
        app.include_router(router)
    return app
