"""``runplane templates`` and ``runplane endpoints``: the REST v1 resources behind an endpoint.

Create and update send only the fields given on the command line (the server applies RunPod's
defaults to the rest); ``--body '{...}'`` adds any other spec field, and flags win over it.
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer

from runplane.cli.client import JsonOpt, KeyOpt, UrlOpt, connect, parse_json_arg, parse_pairs
from runplane.cli.errors import usage_error
from runplane.cli.output import Column, done, out, show, table, waiting

templates_app = typer.Typer(help="Templates: the image, command and environment of workers and pods.",
                            no_args_is_help=True)
endpoints_app = typer.Typer(help="Serverless endpoints: scaling, GPUs and the template they run.",
                            no_args_is_help=True)

BodyOpt = Annotated[str | None, typer.Option(
    "--body", help="More fields as a JSON object (inline, @file or - for stdin).")]


def build_body(body: str | None, **fields: Any) -> dict[str, Any]:
    """``--body``'s object with the given (non-None) flag values on top."""
    base: dict[str, Any] = {}
    if body is not None:
        parsed = parse_json_arg(body, "--body")
        if not isinstance(parsed, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="'--body'")
        base = parsed
    base.update({k: v for k, v in fields.items() if v is not None})
    return base


def argv(text: str | None, option: str) -> list[str] | None:
    """A command line as a list of words (shell quoting rules)."""
    if text is None:
        return None
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None


def _words(items: list[str] | None) -> list[str] | None:
    """Repeated options that also accept comma-separated values."""
    if items is None:
        return None
    return [w.strip() for item in items for w in item.split(",") if w.strip()]


# -- templates ---------------------------------------------------------------------------

TEMPLATE_COLUMNS: list[Column] = [
    ("id", "id"), ("name", "name"), ("image", "imageName"),
    ("command", lambda t: " ".join([*t.get("dockerEntrypoint", []), *t.get("dockerStartCmd", [])])),
    ("serverless", "isServerless"), ("category", "category"),
]

Image = Annotated[str | None, typer.Option(
    "--image", help="imageName: `local:/abs/dir` runs a process in that directory.")]
Cmd = Annotated[str | None, typer.Option(
    "--cmd", help="dockerStartCmd, as a shell-quoted string: \"python handler.py\".")]
Entrypoint = Annotated[str | None, typer.Option("--entrypoint", help="dockerEntrypoint, shell-quoted.")]
Env = Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE (repeatable).")]
Ports = Annotated[list[str] | None, typer.Option("--port", help="Port such as 8888/http (repeatable).")]
Category = Annotated[str | None, typer.Option("--category", help="NVIDIA, AMD or CPU.")]
Disk = Annotated[int | None, typer.Option("--container-disk", help="containerDiskInGb.")]
VolumeGb = Annotated[int | None, typer.Option("--volume-gb", help="volumeInGb (pods).")]
MountPath = Annotated[str | None, typer.Option("--mount-path", help="volumeMountPath.")]
RegistryAuth = Annotated[str | None, typer.Option("--registry-auth", help="containerRegistryAuthId.")]
Readme = Annotated[str | None, typer.Option("--readme", help="A description.")]
Public = Annotated[bool | None, typer.Option("--public/--private", help="isPublic.")]


