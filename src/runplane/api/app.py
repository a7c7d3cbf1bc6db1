"""The ASGI application: the lean /v2 job API and the FastAPI app, side by side.

``/v2/{endpointId}/...`` requests go straight to :class:`~runplane.api.v2.V2App` (the hot
path: run, job-take, job-done, which FastAPI's routing, models and middleware would cost as
much CPU as the broker itself); ``/v2/<resource>/...`` (``serverless``, ``pods``... REST v2's
resource names) to the REST v2 control plane (``runplane.api.rest_v2``); ``/lb/{id}/...``
(and ``{id}.<base_domain>`` by Host) to the load-balancing proxy (``api.lb.proxy``,
``api.lb.ws``); everything else, the lifespan included, goes to the FastAPI app that
serves /v1, /metrics, /healthz and the dashboard. Both enforce the same body limits and
answer errors in the same JSON shape (``runplane.api.http.errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from runplane import __version__
from runplane.api.http.auth import key_first
from runplane.api.http.body_limit import BodyLimitMiddleware
from runplane.api.http.errors import install_error_handlers
from runplane.api.http.runpod_json import RUNPOD_JSON
from runplane.api.lb.proxy import LbProxy
from runplane.api.lb.tunnel import is_tunnel_path, tunnel_route
from runplane.api.lb.ws import websocket
from runplane.api.rest_v2 import RESOURCES, build_control_app
from runplane.api.routes import include_routers
from runplane.api.shapes.workers import WorkerShapes
from runplane.api.v2 import V2App
from runplane.config import Settings
from runplane.lb.urls import PATH_PREFIX, endpoint_of_host
from runplane.system import Services

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class RunplaneApp:
    """Routes ``/v2/`` to the job API and the rest to FastAPI (see the module docstring)."""

    def __init__(self, services: Services, rest: FastAPI, v2: V2App, control: FastAPI) -> None:
        self.services = services
        self.rest = rest
        self.v2 = v2
        self.control = control
        self.lb_proxy = LbProxy(services)
        self.lb_domain = services.settings.lb.base_domain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            # Load-balancing endpoints by Host ({id}.<base_domain>) only when the operator
            # set a domain; /lb/{id}/... after the /v2 hot path.
            if self.lb_domain and await self._by_host(scope, receive, send):
                return
            path: str = scope["path"]
            if path.startswith("/v2/"):
                # /v2/<resource>/... is REST v2's control plane, every other /v2/<id>/... the
                # job API: one slice and a set lookup on the hot path.
                end = path.find("/", 4)
                if (path[4:end] if end > 0 else path[4:]) in RESOURCES:
                    await self.control(scope, receive, send)
                else:
                    await self.v2(scope, receive, send)
                return
            if path.startswith(PATH_PREFIX):
                await self._lb(scope, receive, send, *split_lb_path(scope))
                return
        elif kind == "websocket":
            if self.lb_domain and await self._by_host(scope, receive, send):
                return
            if is_tunnel_path(scope["path"]):  # a manual load-balancing worker dials in
                await tunnel_route(self.services, scope, receive, send)
                return
            if scope["path"].startswith(PATH_PREFIX):
                await self._lb(scope, receive, send, *split_lb_path(scope))
                return
        await self.rest(scope, receive, send)

    async def _by_host(self, scope: Scope, receive: Receive, send: Send) -> bool:
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        endpoint_id = endpoint_of_host(host.decode("latin-1"), self.lb_domain)
        if endpoint_id is None:
            return False
        await self._lb(scope, receive, send, endpoint_id, _raw_path(scope))
        return True

    async def _lb(self, scope: Scope, receive: Receive, send: Send, endpoint_id: str,
                  path: str) -> None:
        if scope["type"] == "http":
            await self.lb_proxy.http(scope, receive, send, endpoint_id, path)
        else:
            await websocket(self.lb_proxy, scope, receive, send, endpoint_id, path)


def _raw_path(scope: Scope) -> str:
    """The path as the client sent it (percent-encoding kept), for passing on."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else scope["path"]


def split_lb_path(scope: Scope) -> tuple[str, str]:
    """``/lb/{id}/rest`` -> (``id``, ``/rest``); ``/lb/{id}`` -> (``id``, ``/``)."""
    rest = _raw_path(scope)[len(PATH_PREFIX):]
    endpoint_id, slash, tail = rest.partition("/")
    return endpoint_id, slash + tail if slash else "/"


def build_app(services: Services, lifespan: Lifespan) -> RunplaneApp:
    """The whole HTTP surface over ``services``; ``lifespan`` starts and stops them."""
    limit = limit_for(services.settings)
    rest = FastAPI(
        title="runplane",
        version=__version__,
        description="Self-hosted serverless GPU platform speaking RunPod's REST v1 and job APIs.",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # api/v1/docs_page.py serves /v1/docs, every file from here
        redoc_url=None,
        lifespan=lifespan,
    )
    rest.state.services = services  # what the /v1 routers' dependencies read
    rest.state.worker_shapes = WorkerShapes(services.catalog)
    install_error_handlers(rest, RUNPOD_JSON)
    # Every /v1 route needs a key: checked before a body is read (api/http/body_limit.py).
    rest.add_middleware(BodyLimitMiddleware, limit_for=limit,
                        authenticate=key_first(services, "/v1/"))
    include_routers(rest)
    return RunplaneApp(services, rest, V2App(services, limit), build_control_app(services))


def limit_for(settings: Settings) -> Callable[[str], int]:
    """The largest request body of a path, in bytes (413 above it)."""
    run, runsync = settings.max_run_body_bytes, settings.max_runsync_body_bytes

    def limit(path: str) -> int:
        if path.startswith("/v2/"):
            if path.endswith("/runsync"):
                return runsync
            # /run and stream chunks: RunPod's 10 MB; a worker's result may be as large as
            # the /runsync input it answers.
            return max(run, runsync) if "/job-done/" in path else run
        return settings.max_v1_body_bytes

    return limit
