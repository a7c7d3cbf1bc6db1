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
