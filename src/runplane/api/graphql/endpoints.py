"""``saveEndpoint``, ``updateEndpointTemplate``, ``deleteEndpoint`` and ``myself.endpoints``
over EndpointService.

RunPod's GraphQL names GPUs by pool (``gpuIds: "AMPERE_16"``, catalog/pools.py) where REST
lists GPU types, and writes data centers as ``locations: "US,CZ"`` ("" = anywhere). FlashBoot
is ``flashBootType: FLASHBOOT``; the 1.7 SDK asks for it with a name ending in ``-fb``
instead (RunPod's older convention), which is honoured when no ``flashBootType`` is sent.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo

from runplane.api.graphql import wire
from runplane.api.graphql.context import Json, context, parts
from runplane.api.graphql.templates import template_out
from runplane.catalog.catalog import Catalog
from runplane.catalog.pools import GpuPools
from runplane.errors import Invalid
from runplane.schemas.endpoints import Endpoint, EndpointCreate, EndpointKind, EndpointUpdate
from runplane.system import Services

_SAME = ("name", "templateId", "gpuCount", "idleTimeout", "scalerType", "scalerValue",
         "workersMin", "workersMax", "executionTimeoutMs")
# RunPod's GraphQL names the two kinds QB (queue-based) and LB (load-balancing).
_TYPES_IN: dict[str, EndpointKind] = {"QB": "QUEUE", "LB": "LOAD_BALANCER"}
_TYPES_OUT = {v: k for k, v in _TYPES_IN.items()}
RENAMES = {"gpuTypeIds": "gpuIds", "dataCenterIds": "locations", "cpuFlavorIds": "instanceIds",
           "vcpuCount": "instanceIds"}


def endpoint_out(e: Endpoint, services: Services) -> Json:
    """An endpoint in RunPod's GraphQL ``Endpoint`` shape. ``template`` and ``networkVolume``
    are callables, which GraphQL's default resolver calls only when they are selected."""
    catalog = services.catalog
    return {
        "id": e.id,
        "name": e.name,
        "userId": e.userId,
        "templateId": e.templateId,
        "template": lambda _info: template_out(e.template) if e.template else None,
        "type": _TYPES_OUT[e.type],
        "version": e.version,
        "createdAt": e.createdAt,
        "gpuIds": pools_of(catalog).format(e.gpuTypeIds) if e.computeType == "GPU" else "",
        "gpuCount": e.gpuCount,
        "instanceIds": list(e.instanceIds),
        "locations": _locations(e.dataCenterIds, catalog),
        "allowedCudaVersions": wire.commas(e.allowedCudaVersions),
        "networkVolumeId": e.networkVolumeId or None,
        "networkVolume": lambda _info: _volume(services, e.networkVolumeId),
        "idleTimeout": e.idleTimeout,
        "scalerType": e.scalerType,
        "scalerValue": e.scalerValue,
        "workersMin": e.workersMin,
        "workersMax": e.workersMax,
        "workersStandby": None,
        "executionTimeoutMs": e.executionTimeoutMs,
        "flashBootType": "FLASHBOOT" if e.flashboot else "OFF",
        "env": wire.env_out(e.worker_env),  # what workers get, as REST v1's env answers
        "aiKey": None,
    }


def _volume(services: Services, volume_id: str) -> Json | None:
    volume = services.volumes.get(volume_id) if volume_id else None
    return volume.wire() if volume else None


_POOLS: dict[int, tuple[Catalog, GpuPools]] = {}


def pools_of(catalog: Catalog) -> GpuPools:
    """The pools of ``catalog``, built once (a server's catalog does not change)."""
    hit = _POOLS.get(id(catalog))
    if hit is None or hit[0] is not catalog:
        if len(_POOLS) > 16:  # tests build many servers; a real process has one catalog
            _POOLS.clear()
        hit = _POOLS[id(catalog)] = (catalog, GpuPools(catalog))
    return hit[1]


def _locations(data_centers: list[str], catalog: Catalog) -> str:
    """"" for every data center (RunPod's "anywhere"), else the comma string."""
    if set(catalog.default_data_centers) <= set(data_centers):
        return ""
    return wire.commas(data_centers)


