"""REST v2's serverless endpoint on the wire, over the one endpoint model v1 also serves.

v2 nests what v1 keeps flat: ``workers {min, max, idleTimeout}`` is ``workersMin``,
``workersMax``, ``idleTimeout``; ``scaling`` is ``scalerType`` and ``scalerValue``; ``gpu
{pools, excludedTypes, count, CUDA}`` selects ``gpuTypeIds`` by pool (``catalog.pools``);
``cpu [{id, vcpuCount}]`` is ``cpuFlavorIds`` and ``vcpuCount``; ``timeout`` is
``executionTimeoutMs``; ``flashboot`` OFF is ``flashboot: false``, FLASHBOOT and
PRIORITY_FLASHBOOT ``true`` (runplane has one kind of FlashBoot; it answers FLASHBOOT).
Container fields (``image``, ``args``, ``disk``, ``ports``, ``registry``) are the template's
(``services.endpoint_templates``), ``env`` the endpoint's own over its template's.

A body is validated once: by its v2 model (``schemas.rest_v2``, every field's rule under its
v2 name), then by the rules here that span v2 fields (exactly one of ``gpu`` and ``cpu``...).
What this module builds from it, the services' typed inputs in v1 names (``EndpointSettings``,
``EndpointUpdate``, the inline ``TemplateUpdate``), is constructed, not validated again, and a
refusal of the services is answered in v2's names (``v2_field_names``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel

from runplane.catalog.pools import GpuPools
from runplane.errors import DomainError, Invalid
from runplane.lb.prober import health_path
from runplane.lb.urls import base_url
from runplane.schemas.endpoints import Endpoint, EndpointSettings, EndpointUpdate
from runplane.schemas.rest_v2 import ContainerFields, EndpointCreateV2, EndpointUpdateV2
from runplane.schemas.templates import MAX_ARGV, TemplateUpdate
from runplane.services.endpoint_rules import gb_per_vcpu

# Job API routes of a QUEUE endpoint, by ``QueueBasedRequestUrls`` name.
_REQUEST_ROUTES = {"run": "run", "runSync": "runsync", "status": "status", "stream": "stream",
                   "cancel": "cancel", "retry": "retry", "purgeQueue": "purge-queue",
                   "health": "health"}


def endpoint_view(e: Endpoint, pools: GpuPools, api_url: str,
                  lb_domain: str = "") -> dict[str, Any]:
    """The spec's ``Endpoint`` object of a stored endpoint (plus ``templateId``)."""
    t = e.template
    body: dict[str, Any] = {
        "id": e.id,
        "name": e.name,
        "type": e.type,
        "requestUrls": _request_urls(e, api_url, lb_domain),
        "workers": {"min": e.workersMin, "max": e.workersMax, "idleTimeout": e.idleTimeout},
        "scaling": ({"type": "QUEUE_DELAY", "queueDelay": e.scalerValue}
                    if e.scalerType == "QUEUE_DELAY"
                    else {"type": "REQUEST_COUNT", "requestCount": e.scalerValue}),
        "dataCenterIds": list(e.dataCenterIds),
        "networkVolumes": list(e.networkVolumeIds),
        "timeout": e.executionTimeoutMs,
        "flashboot": "FLASHBOOT" if e.flashboot else "OFF",
        "createdAt": e.createdAt,
        "templateId": e.templateId,
        "image": t.imageName if t else "",
        "args": shlex.join(t.dockerStartCmd) if t else "",
        "disk": t.containerDiskInGb if t else 1,
        "env": e.worker_env,
        "ports": list(t.ports) if t else [],
        "registry": (t.containerRegistryAuthId or None) if t else None,
    }
    if e.computeType == "CPU":
        body["gpu"] = None
        body["cpu"] = [{"id": f, "vcpuCount": e.vcpuCount, "memory": e.vcpuCount * gb_per_vcpu(f)}
                       for f in e.cpuFlavorIds]
    else:
        selected, excluded = pools.selection_of(e.gpuTypeIds)
        body["gpu"] = {"pools": selected, "excludedTypes": excluded, "count": e.gpuCount,
                       "allowedCudaVersions": list(e.allowedCudaVersions),
                       "minCudaVersion": e.minCudaVersion or None}
    return body


