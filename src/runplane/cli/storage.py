"""``runplane volumes`` (network volumes) and ``runplane registry-auths`` (container registry
credentials)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from runplane.cli.client import JsonOpt, KeyOpt, UrlOpt, connect
from runplane.cli.output import Column, done, show
from runplane.cli.resources import _created, _require_change, build_body

volumes_app = typer.Typer(help="Network volumes: storage per data center, mounted in workers.",
                          no_args_is_help=True)
registry_app = typer.Typer(help="Container registry credentials for private images.",
                           no_args_is_help=True)

VOLUME_COLUMNS: list[Column] = [
    ("id", "id"), ("name", "name"), ("size GB", "size"), ("data center", "dataCenterId"),
]
VolumeId = Annotated[str, typer.Argument(metavar="VOLUME_ID")]


@volumes_app.command("create")
def volumes_create(
    name: Annotated[str, typer.Argument(help="Volume name.")],
    size: Annotated[int, typer.Option("--size", help="Size in GB (can grow, never shrink).")],
    data_center: Annotated[str, typer.Option("--data-center", help="dataCenterId, e.g. LOCAL-1.")],
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a network volume in a data center."""
    with connect(url, api_key) as api:
        created = api.post("/v1/networkvolumes",
                           {"name": name, "size": size, "dataCenterId": data_center})
    _created(created, as_json, "network volume")


@volumes_app.command("list")
def volumes_list(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List your network volumes."""
    with connect(url, api_key) as api:
        show(api.get("/v1/networkvolumes"), as_json, VOLUME_COLUMNS, "network volumes")


@volumes_app.command("get")
def volumes_get(volume_id: VolumeId, url: UrlOpt = None, api_key: KeyOpt = None,
                as_json: JsonOpt = False) -> None:
    """Show one network volume."""
    with connect(url, api_key) as api:
        show(api.get(f"/v1/networkvolumes/{volume_id}"), as_json)


@volumes_app.command("update")
def volumes_update(
    volume_id: VolumeId,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    size: Annotated[int | None, typer.Option("--size", help="New size in GB (larger).")] = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Rename or grow a network volume."""
    fields = build_body(None, name=name, size=size)
    _require_change(fields)
    with connect(url, api_key) as api:
        show(api.patch(f"/v1/networkvolumes/{volume_id}", fields), as_json)


@volumes_app.command("delete")
def volumes_delete(volume_id: VolumeId, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Delete a network volume and its data."""
    with connect(url, api_key) as api:
        api.delete(f"/v1/networkvolumes/{volume_id}")
    done(f"network volume {volume_id} deleted")


# -- container registry auths --------------------------------------------------------------

AuthId = Annotated[str, typer.Argument(metavar="AUTH_ID")]


@registry_app.command("create")
def registry_create(
    name: Annotated[str, typer.Argument(help="A name for the credentials.")],
    username: Annotated[str, typer.Option("--username", help="Registry user name.")],
    password: Annotated[str | None, typer.Option(
        "--password", help="Registry password or token (prefer --password-stdin).")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from stdin.")] = False,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Store registry credentials; templates name them with --registry-auth."""
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    if not password:
        raise typer.BadParameter("a password is needed: --password or --password-stdin",
                                 param_hint="'--password'")
    with connect(url, api_key) as api:
        created = api.post("/v1/containerregistryauth",
                           {"name": name, "username": username, "password": password})
    _created(created, as_json, "registry auth")


@registry_app.command("list")
def registry_list(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List your registry credentials (names only; passwords are never shown)."""
    with connect(url, api_key) as api:
        show(api.get("/v1/containerregistryauth"), as_json, [("id", "id"), ("name", "name")],
             "registry auths")


@registry_app.command("get")
def registry_get(auth_id: AuthId, url: UrlOpt = None, api_key: KeyOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Show one registry auth."""
    with connect(url, api_key) as api:
        show(api.get(f"/v1/containerregistryauth/{auth_id}"), as_json)


@registry_app.command("delete")
def registry_delete(auth_id: AuthId, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Delete registry credentials."""
    with connect(url, api_key) as api:
        api.delete(f"/v1/containerregistryauth/{auth_id}")
    done(f"registry auth {auth_id} deleted")
