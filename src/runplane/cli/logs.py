"""``runplane workers list`` and ``runplane logs``: an endpoint's workers, and the output of a
worker (``GET /v1/workers/{id}/logs``) or pod (``GET /v1/pods/{id}/logs``), followed with -f."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from runplane.cli.client import ApiClient, JsonOpt, KeyOpt, UrlOpt, connect
from runplane.cli.errors import CliError, fail
from runplane.cli.output import show
from runplane.cli.resources import WORKER_COLUMNS

workers_app = typer.Typer(help="Workers of an endpoint (started by the autoscaler or by hand).",
                          no_args_is_help=True)


@workers_app.command("list")
def workers_list(
    endpoint: Annotated[str, typer.Argument(metavar="ENDPOINT_ID", help="The endpoint's id.")],
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """List an endpoint's live workers (as Pods: machine, GPUs, state, version)."""
    with connect(url, api_key) as api:
        found = api.get(f"/v1/endpoints/{endpoint}", includeWorkers="true")
    show(found.get("workers") or [], as_json, WORKER_COLUMNS, "workers")


def new_text(old: str, new: str) -> str:
    """What ``new`` (a later tail of the same log) adds to ``old``.

    The server answers the last bytes of the log, so a later tail may have dropped the start
    of ``old``: the new part follows the longest end of ``old`` that ``new`` starts with
    (found with the KMP prefix function, linear in the tail's size).
    """
    if new.startswith(old):
        return new[len(old):]
    text = new + "\uffff" + old[-len(new):]
    prefix = [0] * len(text)
    for i in range(1, len(text)):
        j = prefix[i - 1]
        while j and text[i] != text[j]:
            j = prefix[j - 1]
        if text[i] == text[j]:
            j += 1
        prefix[i] = j
    return new[prefix[-1]:]  # no overlap: the log was replaced (a restart), show it all


def _fetch(api: ApiClient, paths: list[str], ident: str) -> tuple[str, str]:
    """The first of ``paths`` that knows ``ident``: (path, text)."""
    last: CliError | None = None
    for path in paths:
        try:
            text = api.get(path)
            return path, text if isinstance(text, str) else str(text)
        except CliError as exc:
            last = exc
            if "not found" not in exc.message:
                raise
    raise CliError(f"no worker or pod {ident}") if last else CliError("nothing to read")


def logs(
    ident: Annotated[str, typer.Argument(metavar="ID", help="A worker id or a pod id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new output.")]
    = False,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.1, help="Seconds between polls with --follow.")] = 1.0,
    url: UrlOpt = None, api_key: KeyOpt = None,
) -> None:
    """Print the output of a worker (ids from `runplane workers list`) or a pod."""
    with connect(url, api_key) as api:
        path, text = _fetch(api, [f"/v1/workers/{ident}/logs", f"/v1/pods/{ident}/logs"], ident)
        sys.stdout.write(text)
        sys.stdout.flush()
        if not follow:
            return
        try:
            while True:
                time.sleep(interval)
                try:
                    latest = api.get(path)
                except CliError as exc:
                    if "not found" in exc.message:
                        fail(f"{ident} is gone (deleted)")
                    raise
                sys.stdout.write(new_text(text, latest))
                sys.stdout.flush()
                text = latest
        except KeyboardInterrupt:
            return
