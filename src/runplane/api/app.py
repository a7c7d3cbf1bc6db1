"""The ASGI application: the lean /v2 job API and the FastAPI app, side by side.

``/v2/{endpointId}/...`` requests go straight to :class:`~runplane.api.v2.V2App` (the hot
path: run, job-take, job-done, which FastAPI's routing, models and middleware would cost as
much CPU as the broker itself); ``/v2/<resource>/...`` (``serverless``, ``pods``... REST v2's
resource names) to the REST v2 control plane (``runplane.api.rest_v2``); everything else, the lifespan included, goes to the FastAPI app that
serves /v1, /metrics, /healthz and the dashboard. Both enforce the same body limits and
answer errors in the same JSON shape (``runplane.api.errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from runplane import __version__
from runplane.api.body_limit import BodyLimitMiddleware
from runplane.api.errors import install_error_handlers
from runplane.api.rest_v2 import RESOURCES, build_control_app
from runplane.api.routes import include_routers
from runplane.api.v2 import V2App
from runplane.config import Settings
from runplane.system import Services

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class RunplaneApp:
    """Routes ``/v2/`` to the job API and the rest to FastAPI (see the module docstring)."""

    def __init__(self, services: Services, rest: FastAPI, v2: V2App, control: FastAPI) -> None:
        self.services = services
        self.rest = rest
        self.v2 = v2
        self.control = control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
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
        await self.rest(scope, receive, send)


def build_app(services: Services, lifespan: Lifespan) -> RunplaneApp:
    """The whole HTTP surface over ``services``; ``lifespan`` starts and stops them."""
    limit = limit_for(services.settings)
    rest = FastAPI(
        title="runplane",
        version=__version__,
        description="Self-hosted serverless GPU platform speaking RunPod's REST v1 and job APIs.",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # api/docs_page.py serves /v1/docs, its scripts pinned
        redoc_url=None,
        lifespan=lifespan,
    )
    rest.state.services = services  # what the /v1 routers' dependencies read
    install_error_handlers(rest)
    rest.add_middleware(BodyLimitMiddleware, limit_for=limit)
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
