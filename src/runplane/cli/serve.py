"""``runplane serve``: run the server in this process, tuned for serving.

What only a serving process does lives here, not in the composition root: the garbage
collector's tuning, a SIGTERM/SIGINT handler that answers every held long-poll first (or,
with ``[controller] shutdown = "drain"``, runs the warm shutdown while still listening),
the deadlines and caps of connections, the proxies whose forwarded addresses are believed
and the open-files limit (``cli/connections.py``).
"""

from __future__ import annotations

import asyncio
import gc
import logging.config
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from runplane.cli.connections import http_options, raise_open_files_limit
from runplane.cli.options import ConfigFile, DataDir
from runplane.config import load_settings
from runplane.observability.logging import logging_config
from runplane.server import build_services, create_app, drain
from runplane.services.demo import curl_line, ensure_demo
from runplane.simulate.budget import cancel_all
from runplane.system import Services

console = Console(stderr=True)

# Young-generation threshold of the cyclic garbage collector once the server has started (the
# interpreter's default is 700 allocations); see tune_gc.
GC_THRESHOLD0 = 50_000


def tune_gc() -> None:
    """At start-up: collect, then freeze what start-up built (modules, the app, caches:
    ~140,000 objects) so no later collection walks it again, and collect the young generation
    less often.

    Measured on the jobs benchmark before this: full collections walked ~200,000 objects
    (start-up plus the jobs kept in memory) every ~2,500 jobs, ~240 ms each on the event loop,
    and the collector took ~35% of the server's CPU. Request handling makes few reference
    cycles (futures, tasks), so rarer young collections cost little memory.
    """
    gc.collect()
    gc.freeze()
    _, threshold1, threshold2 = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD0, threshold1, threshold2)


def release_long_polls_on_signal(release: Callable[[], None],
                                 drain: Callable[[], Awaitable[None]] | None = None) -> None:
    """Chain a SIGTERM/SIGINT handler that calls ``release`` on the event loop first.

    uvicorn waits for open requests to finish *before* it runs the app's shutdown, so a held
    job-take would delay a stopping server by its whole hold time. Called once uvicorn has
    installed its own handlers, which still run after ours. With ``drain`` (a warm
    shutdown), the first signal runs it while the server still listens, so that the results
    of jobs finishing meanwhile are taken; uvicorn is told once it is done (a second
    signal: at once).
    """
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def stop(signum: int, frame: FrameType | None, previous: object = previous) -> None:
            release()
            if callable(previous):
                previous(signum, frame)

        def handler(signum: int, frame: FrameType | None, stop: Callable = stop) -> None:
            if drain is None or draining:
                loop.call_soon_threadsafe(stop, signum, frame)
                return
            loop.call_soon_threadsafe(_start_drain, loop, drain, draining,
                                      lambda: stop(signum, None))

        signal.signal(sig, handler)


def _start_drain(loop: asyncio.AbstractEventLoop, drain: Callable[[], Awaitable[None]],
                 draining: list[asyncio.Task[None]], then: Callable[[], None]) -> None:
    async def run() -> None:
        try:
            await drain()
        except Exception:
            logging.getLogger("runplane").exception("warm shutdown failed")
        then()

    draining.append(loop.create_task(run()))


class _Server(uvicorn.Server):
    """uvicorn's server, plus what runs once the app has started (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._on_started()


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8000].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    demo: Annotated[
        bool | None, typer.Option("--demo/--no-demo", help="Create the demo endpoint.")
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Where workers run: local (this host) or ray (the nodes "
                                      "of a Ray cluster; docs/ray.md); default local.")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="The Ray cluster to run workers on, e.g. 10.0.0.5:6379 "
                                      "(with --provider ray; default: Ray's own discovery).")
    ] = None,
) -> None:
    """Start the runplane server (REST v1, job API, worker API)."""
    # Everything the server writes (store, logs, container plans) is its user's only.
    os.umask(0o077)
    settings = load_settings(host=host, port=port, data_dir=data_dir, config_file=config, demo=demo,
                             provider=provider, ray_address=ray_address)
    # Before anything logs; uvicorn applies the same configuration to its own loggers.
    log_config = logging_config(settings.log_format, settings.log_level)
    logging.config.dictConfig(log_config)
    services = build_services(settings)
    admin_key = services.users.bootstrap_admin()
    bootstrap_key = admin_key.secret if admin_key is not None else None
    if admin_key is not None:
        console.print(
            "[bold green]Created the admin user.[/] Its API key is shown only this once:\n"
            f"  [bold]{admin_key.secret}[/]\n"
            "Store it now; `runplane keys create --user admin` makes another."
        )
    app = create_app(services, keep_workers=settings.controller.shutdown == "keep")
    if settings.demo:
        admin = services.users.find_user("admin")
        assert admin is not None  # created above on the first start
        endpoint_id = ensure_demo(services.engine, services.templates, services.endpoints,
                                  admin["id"])
        console.print(
            "[bold]Demo endpoint ready[/] (examples/hello, started on demand). Send it a job:\n  "
            + curl_line(settings.resolved_public_url, endpoint_id, bootstrap_key),
            soft_wrap=True,  # one line, so it can be copied as is
        )
    console.print(f"runplane listening on {settings.resolved_public_url} (data in {settings.data_dir})")
    server_config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,
        # Workers' aiohttp sessions keep idle connections for 15 s and reuse them for the
        # job-done that follows a long job; a server that closes idle connections sooner
        # (uvicorn's default is 5 s) races that reuse and the result is lost. Outlive the
        # clients' pools instead.
        timeout_keep_alive=75,
        # Deadlines for a request's head and body, a cap per address, and forwarded
        # addresses believed only from the operator's proxies (cli/connections.py).
        **http_options(settings),
    )
    raise_open_files_limit()
    run_serving(server_config, services)


def run_serving(config: uvicorn.Config, services: Services) -> None:
    """Serve ``config``'s app (over ``services``) as ``runplane serve`` does: once started,
    the GC tuned and a stop signal releasing the long-polls first. Benchmarks use it too, so
    they measure the server users run."""

    settings = services.settings.controller

    def release() -> None:
        services.broker.begin_shutdown()
        cancel_all()  # what-if replays: uvicorn waits for their requests before stopping

    def started() -> None:
        tune_gc()
        warm = settings.shutdown == "drain"
        release_long_polls_on_signal(
            release,
            (lambda: drain(services, settings.drain_timeout_s)) if warm else None)

    _Server(config, started).run()
