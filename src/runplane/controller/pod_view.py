"""The spec's Pod object, filled from what runplane knows (workers and pods alike).

Only facts are reported: fields runplane has no value for (public IP, savings plans, spot
prices; port mappings of processes) are null or empty rather than invented.
"""

from __future__ import annotations

from typing import Any

from runplane.catalog.catalog import Catalog
from runplane.catalog.machines import Machine
from runplane.clock import iso


def gpu_object(gpu_type_id: str | None, count: int, catalog: Catalog,
               machine: Machine | None) -> dict[str, Any] | None:
    """The Pod's ``gpu``: type, count and this machine's price per GPU."""
    if not gpu_type_id or count <= 0:
        return None
    known = catalog.gpu_types.get(gpu_type_id)
    price = machine.cost_per_gpu_hr if machine else 0.0
    return {
        "id": gpu_type_id,
        "count": count,
        "displayName": known.display_name if known else gpu_type_id,
        "securePrice": price if machine and machine.secure_cloud else None,
        "communityPrice": price if machine and not machine.secure_cloud else None,
    }


def machine_object(machine: Machine | None, gpu_type_id: str | None, catalog: Catalog,
                   used_gpus: int | None = None) -> dict[str, Any] | None:
    """The Pod's ``machine``, from discovery and the operator's settings."""
    if machine is None:
        return None
    types = machine.gpu_types()
    type_id = gpu_type_id or (next(iter(types)) if types else None)
    known = catalog.gpu_types.get(type_id) if type_id else None
    out: dict[str, Any] = {
        "minPodGpuCount": 1 if types else 0,
        "gpuTypeId": type_id,
        "gpuType": ({"id": type_id, "count": types.get(type_id, 0),
                     "displayName": known.display_name if known else type_id}
                    if type_id else None),
        "cpuCount": machine.cpu_count,
        "cpuTypeId": machine.cpu_type,
        "cpuType": {"id": machine.cpu_type, "displayName": machine.cpu_type},
        "location": machine.location,
        "dataCenterId": machine.data_center_id,
        "supportPublicIp": machine.support_public_ip,
        "secureCloud": machine.secure_cloud,
        "costPerHr": round(machine.cost_per_gpu_hr * len(machine.gpus)
                           + machine.cost_per_vcpu_hr * machine.cpu_count, 6),
        "currentPricePerGpu": machine.cost_per_gpu_hr,
        "gpuDisplayName": known.display_name if known else type_id,
        "note": f"{machine.provider} provider machine {machine.name}",
    }
    if used_gpus is not None and type_id:
        out["gpuAvailable"] = max(0, types.get(type_id, 0) - used_gpus)
    return out


def pod_object(
    *,
    pod_id: str,
    name: str,
    user_id: str,
    desired_status: str,
    image: str,
    env: dict[str, str],
    machine: Machine | None,
    catalog: Catalog,
    gpu_type_id: str | None,
    gpu_count: int,
    cost_per_hr: float,
    vcpu_count: float,
    memory_in_gb: float,
    last_started_at: float | None,
    last_status_change: str | None,
    template: dict[str, Any] | None = None,
    template_id: str | None = None,
    endpoint_id: str | None = None,
    sls_version: int | None = None,
    network_volume: dict[str, Any] | None = None,
    volume_mount_path: str | None = None,
    ports: list[str] | None = None,
    cpu_flavor_id: str | None = None,
    interruptible: bool = False,
    locked: bool = False,
    container_disk_in_gb: int | None = None,
    volume_in_gb: int | None = None,
    docker_entrypoint: list[str] | None = None,
    docker_start_cmd: list[str] | None = None,
    registry_auth_id: str | None = None,
    port_mappings: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One Pod object with every spec field present."""
    t = template or {}
    body: dict[str, Any] = {
        "id": pod_id,
        "name": name,
        "consumerUserId": user_id,
        "desiredStatus": desired_status,
        "image": image,
        "env": env,
        "machineId": machine.id if machine else None,
        "machine": machine_object(machine, gpu_type_id, catalog),
        "gpu": gpu_object(gpu_type_id, gpu_count, catalog, machine),
        "costPerHr": cost_per_hr,
        # No savings plans on a self-hosted install: the adjusted cost is the cost.
        "adjustedCostPerHr": cost_per_hr,
        "savingsPlans": [],
        "vcpuCount": vcpu_count,
        "memoryInGb": memory_in_gb,
        "cpuFlavorId": cpu_flavor_id,
        "lastStartedAt": iso(last_started_at) if last_started_at else None,
        "lastStatusChange": last_status_change,
        "templateId": template_id,
        "endpointId": endpoint_id,
        "aiApiId": endpoint_id,
        "slsVersion": sls_version,
        "networkVolume": network_volume,
        "volumeMountPath": volume_mount_path if volume_mount_path is not None
        else t.get("volumeMountPath"),
        "ports": ports if ports is not None else list(t.get("ports") or []),
        # Container ports published by the container runtime ({"8888": 8888} on the host
        # network); processes listen on the host itself, so nothing is remapped for them.
        "portMappings": dict(port_mappings or {}),
        "publicIp": None,
        "interruptible": interruptible,
        "locked": locked,
        "containerDiskInGb": container_disk_in_gb if container_disk_in_gb is not None
        else t.get("containerDiskInGb"),
        "volumeInGb": volume_in_gb if volume_in_gb is not None else t.get("volumeInGb"),
        "volumeEncrypted": False,
        "dockerEntrypoint": docker_entrypoint if docker_entrypoint is not None
        else list(t.get("dockerEntrypoint") or []),
        "dockerStartCmd": docker_start_cmd if docker_start_cmd is not None
        else list(t.get("dockerStartCmd") or []),
        "containerRegistryAuthId": registry_auth_id or t.get("containerRegistryAuthId") or None,
    }
    return body
