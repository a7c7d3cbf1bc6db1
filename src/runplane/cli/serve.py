"""``runplane serve``: run the server."""

from __future__ import annotations

import logging.config
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from runplane.cli.options import ConfigFile, DataDir
from runplane.config import load_settings
from runplane.observability.logging import logging_config
from runplane.server import build_services, create_app

console = Console(stderr=True)


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
    settings = load_settings(host=host, port=port, data_dir=data_dir, config_file=config, demo=demo,
                             provider=provider, ray_address=ray_address)
    # Before anything logs; uvicorn applies the same configuration to its own loggers.
    log_config = logging_config(settings.log_format, settings.log_level)
    logging.config.dictConfig(log_config)
    services = build_services(settings)
    admin_key = services.users.bootstrap_admin()
    if admin_key is not None:
        console.print(
            "[bold green]Created the admin user.[/] Its API key is shown only this once:\n"
            f"  [bold]{admin_key.secret}[/]\n"
            "Store it now; `runplane keys create --user admin` makes another."
        )
        services.extra["bootstrap_key"] = admin_key.secret
    app = create_app(settings, services)
    if settings.demo:
        from runplane.controller.demo import curl_line, ensure_demo

        admin = services.users.find_user("admin")
        endpoint_id = ensure_demo(services, admin["id"])
        console.print(
            "[bold]Demo endpoint ready[/] (examples/hello, started on demand). Send it a job:\n  "
            + curl_line(settings.resolved_public_url, endpoint_id,
                        services.extra.get("bootstrap_key")),
            soft_wrap=True,  # one line, so it can be copied as is
        )
    console.print(f"runplane listening on {settings.resolved_public_url} (data in {settings.data_dir})")
    uvicorn.run(
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
    )
