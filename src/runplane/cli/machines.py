"""``runplane machines``: machines with free and used capacity (from the running server), or
this host as discovery sees it (``--local``, no server needed)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from runplane.cli.options import ConfigFile, DataDir

console = Console()


def machines(
    url: Annotated[str, typer.Option(help="Server URL.")] = "http://127.0.0.1:8000",
    api_key: Annotated[str | None, typer.Option(envvar="RUNPLANE_API_KEY",
                                                help="An admin API key.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Discover this host; no server.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Show machines: CPUs, memory, GPUs (detected or declared) and what is in use."""
    if local:
        from runplane.catalog.catalog import build_catalog
        from runplane.catalog.machines import discover_local_machine
        from runplane.config import load_settings

        settings = load_settings(data_dir=data_dir, config_file=config)
        found = [discover_local_machine(settings.machine, settings.data_dir, build_catalog()).as_dict()]
    else:
        key = api_key or os.environ.get("RUNPLANE_API_KEY")
        if not key:
            raise typer.BadParameter("an admin key is needed: --api-key or RUNPLANE_API_KEY")
        r = httpx.get(f"{url.rstrip('/')}/v1/machines", headers={"Authorization": f"Bearer {key}"})
        if r.status_code != 200:
            console.print(f"[red]{r.status_code}[/] {r.text}")
            raise typer.Exit(1)
        found = r.json()
    if as_json:
        print(json.dumps(found, indent=2))
        return
    table = Table("machine", "data center", "CPU", "vCPUs", "memory GB", "GPUs", "in use")
    for m in found:
        gpus = ", ".join(
            f"{g['index']}:{g['gpuTypeId']} (CUDA {g['cudaVersion']}"
            f"{', declared' if g['declared'] else ''}{', ' + g['usedBy'] if g.get('usedBy') else ''})"
            for g in m["gpus"]) or "none"
        cap = m.get("capacity")
        used = (f"{cap['gpusUsed']}/{cap['gpusTotal']} GPUs, {cap['vcpusUsed']:g} vCPUs, "
                f"{cap['workers']} workers, {cap['pods']} pods") if cap else "-"
        table.add_row(f"{m['id']} ({m['name']})", m["dataCenterId"], m["cpuTypeId"],
                      str(m["cpuCount"]), f"{m['memoryInGb']:.1f}", gpus, used)
    console.print(table)
