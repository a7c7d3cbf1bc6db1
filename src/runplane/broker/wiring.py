"""Builds the broker and hooks it into the app's start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from runplane.broker.broker import Broker
from runplane.broker.endpoints import EndpointDirectory

log = logging.getLogger("runplane.broker")


def build(services: Any) -> Broker:
    """Attach ``broker`` and ``worker_registry`` to the services (idempotent)."""
    if getattr(services, "broker", None) is None:
        directory = EndpointDirectory(services.engine, services)
        services.broker = Broker(services.engine, services.settings, services.clock, directory)
        services.worker_registry = services.broker.workers
    return services.broker


def install(app: Any, services: Any) -> None:
    """Start the sweeps with the app; on shutdown answer every long-poll at once.

    uvicorn waits for open requests to finish *before* it runs the app's shutdown hooks, so a
    held job-take would delay a SIGTERM'd server by the whole hold time. The start-up hook
    therefore also chains a SIGTERM/SIGINT handler that releases the long-polls first.
    """
    broker = build(services)
    _fast_path(app)

    async def start() -> None:
        broker.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                previous = signal.getsignal(sig)
            except ValueError:
                continue

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(broker.begin_shutdown)
                if callable(previous):
                    previous(signum, frame)

            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread (e.g. in tests)
                pass

    async def stop() -> None:
        await broker.shutdown()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)


def _fast_path(app: Any) -> None:
    """Serve /v2 ahead of Starlette's middleware stack and router.

    /v2 is the hot path (run, job-take, job-done); its app already answers every error as JSON
    itself, so the only layer it needs is the body limit. Everything else goes through the
    normal stack. The mounted /v2 app stays as the fallback when this is not installed.
    """
    from runplane.api.body_limit import BodyLimitMiddleware
    from runplane.api.v2 import app as v2_app
    from runplane.server import _limit_for

    build_stack = app.build_middleware_stack
    v2 = BodyLimitMiddleware(v2_app, limit_for=_limit_for(app.state.services.settings))

    def build() -> Any:
        inner = build_stack()

        async def dispatch(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/v2/"):
                scope["app"] = app
                await v2(scope, receive, send)
            else:
                await inner(scope, receive, send)

        return dispatch

    app.build_middleware_stack = build