@templates_app.command("create")
def templates_create(
    name: Annotated[str, typer.Argument(help="Template name (unique per user).")],
    image: Image = None,
    cmd: Cmd = None,
    entrypoint: Entrypoint = None,
    env: Env = None,
    serverless: Annotated[bool, typer.Option(
        "--serverless/--pod", help="For endpoints (isServerless) or for pods.")] = False,
    category: Category = None, container_disk: Disk = None, volume_gb: VolumeGb = None,
    mount_path: MountPath = None, port: Ports = None, registry_auth: RegistryAuth = None,
    readme: Readme = None, public: Public = None, body: BodyOpt = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a template.

    Example: runplane templates create hello --serverless --image local:/srv/hello --cmd "python handler.py"
    """
    fields = build_body(
        body, name=name, imageName=image, dockerStartCmd=argv(cmd, "--cmd"),
        dockerEntrypoint=argv(entrypoint, "--entrypoint"), env=parse_pairs(env, "--env"),
        isServerless=serverless, category=category, containerDiskInGb=container_disk,
        volumeInGb=volume_gb, volumeMountPath=mount_path, ports=port,
        containerRegistryAuthId=registry_auth, readme=readme, isPublic=public,
    )
    if "imageName" not in fields:
        raise typer.BadParameter("an image is needed", param_hint="'--image'")
    with connect(url, api_key) as api:
        created = api.post("/v1/templates", fields)
    _created(created, as_json, "template")


@templates_app.command("list")
def templates_list(
    bound: Annotated[bool, typer.Option(
        "--bound/--unbound", help="Include templates an endpoint uses (the API's default "
        "leaves them out).")] = True,
    public: Annotated[bool, typer.Option("--public", help="Add other users' public templates.")]
    = False,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """List your templates."""
    with connect(url, api_key) as api:
        found = api.get("/v1/templates", includeEndpointBoundTemplates=str(bound).lower(),
                        includePublicTemplates=str(public).lower())
    show(found, as_json, TEMPLATE_COLUMNS, "templates")


@templates_app.command("get")
def templates_get(template_id: Annotated[str, typer.Argument(metavar="TEMPLATE_ID")],
                  url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Show one template."""
    with connect(url, api_key) as api:
        show(api.get(f"/v1/templates/{template_id}"), as_json)


@templates_app.command("update")
def templates_update(
    template_id: Annotated[str, typer.Argument(metavar="TEMPLATE_ID")],
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    image: Image = None, cmd: Cmd = None, entrypoint: Entrypoint = None, env: Env = None,
    container_disk: Disk = None, volume_gb: VolumeGb = None, mount_path: MountPath = None,
    port: Ports = None, registry_auth: RegistryAuth = None, readme: Readme = None,
    public: Public = None, body: BodyOpt = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Change a template; endpoints on it roll their workers to the new version.

    --env replaces the whole environment.
    """
    fields = build_body(
        body, name=name, imageName=image, dockerStartCmd=argv(cmd, "--cmd"),
        dockerEntrypoint=argv(entrypoint, "--entrypoint"), env=parse_pairs(env, "--env"),
        containerDiskInGb=container_disk, volumeInGb=volume_gb, volumeMountPath=mount_path,
        ports=port, containerRegistryAuthId=registry_auth, readme=readme, isPublic=public,
    )
    _require_change(fields)
    with connect(url, api_key) as api:
        show(api.patch(f"/v1/templates/{template_id}", fields), as_json)


@templates_app.command("delete")
def templates_delete(template_id: Annotated[str, typer.Argument(metavar="TEMPLATE_ID")],
                     url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Delete a template (refused while an endpoint or pod uses it)."""
    with connect(url, api_key) as api:
        api.delete(f"/v1/templates/{template_id}")
    done(f"template {template_id} deleted")


# -- endpoints ---------------------------------------------------------------------------


def _compute(e: dict[str, Any]) -> str:
    if e.get("computeType") == "CPU":
        instances = e.get("instanceIds") or []
        more = f" (+{len(instances) - 1})" if len(instances) > 1 else ""
        return f"CPU {instances[0]}{more}" if instances else f"CPU {e.get('vcpuCount')} vCPU"
    gpus = ", ".join(e.get("gpuTypeIds") or []) or "any GPU"
    return f"{e.get('gpuCount', 1)} x {gpus}"


ENDPOINT_COLUMNS: list[Column] = [
    ("id", "id"), ("name", "name"), ("compute", _compute),
    ("workers", lambda e: f"{e.get('workersMin')}-{e.get('workersMax')}"),
    ("scaler", lambda e: f"{e.get('scalerType')} {e.get('scalerValue')}"),
    ("idle s", "idleTimeout"),
]
WORKER_COLUMNS: list[Column] = [
    ("worker", "id"), ("status", lambda w: w.get("workerStatus") or w.get("desiredStatus")),
    ("machine", "machineId"),
    ("gpu", lambda w: f"{(w.get('gpu') or {}).get('count', 0)} x {(w.get('gpu') or {}).get('id')}"
     if (w.get("gpu") or {}).get("id") else "-"),
    ("$/hr", "costPerHr"), ("version", "slsVersion"),
]

ComputeType = Annotated[str | None, typer.Option("--compute-type", help="GPU or CPU.")]
GpuType = Annotated[list[str] | None, typer.Option(
    "--gpu-type", help="gpuTypeIds, in priority order (repeatable).")]
GpuCount = Annotated[int | None, typer.Option("--gpu-count", help="GPUs per worker.")]
CpuFlavor = Annotated[list[str] | None, typer.Option("--cpu-flavor", help="cpuFlavorIds (repeatable).")]
Vcpus = Annotated[int | None, typer.Option("--vcpus", help="vcpuCount of CPU workers.")]
DataCenter = Annotated[list[str] | None, typer.Option("--data-center", help="dataCenterIds (repeatable).")]
Cuda = Annotated[list[str] | None, typer.Option("--cuda", help="allowedCudaVersions (repeatable).")]
WorkersMin = Annotated[int | None, typer.Option("--workers-min", help="Workers kept running.")]
WorkersMax = Annotated[int | None, typer.Option("--workers-max", help="Most workers at once.")]
Idle = Annotated[int | None, typer.Option("--idle-timeout", help="Seconds before an idle worker stops.")]
Scaler = Annotated[str | None, typer.Option("--scaler-type", help="QUEUE_DELAY or REQUEST_COUNT.")]
ScalerValue = Annotated[int | None, typer.Option("--scaler-value", help="Seconds or jobs per worker.")]
ExecTimeout = Annotated[int | None, typer.Option("--execution-timeout-ms", help="Per-job limit.")]
Volume = Annotated[str | None, typer.Option("--network-volume", help="networkVolumeId.")]
Flashboot = Annotated[bool | None, typer.Option("--flashboot/--no-flashboot", help="flashboot.")]


def _endpoint_fields(**kw: Any) -> dict[str, Any]:
    """The endpoint fields of a create or update command's arguments."""
    return build_body(
        kw["body"], name=kw["name"], computeType=kw.get("compute_type"), gpuTypeIds=_words(kw["gpu_type"]),
        gpuCount=kw["gpu_count"], cpuFlavorIds=_words(kw["cpu_flavor"]), vcpuCount=kw["vcpus"],
        dataCenterIds=_words(kw["data_center"]), allowedCudaVersions=_words(kw["cuda"]),
        workersMin=kw["workers_min"], workersMax=kw["workers_max"],
        idleTimeout=kw["idle_timeout"], scalerType=kw["scaler_type"],
        scalerValue=kw["scaler_value"], executionTimeoutMs=kw["execution_timeout_ms"],
        networkVolumeId=kw["network_volume"], flashboot=kw["flashboot"],
        templateId=kw.get("template"),
    )


@endpoints_app.command("create")
def endpoints_create(
    template: Annotated[str, typer.Option("--template", "-t", help="templateId (serverless).")],
    name: Annotated[str | None, typer.Option("--name", help="Endpoint name.")] = None,
    compute_type: ComputeType = None, gpu_type: GpuType = None, gpu_count: GpuCount = None,
    cpu_flavor: CpuFlavor = None, vcpus: Vcpus = None, data_center: DataCenter = None,
    cuda: Cuda = None, workers_min: WorkersMin = None, workers_max: WorkersMax = None,
    idle_timeout: Idle = None, scaler_type: Scaler = None, scaler_value: ScalerValue = None,
    execution_timeout_ms: ExecTimeout = None, network_volume: Volume = None,
    flashboot: Flashboot = None, body: BodyOpt = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a serverless endpoint; its workers start when jobs arrive."""
    fields = _endpoint_fields(**locals())
    with connect(url, api_key) as api:
        created = api.post("/v1/endpoints", fields)
    _created(created, as_json, "endpoint")
    if not as_json:
        done(f"send it a job: runplane run {created.get('id')} --input '{{\"name\": \"you\"}}'")


@endpoints_app.command("list")
def endpoints_list(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List your endpoints."""
    with connect(url, api_key) as api:
        show(api.get("/v1/endpoints"), as_json, ENDPOINT_COLUMNS, "endpoints")


@endpoints_app.command("get")
def endpoints_get(
    endpoint_id: Annotated[str, typer.Argument(metavar="ENDPOINT_ID")],
    workers: Annotated[bool, typer.Option("--workers", help="Include its workers.")] = False,
    template: Annotated[bool, typer.Option("--template", help="Include its template.")] = False,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show one endpoint (and its workers with --workers)."""
    with connect(url, api_key) as api:
        found = api.get(f"/v1/endpoints/{endpoint_id}", includeWorkers=str(workers).lower(),
                        includeTemplate=str(template).lower())
    if as_json:
        show(found, True)
        return
    show({k: v for k, v in found.items() if k not in ("workers", "template")}, False)
    if template and found.get("template"):
        out.print("[bold]template[/]")
        show(found["template"], False)
    if workers:
        out.print("[bold]workers[/]")
        table(found.get("workers") or [], WORKER_COLUMNS, "workers")


@endpoints_app.command("update")
def endpoints_update(
    endpoint_id: Annotated[str, typer.Argument(metavar="ENDPOINT_ID")],
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    template: Annotated[str | None, typer.Option("--template", "-t", help="New templateId.")] = None,
    gpu_type: GpuType = None, gpu_count: GpuCount = None,
    cpu_flavor: CpuFlavor = None, vcpus: Vcpus = None, data_center: DataCenter = None,
    cuda: Cuda = None, workers_min: WorkersMin = None, workers_max: WorkersMax = None,
    idle_timeout: Idle = None, scaler_type: Scaler = None, scaler_value: ScalerValue = None,
    execution_timeout_ms: ExecTimeout = None, network_volume: Volume = None,
    flashboot: Flashboot = None, body: BodyOpt = None,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Change an endpoint: scale it (--workers-min/--workers-max), move it, switch template."""
    fields = _endpoint_fields(**locals())
    _require_change(fields)
    with connect(url, api_key) as api:
        show(api.patch(f"/v1/endpoints/{endpoint_id}", fields), as_json)


@endpoints_app.command("delete")
def endpoints_delete(endpoint_id: Annotated[str, typer.Argument(metavar="ENDPOINT_ID")],
                     url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Delete an endpoint; its workers stop."""
    with connect(url, api_key, timeout=60) as api, waiting(f"deleting endpoint {endpoint_id}"):
        api.delete(f"/v1/endpoints/{endpoint_id}")
    done(f"endpoint {endpoint_id} deleted")


# -- shared ------------------------------------------------------------------------------


def _created(created: Any, as_json: bool, kind: str) -> None:
    if as_json:
        show(created, True)
        return
    done(f"{kind} {created.get('id')} created")
    print(created.get("id"))


def _require_change(fields: dict[str, Any]) -> None:
    if not fields:
        raise usage_error("nothing to change: give at least one option")
