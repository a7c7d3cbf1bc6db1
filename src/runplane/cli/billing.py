"""``runplane billing``: what endpoints, pods and network volumes cost, per time bucket
(``/v1/billing/endpoints|pods|networkvolumes``)."""

from __future__ import annotations

from typing import Annotated

import typer

from runplane.cli.client import JsonOpt, KeyOpt, UrlOpt, connect
from runplane.cli.output import Column, show

billing_app = typer.Typer(help="Usage and cost per hour, day or week.", no_args_is_help=True)

Bucket = Annotated[str, typer.Option("--bucket", help="hour, day, week, month or year.")]
Start = Annotated[str | None, typer.Option("--start", help="ISO 8601 [30 days before --end].")]
End = Annotated[str | None, typer.Option("--end", help="ISO 8601 [now].")]

RECORD_COLUMNS: list[Column] = [
    ("time", "time"), ("endpoint", "endpointId"), ("pod", "podId"), ("gpu type", "gpuTypeId"),
    ("billed s", lambda r: round((r.get("timeBilledMs") or 0) / 1000)), ("amount $", "amount"),
]


@billing_app.command("endpoints")
def billing_endpoints(
    bucket: Bucket = "day", start: Start = None, end: End = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint.")] = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Serverless usage, grouped by endpoint."""
    with connect(url, api_key) as api:
        found = api.get("/v1/billing/endpoints", bucketSize=bucket, startTime=start,
                        endTime=end, endpointId=endpoint)
    show(found, as_json, RECORD_COLUMNS, "billing records")


@billing_app.command("pods")
def billing_pods(
    bucket: Bucket = "day", start: Start = None, end: End = None,
    pod: Annotated[str | None, typer.Option("--pod", help="Only this pod.")] = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Pod usage, grouped by GPU type."""
    with connect(url, api_key) as api:
        found = api.get("/v1/billing/pods", bucketSize=bucket, startTime=start, endTime=end,
                        podId=pod)
    show(found, as_json, RECORD_COLUMNS, "billing records")


@billing_app.command("volumes")
def billing_volumes(
    bucket: Bucket = "day", start: Start = None, end: End = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Network volume storage."""
    with connect(url, api_key) as api:
        found = api.get("/v1/billing/networkvolumes", bucketSize=bucket, startTime=start,
                        endTime=end)
    show(found, as_json, [("time", "time"), ("disk GB", "diskSpaceBilledGb"),
                          ("amount $", "amount")], "billing records")