def _fields(values: Json, catalog: Catalog, creating: bool) -> Json:
    """EndpointInput -> the REST fields (EndpointCreate/EndpointUpdate names)."""
    out = wire.given(values, _SAME)
    values.pop("type", None)  # save_endpoint has checked it: fixed at create
    instances = values.get("instanceIds") or []
    if instances:
        if values.get("gpuIds"):
            raise Invalid("gpuIds: a CPU endpoint (instanceIds) has no GPUs", "gpuIds")
        out.update(_cpu_fields(instances, catalog))
        if creating:
            out["computeType"] = "CPU"
    elif "gpuIds" in values:
        out["gpuTypeIds"] = pools_of(catalog).parse(values["gpuIds"])
    if values.get("locations"):  # "" or null: anywhere (create) / unchanged (update)
        out["dataCenterIds"] = wire.split(values["locations"])
    if "allowedCudaVersions" in values:
        out["allowedCudaVersions"] = wire.split(values["allowedCudaVersions"] or "")
    volume = values.get("networkVolumeId")
    if volume or (volume == "" and not creating):  # "" detaches on update
        out["networkVolumeId"] = volume
    if values.get("flashBootType"):
        out["flashboot"] = values["flashBootType"] != "OFF"
    elif creating:
        out["flashboot"] = str(values.get("name") or "").endswith("-fb")
    return out


def _cpu_fields(instances: list[str], catalog: Catalog) -> Json:
    """``["cpu3c-2-4", "cpu5c-2-4"]`` -> CPU flavors and one vCPU count."""
    flavors: list[str] = []
    vcpus: set[int] = set()
    for i, instance in enumerate(instances):
        if not catalog.is_cpu_instance_id(instance):
            raise Invalid(f"instanceIds[{i}]: no CPU instance {instance!r} "
                          "('<flavor>-<vCPUs>-<memory GB>', e.g. cpu3c-2-4)", f"instanceIds[{i}]")
        flavor, count, _ = instance.split("-")
        flavors.append(flavor)
        vcpus.add(int(count))
    if len(vcpus) > 1:
        raise Invalid("instanceIds: all instances need the same vCPU count", "instanceIds")
    return {"cpuFlavorIds": flavors, "vcpuCount": vcpus.pop()}


def save_endpoint(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """Create an endpoint, or update the one ``input.id`` names (only the fields sent)."""
    services, principal = parts(info)
    values = {k: v for k, v in input.items() if v is not None}
    endpoint_id = values.pop("id", None)
    kind = _kind(values.get("type"))
    if not endpoint_id:
        body = wire.validated(EndpointCreate, _fields(values, services.catalog, True), RENAMES)
        context(info).count_create()
        created = services.endpoints.create(principal, body, kind or "QUEUE")
        return endpoint_out(created, services)
    current = services.endpoints.get_for(principal, endpoint_id)  # 404 before input errors
    if kind is not None and kind != current.type:
        raise Invalid(f"type: endpoint {endpoint_id} is {_TYPES_OUT[current.type]}; the type is "
                      "fixed when the endpoint is created", "type")
    update = wire.validated(EndpointUpdate, _fields(values, services.catalog, False), RENAMES)
    return endpoint_out(services.endpoints.update(principal, endpoint_id, update), services)


def _kind(given: str | None) -> EndpointKind | None:
    if given is None:
        return None
    if given not in _TYPES_IN:
        raise Invalid(f"type: {given!r} is neither QB (queue-based) nor LB (load-balancing)",
                      "type")
    return _TYPES_IN[given]


def update_endpoint_template(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """Point an endpoint at another template (a new version: workers roll)."""
    services, principal = parts(info)
    update = wire.validated(EndpointUpdate, {"templateId": input["templateId"]})
    updated = services.endpoints.update(principal, input["endpointId"], update)
    return endpoint_out(updated, services)


def delete_endpoint(_: Any, info: GraphQLResolveInfo, id: str) -> None:
    services, principal = parts(info)
    services.endpoints.delete(principal, id)


def my_endpoints(_: Any, info: GraphQLResolveInfo) -> list[Json]:
    """The caller's own endpoints, oldest first."""
    services, principal = parts(info)
    return [endpoint_out(e, services) for e in services.endpoints.list_for(principal)
            if e.userId == principal.user_id]


RESOLVERS = {
    "Mutation": {
        "saveEndpoint": save_endpoint,
        "updateEndpointTemplate": update_endpoint_template,
        "deleteEndpoint": delete_endpoint,
    },
    "User": {"endpoints": my_endpoints},
}
