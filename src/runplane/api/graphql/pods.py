"""Pods: ``pod``, ``myself.pods``, ``podFindAndDeployOnDemand``, ``deployCpuPod``,
``podStop``, ``podResume``, ``podTerminate`` over PodService.

The SDK's ``create_pod`` sends ``templateId: "runpod-ubuntu"`` (RunPod's own CPU template)
for every CPU pod; runplane has no such template, so that id is dropped when an image is
named (and refused as unknown otherwise). ``cloudType: ALL`` means either kind of machine.
"""

from __future__ import annotations

import math
from typing import Any

from graphql import GraphQLResolveInfo

from runplane.api.graphql import wire
from runplane.api.graphql.context import Json, context, parts
from runplane.api.shapes.graphql import pod_out
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
    return pod_out(created, services.catalog, services.clock.now())


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
    return pod_out(await services.pods.stop(principal, input["podId"]), services.catalog,
                   services.clock.now())


async def resume_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    """Start a stopped pod again, with the GPU count it was created with."""
    services, principal = parts(info)
    return pod_out(await services.pods.start(principal, input["podId"]), services.catalog,
                   services.clock.now())


async def terminate_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> None:
    services, principal = parts(info)
    await services.pods.delete(principal, input["podId"])


def get_pod(_: Any, info: GraphQLResolveInfo, input: Json) -> Json:
    services, principal = parts(info)
    return pod_out(services.pods.get_for(principal, input["podId"]), services.catalog,
                   services.clock.now())


def my_pods(_: Any, info: GraphQLResolveInfo) -> list[Json]:
    """The caller's own pods, oldest first."""
    services, principal = parts(info)
    now = services.clock.now()
    return [pod_out(p, services.catalog, now) for p in services.pods.list_for(principal)
            if p.user_id == principal.user_id]


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