def _request_urls(e: Endpoint, api_url: str, lb_domain: str) -> dict[str, str]:
    """``QueueBasedRequestUrls`` (the job API's routes) or ``LoadBalancingRequestUrls``."""
    if e.load_balancer:
        base = base_url(e.id, api_url, lb_domain)
        return {"base": base, "health": base + health_path(e)}
    return {name: f"{api_url}/v2/{e.id}/{route}" for name, route in _REQUEST_ROUTES.items()}


def container_fields(body: ContainerFields) -> dict[str, Any]:
    """The template fields (v1 names) of a body's inline container settings."""
    given = body.container()
    out: dict[str, Any] = {}
    if "image" in given:
        out["imageName"] = given["image"]
    if "args" in given:
        try:
            argv = shlex.split(given["args"])
        except ValueError as err:
            raise Invalid(f"args: {err}", "args") from None
        if len(argv) > MAX_ARGV:
            raise Invalid(f"args: {len(argv)} words; a command has at most {MAX_ARGV}", "args")
        out["dockerStartCmd"] = argv
    if "disk" in given:
        out["containerDiskInGb"] = given["disk"]
    if "ports" in given:
        out["ports"] = given["ports"]
    if "registry" in given:
        out["containerRegistryAuthId"] = given["registry"] or ""
    return out


def container_settings(body: ContainerFields) -> TemplateUpdate:
    """A body's inline container settings as the template change they are (only the fields
    sent; none: no inline settings)."""
    return _typed(TemplateUpdate, container_fields(body))


def _gpu_fields(gpu: Any, pools: GpuPools, creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"computeType": "GPU"}
    if gpu.pools is not None:
        out["gpuTypeIds"] = pools.types_of(gpu.pools, gpu.excludedTypes or [], "gpu")
    if gpu.count is not None:
        out["gpuCount"] = gpu.count
    allowed, minimum = gpu.allowedCudaVersions, gpu.minCudaVersion
    if allowed and minimum:
        raise Invalid("gpu.minCudaVersion: a non-empty gpu.allowedCudaVersions and a floor "
                      "are mutually exclusive", "gpu.minCudaVersion")
    if allowed is not None:
        out["allowedCudaVersions"] = allowed
    if minimum is not None:
        out["minCudaVersion"] = minimum or None
    elif creating:
        out["minCudaVersion"] = None
    return out


def _cpu_fields(cpu: list[Any]) -> dict[str, Any]:
    counts = {c.vcpuCount for c in cpu}
    if len(counts) > 1:
        raise Invalid("cpu: runplane runs one vCPU count per endpoint; give every flavor the "
                      "same vcpuCount", "cpu")
    vcpus = counts.pop()
    if vcpus & (vcpus - 1):
        raise Invalid(f"cpu[0].vcpuCount: {vcpus} is not a power of two", "cpu[0].vcpuCount")
    ids = [c.id for c in cpu]
    if len(set(ids)) != len(ids):
        raise Invalid("cpu: a flavor is listed twice", "cpu")
    return {"computeType": "CPU", "cpuFlavorIds": ids, "vcpuCount": vcpus}


