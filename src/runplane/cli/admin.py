"""``runplane users`` and ``runplane keys``: operator commands on the local store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from runplane.cli.options import ConfigFile, DataDir
from runplane.config import load_settings
from runplane.services.users import UserService
from runplane.store.db import make_engine, upgrade

users_app = typer.Typer(help="Manage users (operator, on the server's host).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys (operator, on the server's host).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _service(data_dir: DataDir, config: ConfigFile) -> UserService:
    settings = load_settings(data_dir=data_dir, config_file=config)
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    return UserService(engine)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(1)


@users_app.command("create")
def users_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Give the user admin rights.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a user and print its first API key (shown once)."""
    svc = _service(data_dir, config)
    try:
        user_id = svc.create_user(name, is_admin=admin)
    except ValueError as exc:
        _fail(str(exc))
    key = svc.create_key(user_id, "default")
    if as_json:
        out.print_json(json.dumps({"id": user_id, "name": name, "admin": admin, "apiKey": key.secret}))
    else:
        out.print(f"user {name} ({user_id}) created; API key (shown once): {key.secret}")


@users_app.command("list")
def users_list(data_dir: DataDir = None, config: ConfigFile = None, as_json: JsonFlag = False) -> None:
    """List users."""
    rows = _service(data_dir, config).list_users()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "name", "admin", "created")
    for r in rows:
        table.add_row(r["id"], r["name"], "yes" if r["is_admin"] else "", _when(r["created_at"]))
    out.print(table)


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", help="User name or id.")] = "admin",
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "cli",
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key for a user and print it (shown once)."""
    svc = _service(data_dir, config)
    found = svc.find_user(user)
    if not found:
        _fail(f"no user {user!r}")
    key = svc.create_key(found["id"], name)
    if as_json:
        out.print_json(json.dumps({"id": key.id, "userId": key.user_id, "name": name, "apiKey": key.secret}))
    else:
        out.print(key.secret)


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: JsonFlag = False,
) -> None:
    """List API keys (their ids and prefixes; secrets are never stored)."""
    svc = _service(data_dir, config)
    user_id = None
    if user:
        found = svc.find_user(user)
        if not found:
            _fail(f"no user {user!r}")
        user_id = found["id"]
    rows = svc.list_keys(user_id)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "user", "name", "prefix", "created", "revoked")
    for r in rows:
        table.add_row(r["id"], r["user_id"], r["name"], r["prefix"] + "…", _when(r["created_at"]), _when(r["revoked_at"]))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Revoke a key by id; it stops working within two seconds."""
    if not _service(data_dir, config).revoke_key(key_id):
        _fail(f"no active key {key_id!r}")
    out.print(f"key {key_id} revoked")
