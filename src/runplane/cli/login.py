"""``runplane login`` and ``runplane logout``: remember a server and a key for the client
commands, in ``~/.config/runplane/cli.toml`` (see runplane.cli.client)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from runplane.cli.client import (
    DEFAULT_URL, ApiClient, Target, config_path, normalize_url, write_config,
)
from runplane.cli.output import done, print_json


def login(
    url: Annotated[str, typer.Option("--url", envvar="RUNPLANE_URL", help="Server URL.")]
    = DEFAULT_URL,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="RUNPLANE_API_KEY",
        help="Your API key (asked for when not given and stdin is a terminal).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
) -> None:
    """Check an API key against a server and save both for later commands."""
    target_url = normalize_url(url)
    if not api_key:
        if not sys.stdin.isatty():
            raise typer.BadParameter("an API key is needed", param_hint="'--api-key'")
        api_key = typer.prompt("API key", hide_input=True).strip()
    with ApiClient(Target(target_url, api_key), timeout=15) as api:
        endpoints = api.get("/v1/endpoints")  # any authenticated read proves the key
    path = write_config(target_url, api_key)
    if as_json:
        print_json({"url": target_url, "config": str(path), "endpoints": len(endpoints)})
    else:
        done(f"logged in to {target_url} ({len(endpoints)} endpoints); saved in {path}")


def logout() -> None:
    """Forget the saved server and key."""
    path = config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        done(f"not logged in ({path} does not exist)")
        return
    done(f"removed {path}")