def _common_fields(body: EndpointCreateV2 | EndpointUpdateV2) -> dict[str, Any]:
    out: dict[str, Any] = {}
    given = body.model_fields_set
    if "name" in given:
        out["name"] = body.name
    if body.workers is not None:
        w = body.workers.model_dump(exclude_unset=True)
        for v2, v1 in (("min", "workersMin"), ("max", "workersMax"), ("idleTimeout", "idleTimeout")):
            if v2 in w:
                out[v1] = w[v2]
    if body.scaling is not None:
        s = body.scaling
        out["scalerType"] = s.type
        # v1 keeps whole seconds; a fractional queue delay rounds up (0.5 s waits 1 s).
        out["scalerValue"] = (max(1, int(-(-s.queueDelay // 1))) if s.type == "QUEUE_DELAY"
                              else s.requestCount)
    if body.dataCenterIds is not None:
        out["dataCenterIds"] = body.dataCenterIds
    if body.networkVolumes is not None:
        out["networkVolumeIds"] = body.networkVolumes
    if "timeout" in given and body.timeout is not None:
        out["executionTimeoutMs"] = body.timeout
    if body.flashboot is not None:
        out["flashboot"] = body.flashboot != "OFF"
    if body.env is not None:
        out["env"] = body.env
    return out


def create_settings(body: EndpointCreateV2, pools: GpuPools) -> EndpointSettings:
    """The endpoint settings of a v2 create body; Invalid for what v2's rules refuse beyond
    its schema (not exactly one of gpu and cpu, CUDA set and floor)."""
    return _typed(EndpointSettings, _create_fields(body, pools))


def _create_fields(body: EndpointCreateV2, pools: GpuPools) -> dict[str, Any]:
    if (body.gpu is None) == (body.cpu is None):
        raise Invalid("send exactly one of gpu and cpu", "gpu")
    if body.type == "LOAD_BALANCER" and body.scaling.type != "REQUEST_COUNT":
        raise Invalid("scaling.type: a LOAD_BALANCER endpoint scales by REQUEST_COUNT "
                      "(concurrent in-flight requests per worker)", "scaling.type")
    out = _common_fields(body)
    out.setdefault("workersMin", 0)
    out.setdefault("workersMax", 3)
    out.setdefault("idleTimeout", 10)
    out["executionTimeoutMs"] = body.timeout
    out["flashboot"] = body.flashboot != "OFF"
    if body.gpu is not None:
        if body.gpu.pools is None:
            raise Invalid("gpu.pools: field required", "gpu.pools")
        out |= _gpu_fields(body.gpu, pools, creating=True)
    else:
        out |= _cpu_fields(body.cpu or [])
    if body.templateId is not None:
        out["templateId"] = body.templateId
    return out


def update_changes(body: EndpointUpdateV2, current: Endpoint, pools: GpuPools) -> EndpointUpdate:
    """The endpoint change of a v2 PATCH body (only the fields sent)."""
    return _typed(EndpointUpdate, _update_fields(body, current, pools))


def _update_fields(body: EndpointUpdateV2, current: Endpoint, pools: GpuPools) -> dict[str, Any]:
    if body.gpu is not None and body.cpu is not None:
        raise Invalid("send at most one of gpu and cpu", "gpu")
    out = _common_fields(body)
    if body.gpu is not None:
        out |= _gpu_fields(body.gpu, pools, creating=False)
    elif body.cpu is not None:
        out |= _cpu_fields(body.cpu)
    kind = out.pop("computeType", current.computeType)
    if kind != current.computeType:
        field = "gpu" if kind == "GPU" else "cpu"
        raise Invalid(f"{field}: an endpoint stays {current.computeType}; create a new endpoint "
                      f"to run on {kind}s", field)
    if body.templateId is not None:
        out["templateId"] = body.templateId
    return out


Model = TypeVar("Model", bound=BaseModel)


def _typed(model: type[Model], fields: dict[str, Any]) -> Model:
    """``fields``, valid already (v2's model and the rules above), as ``model``: constructed,
    not validated again; the fields sent are the fields set (PATCH semantics)."""
    return model.model_construct(_fields_set=set(fields), **fields)


# The services' v1 names for what a v2 endpoint body calls otherwise.
_V2_NAMES = (
    ("networkVolumeIds", "networkVolumes"), ("networkVolumeId", "networkVolumes"),
    ("allowedCudaVersions", "gpu.allowedCudaVersions"), ("minCudaVersion", "gpu.minCudaVersion"),
    ("gpuTypeIds", "gpu.pools"), ("gpuCount", "gpu.count"), ("cpuFlavorIds", "cpu"),
    ("vcpuCount", "cpu[0].vcpuCount"), ("workersMin", "workers.min"),
    ("workersMax", "workers.max"), ("idleTimeout", "workers.idleTimeout"),
    ("scalerType", "scaling.type"), ("scalerValue", "scaling"),
    ("executionTimeoutMs", "timeout"), ("imageName", "image"), ("dockerStartCmd", "args"),
    ("containerDiskInGb", "disk"), ("containerRegistryAuthId", "registry"),
)


def v2_name(field: str) -> str:
    """A service's field (``cpuFlavorIds[1]``) under its v2 name (``cpu[1].id``)."""
    for v1, v2 in _V2_NAMES:
        if field == v1 or field.startswith(v1 + "["):
            index = field[len(v1):]
            if v1 == "cpuFlavorIds":
                return f"cpu{index}.id" if index else v2
            if v1 == "gpuTypeIds":  # the types come from the pools: no index of the body's
                return v2
            return v2 + index
    return field


@contextmanager
def v2_field_names() -> Iterator[None]:
    """Answer a service's refusal of a v2 endpoint body in v2's field names: the field it
    blames, and the message's lead that repeats it."""
    try:
        yield
    except DomainError as err:
        field = err.field
        if field and v2_name(field) != field:
            err.field = v2_name(field)
            if err.message.startswith(field):
                err.message = err.field + err.message[len(field):]
                err.args = (err.message,)
        raise
