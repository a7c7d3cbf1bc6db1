"""Pods: ``pod``, ``myself.pods``, ``podFindAndDeployOnDemand``, ``deployCpuPod``,
``podStop``, ``podResume``, ``podTerminate`` over PodService.

The SDK's ``create_pod`` sends ``templateId: "runpod-ubuntu"`` (RunPod's own CPU template)
for every CPU pod; runplane has no such template, so that id is dropped when an image is
named (and refused as unknown otherwise). ``cloudType: ALL`` means either kind of machine.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from graphql import GraphQLResolveInfo

from runplane.api.graphql import wire
from runplane.api.graphql.context import Json, context, parts
from runplane.catalog.catalog import Catalog
from runplane.errors import Invalid
from runplane.schemas.pods import PodCreate

SDK_CPU_TEMPLATE = "runpod-ubuntu"
_SAME = ("name", "templateId", "gpuCount", "volumeInGb", "containerDiskInGb",
         "volumeMountPath", "networkVolumeId", "supportPublicIp", "allowedCudaVersions")
RENAMES = {"dockerStartCmd": "dockerArgs", "gpuTypeIds": "gpuTypeId",
           "dataCenterIds": "dataCenterId", "countryCodes": "countryCode",
           "minVCPUPerGPU": "minVcpuCount", "minRAMPerGPU": "minMemoryInGb",
           "minDownloadMbps": "minDownload", "minUploadMbps": "minUpload",
           "cpuFlavorIds": "instanceId", "vcpuCount": "instanceId"}


def pod_out(pod: Json, now: float) -> Json:
    """A pod (REST v1's Pod object, ``PodService.view``) in RunPod's GraphQL shape."""
    running = pod["desiredStatus"] == "RUNNING" and pod["lastStartedAt"] is not None
    uptime = max(0, int(now - datetime.fromisoformat(pod["lastStartedAt"]).timestamp())) \
        if running else 0
    machine = pod["machine"]
    gpu = pod["gpu"]
    return {
        "id": pod["id"],
        "name": pod["name"],
        "imageName": pod["image"],
        "env": [f"{k}={v}" for k, v in pod["env"].items()],
        "desiredStatus": pod["desiredStatus"],
        "lastStatusChange": pod["lastStatusChange"],
        "podType": "ON_DEMAND",
        "machineId": pod["machineId"],
        "machine": {
            "gpuDisplayName": machine["gpuDisplayName"] if machine else None,
            "podHostId": None,
            "dataCenterId": machine["dataCenterId"] if machine else None,
            "location": machine["location"] if machine else None,
            "secureCloud": machine["secureCloud"] if machine else None,
        },
        "gpuCount": gpu["count"] if gpu else 0,
        "vcpuCount": pod["vcpuCount"],
        "memoryInGb": pod["memoryInGb"],
        "costPerHr": pod["costPerHr"],
        "containerDiskInGb": pod["containerDiskInGb"],
        "volumeInGb": pod["volumeInGb"],
        "volumeMountPath": pod["volumeMountPath"],
        "dockerArgs": wire.argv_out(pod["dockerStartCmd"]),
        "dockerId": None,
        "ports": wire.commas(pod["ports"]),
        "port": None,
        "uptimeSeconds": uptime,
        "templateId": pod["templateId"],
        "networkVolumeId": (pod["networkVolume"] or {}).get("id"),
        "runtime": {"uptimeInSeconds": uptime, "ports": _ports(pod)} if running else None,
    }


def _ports(pod: Json) -> list[Json]:
    """The pod's ports with where the runtime published them (processes: the same port)."""
    mapped = pod["portMappings"] or {}
    out = []
    for spec in pod["ports"]:
        number, _, kind = spec.partition("/")
        if not number.isdigit():
            continue
        out.append({"ip": None, "isIpPublic": False, "privatePort": int(number),
                    "publicPort": mapped.get(number, int(number)), "type": kind or "tcp"})
    return out


def _common(values: Json) -> Json:
    """The input fields GPU and CPU deployments share, in REST's names."""
    out = wire.given(values, _SAME)
    if values.get("imageName"):
        out["imageName"] = values["imageName"]
    if "dockerArgs" in values:
        out["dockerStartCmd"] = wire.argv_in(values["dockerArgs"])
    if "ports" in values:
        out["ports"] = wire.split(values["ports"])
    if "env" in values:
        out["env"] = wire.env_in(values["env"])
    if values.get("dataCenterId"):
        out["dataCenterIds"] = [values["dataCenterId"]]
    if values.get("countryCode"):
        out["countryCodes"] = [values["countryCode"]]
    if values.get("cloudType") in ("SECURE", "COMMUNITY"):
        out["cloudType"] = values["cloudType"]
    if "globalNetwork" in values:
        out["globalNetworking"] = values["globalNetwork"]
    for gql, rest in (("minDownload", "minDownloadMbps"), ("minUpload", "minUploadMbps")):
        if gql in values:
            out[rest] = float(values[gql])
    if out.get("templateId") == SDK_CPU_TEMPLATE and out.get("imageName"):
        del out["templateId"]
    return out


def _create(info: GraphQLResolveInfo, fields: Json) -> Json:
    services, principal = parts(info)
    body = wire.validated(PodCreate, fields, RENAMES)
    context(info).count_create()
    created = services.pods.create(principal, body)
    return pod_out(created, services.clock.now())


def deploy_gpu_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """A GPU pod of ``gpuTypeId`` (or any of ``gpuTypeIdList``)."""
    values = {k: v for k, v in input.items() if v is not None}
    fields = _common(values)
    types = values.get("gpuTypeIdList") or ([values["gpuTypeId"]] if values.get("gpuTypeId") else [])
    if not types:
        raise Invalid("gpuTypeId: required for a GPU pod (deployCpuPod makes CPU pods)", "gpuTypeId")
    fields |= {"computeType": "GPU", "gpuTypeIds": types}
    count = max(1, fields.get("gpuCount", 1))
    for gql, rest in (("minVcpuCount", "minVCPUPerGPU"), ("minMemoryInGb", "minRAMPerGPU")):
        if gql in values:  # RunPod's are per pod, REST's per GPU
            fields[rest] = math.ceil(values[gql] / count)
    return _create(info, fields)


def deploy_cpu_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """A CPU pod, of ``instanceId`` (``<flavor>-<vCPUs>-<memory GB>``) when given."""
    services, _principal = parts(info)
    values = {k: v for k, v in input.items() if v is not None}
    fields = _common(values) | {"computeType": "CPU"}
    if values.get("instanceId"):
        fields |= _instance(values["instanceId"], services.catalog)
    return _create(info, fields)


def _instance(instance: str, catalog: Catalog) -> Json:
    if not catalog.is_cpu_instance_id(instance):
        raise Invalid(f"instanceId: no CPU instance {instance!r} "
                      "('<flavor>-<vCPUs>-<memory GB>', e.g. cpu3c-2-4)", "instanceId")
    flavor, vcpus, _ = instance.split("-")
    return {"cpuFlavorIds": [flavor], "vcpuCount": int(vcpus)}


async def stop_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    services, principal = parts(info)
    return pod_out(await services.pods.stop(principal, input["podId"]), services.clock.now())


async def resume_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """Start a stopped pod again, with the GPU count it was created with."""
    services, principal = parts(info)
    return pod_out(await services.pods.start(principal, input["podId"]), services.clock.now())


async def terminate_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> None:
    services, principal = parts(info)
    await services.pods.delete(principal, input["podId"])


def get_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    services, principal = parts(info)
    return pod_out(services.pods.get_for(principal, input["podId"]), services.clock.now())


def my_pods(_: Any, info: GraphQLResolveInfo) -> list[Json]:
    """The caller's own pods, oldest first."""
    services, principal = parts(info)
    now = services.clock.now()
    return [pod_out(p, now) for p in services.pods.list_for(principal, {})
            if p["consumerUserId"] == principal.user_id]


RESOLVERS = {
    "Query": {"pod": get_pod},
    "Mutation": {
        "podFindAndDeployOnDemand": deploy_gpu_pod,
        "deployCpuPod": deploy_cpu_pod,
        "podStop": stop_pod,
        "podResume": resume_pod,
        "podTerminate": terminate_pod,
    },
    "User": {"pods": my_pods},
}
