"""``runplane pods``: long-running processes from a template or an image, outside any
endpoint (RunPod's Pods). Their output: ``runplane logs POD_ID``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from runplane.cli.client import JsonOpt, KeyOpt, UrlOpt, connect, parse_pairs
from runplane.cli.output import Column, done, show, waiting
from runplane.cli.resources import (
    Cmd, ComputeType, CpuFlavor, DataCenter, Entrypoint, Env, GpuCount, GpuType, Image,
    MountPath, Ports, RegistryAuth, Vcpus, Volume, _created, _require_change, _words, argv,
    build_body, BodyOpt,
)

pods_app = typer.Typer(help="Pods: long-running processes outside any endpoint.",
                       no_args_is_help=True)


def _gpu(p: dict[str, Any]) -> str:
    gpu = p.get("gpu") or {}
    return f"{gpu.get('count', 0)} x {gpu.get('id')}" if gpu.get("id") else "-"


POD_COLUMNS: list[Column] = [
    ("id", "id"), ("name", "name"), ("status", "desiredStatus"), ("machine", "machineId"),
    ("gpu", _gpu), ("vCPUs", "vcpuCount"), ("$/hr", "costPerHr"),
]
PodId = Annotated[str, typer.Argument(metavar="POD_ID")]


@pods_app.command("create")
def pods_create(
    name: Annotated[str, typer.Argument(help="Pod name.")],
    template: Annotated[str | None, typer.Option("--template", "-t", help="templateId.")] = None,
    image: Image = None, cmd: Cmd = None, entrypoint: Entrypoint = None, env: Env = None,
    compute_type: ComputeType = None, gpu_type: GpuType = None, gpu_count: GpuCount = None,
    cpu_flavor: CpuFlavor = None, vcpus: Vcpus = None, data_center: DataCenter = None,
    network_volume: Volume = None, mount_path: MountPath = None, port: Ports = None,
    registry_auth: RegistryAuth = None, body: BodyOpt = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create and start a pod, from --template or from --image and --cmd."""
    fields = build_body(
        body, name=name, templateId=template, imageName=image, dockerStartCmd=argv(cmd, "--cmd"),
        dockerEntrypoint=argv(entrypoint, "--entrypoint"), env=parse_pairs(env, "--env"),
        computeType=compute_type, gpuTypeIds=_words(gpu_type), gpuCount=gpu_count,
        cpuFlavorIds=_words(cpu_flavor), vcpuCount=vcpus, dataCenterIds=_words(data_center),
        networkVolumeId=network_volume, volumeMountPath=mount_path, ports=port,
        containerRegistryAuthId=registry_auth,
    )
    if "templateId" not in fields and "imageName" not in fields:
        raise typer.BadParameter("give --template or --image", param_hint="'--template'")
    with connect(url, api_key, timeout=60) as api, waiting(f"starting pod {name}"):
        created = api.post("/v1/pods", fields)
    _created(created, as_json, "pod")


@pods_app.command("list")
def pods_list(
    status: Annotated[str | None, typer.Option("--status", help="RUNNING, EXITED...")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only pods with this name.")] = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """List your pods."""
    with connect(url, api_key) as api:
        show(api.get("/v1/pods", desiredStatus=status, name=name), as_json, POD_COLUMNS, "pods")


@pods_app.command("get")
def pods_get(pod_id: PodId, url: UrlOpt = None, api_key: KeyOpt = None,
             as_json: JsonOpt = False) -> None:
    """Show one pod."""
    with connect(url, api_key) as api:
        show(api.get(f"/v1/pods/{pod_id}"), as_json)


@pods_app.command("update")
def pods_update(
    pod_id: PodId,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    image: Image = None, cmd: Cmd = None, entrypoint: Entrypoint = None, env: Env = None,
    mount_path: MountPath = None, port: Ports = None, registry_auth: RegistryAuth = None,
    body: BodyOpt = None, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Change a pod; a running pod restarts with the change."""
    fields = build_body(
        body, name=name, imageName=image, dockerStartCmd=argv(cmd, "--cmd"),
        dockerEntrypoint=argv(entrypoint, "--entrypoint"), env=parse_pairs(env, "--env"),
        volumeMountPath=mount_path, ports=port, containerRegistryAuthId=registry_auth,
    )
    _require_change(fields)
    with connect(url, api_key, timeout=60) as api, waiting(f"updating pod {pod_id}"):
        updated = api.patch(f"/v1/pods/{pod_id}", fields)
    show(updated, as_json)


@pods_app.command("delete")
def pods_delete(pod_id: PodId, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Stop and delete a pod."""
    with connect(url, api_key, timeout=60) as api, waiting(f"stopping pod {pod_id}"):
        api.delete(f"/v1/pods/{pod_id}")
    done(f"pod {pod_id} deleted")


def _action(verb: str, help_text: str) -> None:
    def command(pod_id: PodId, url: UrlOpt = None, api_key: KeyOpt = None,
                as_json: JsonOpt = False) -> None:
        with connect(url, api_key, timeout=60) as api, waiting(f"{verb}: pod {pod_id}"):
            pod = api.post(f"/v1/pods/{pod_id}/{verb}")
        if as_json:
            show(pod, True)
        else:
            done(f"pod {pod_id}: {(pod or {}).get('desiredStatus', verb)}")

    command.__name__ = f"pods_{verb}"
    pods_app.command(verb, help=help_text)(command)


_action("start", "Start a stopped pod.")
_action("stop", "Stop a pod (frees its GPUs; keeps it for a later start).")
_action("restart", "Restart a pod's process.")
_action("reset", "Reset a pod: stop its process and start it again.")
