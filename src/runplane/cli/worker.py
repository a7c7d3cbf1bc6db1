"""``runplane worker run``: attach a handler process to an endpoint's live queue by hand.

It registers a manual worker through the server (``POST /v2/{endpointId}/workers`` with the
user's API key), then runs the command with the RUNPOD_* environment an unmodified SDK worker
needs and a fresh worker credential. When the command exits (or on Ctrl-C / SIGTERM, which
are passed on to it), the worker is retired so its unfinished jobs go back to the queue.

For a load-balancing endpoint the command is an HTTP server: it gets free local ports in
``PORT`` / ``PORT_HEALTH`` and the endpoint's ``HEALTH_CHECK_PATH``, and its requests come
through a WebSocket this command opens to the server (``cli.lb_tunnel``): the server never
connects to an address a user names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from typing import Annotated

import httpx
import typer
from rich.console import Console

from runplane.accelerator import SITE_DIR, with_site
from runplane.cli import lb_tunnel

worker_app = typer.Typer(help="Run a worker by hand against a live endpoint.", no_args_is_help=True)
err = Console(stderr=True)
# The user's own credentials: a manual worker's handler runs with its worker credential only.
_USER_SECRETS = ("RUNPLANE_API_KEY", "RUNPOD_API_KEY", "RUNPLANE_CONFIG")


@worker_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Endpoint id.")],
    url: Annotated[
        str, typer.Option("--url", envvar="RUNPLANE_URL", help="Server base URL.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar=["RUNPLANE_API_KEY", "RUNPOD_API_KEY"], help="Your API key."),
    ] = None,
    gpu: Annotated[str, typer.Option("--gpu", help="GPU type id to report to the handler.")] = "",
) -> None:
    """Run COMMAND (after --) as a worker of ENDPOINT, e.g.
    ``runplane worker run --endpoint ID -- python handler.py``.

    For a load-balancing endpoint COMMAND is an HTTP server: it listens on $PORT (a free
    local port), answers its health check on $PORT_HEALTH at $HEALTH_CHECK_PATH, and its
    requests come through a WebSocket this command opens to the server."""
    command = list(ctx.args)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        err.print("[red]error:[/] give the handler command after --, e.g. -- python handler.py")
        raise typer.Exit(2)
    if not api_key:
        err.print("[red]error:[/] an API key is needed: --api-key or RUNPLANE_API_KEY")
        raise typer.Exit(2)
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        r = httpx.post(f"{base}/v2/{endpoint}/workers", json={"gpu": gpu}, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/] cannot reach {base}: {exc}")
        raise typer.Exit(1) from None
    if r.status_code != 201:
        try:
            message = r.json().get("error", r.text)
        except ValueError:
            message = r.text
        err.print(f"[red]error:[/] {r.status_code}: {message}")
        raise typer.Exit(1)
    body = r.json()
    worker_id = body["id"]
    err.print(f"worker {worker_id} attached to endpoint {endpoint}; running: {' '.join(command)}")
    # The SDK accelerator (docs/workers.md) goes first on the command's PYTHONPATH unless
    # RUNPLANE_ACCELERATOR=0 is set here or by the server.
    # The handler gets its worker credential, never the user's API key (nor the CLI's config).
    own = {k: v for k, v in os.environ.items() if k not in _USER_SECRETS}
    env = {**own, **body["env"]}
    lb = body.get("loadBalancer")
    if lb:
        port = lb_tunnel.free_port()
        env.update(PORT=str(port), PORT_HEALTH=str(port), HEALTH_CHECK_PATH=lb["healthCheckPath"])
    proc = subprocess.Popen(command, env=with_site(env, str(SITE_DIR)))

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if lb:
        code = asyncio.run(_serve_lb(proc, lb_tunnel.tunnel_url(base, endpoint, worker_id),
                                     body["token"], port, lb["healthCheckPath"]))
    else:
        code = proc.wait()
    try:
        httpx.delete(f"{base}/v2/{endpoint}/workers/{worker_id}", headers=headers, timeout=10)
    except httpx.HTTPError:
        pass
    err.print(f"worker {worker_id} exited with {code}")
    sys.exit(code if code >= 0 else 128 - code)


async def _serve_lb(proc: subprocess.Popen[bytes], url: str, token: str, port: int,
                    health_path: str) -> int:
    """Serve the tunnel while the command runs; its exit code (the tunnel closes with it)."""
    tunnel = asyncio.create_task(lb_tunnel.serve(url, token, port, port, health_path))
    exited = asyncio.create_task(asyncio.to_thread(proc.wait))
    await asyncio.wait((tunnel, exited), return_when=asyncio.FIRST_COMPLETED)
    if tunnel.done() and not tunnel.cancelled() and tunnel.exception() is not None:
        err.print(f"[red]error:[/] the tunnel was refused: {tunnel.exception()}")
        if proc.poll() is None:
            proc.terminate()
    tunnel.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await tunnel
    return await exited
