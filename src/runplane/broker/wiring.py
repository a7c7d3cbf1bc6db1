"""Builds the broker and hooks it into the app's start-up and shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

from runplane.broker.broker import Broker
from runplane.broker.endpoints import EndpointDirectory

log = logging.getLogger("runplane.broker")

# Young-generation threshold of the cyclic garbage collector once the server has started (the
# interpreter's default is 700 allocations); see tune_gc.
GC_THRESHOLD0 = 50_000
_gc_tuned = False


def tune_gc() -> None:
    """Once per process, at start-up: collect, then freeze what start-up built (modules, the
    app, caches: ~140,000 objects) so no later collection walks it again, and collect the
    young generation less often.

    Measured on the jobs benchmark before this: full collections walked ~200,000 objects
    (start-up plus the jobs kept in memory) every ~2,500 jobs, ~240 ms each on the event loop,
    and the collector took ~35% of the server's CPU. Request handling makes few reference
    cycles (futures, tasks), so rarer young collections cost little memory.
    """
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    _, threshold1, threshold2 = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD0, threshold1, threshold2)


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
        tune_gc()
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
    """Serve /v2 ahead of FastAPI, Starlette's middleware stack and router.

    /v2 is the hot path (run, job-take, job-done); its app answers every error as JSON itself
    and enforces the body limits itself, so it needs no layer in front of it. FastAPI's own
    ``__call__`` costs ~10% of a /v2 request (its telemetry hook looks up environment
    variables on every call), so the app's class is given a ``__call__`` that routes /v2
    first (ASGI servers call ``type(app).__call__``); everything else goes through FastAPI
    as before. The mounted /v2 app stays as the fallback when this is not installed.
    """
    from runplane.api.v2 import V2App
    from runplane.server import _limit_for

    v2 = V2App(limit_for=_limit_for(app.state.services.settings))
    base = type(app)
    if getattr(base, "_runplane_v2_first", False):
        app._runplane_v2 = v2
        return

    class V2First(base):  # type: ignore[misc, valid-type]
        _runplane_v2_first = True

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/v2/"):
                scope["app"] = self
                await self._runplane_v2(scope, receive, send)
            else:
                await base.__call__(self, scope, receive, send)

    V2First.__name__ = V2First.__qualname__ = base.__name__
    app._runplane_v2 = v2
    app.__class__ = V2First
