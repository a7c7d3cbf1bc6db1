"""The spec's Pod object (REST v1), rendered from the records of pods and workers alike.

Only facts are reported: fields runplane has no value for (public IP, savings plans, spot
prices; port mappings of processes) are null or empty rather than invented.
"""

from __future__ import annotations

from typing import Any

from runplane.catalog.catalog import Catalog
from runplane.catalog.machines import Machine
from runplane.clock import iso
from runplane.schemas.pod_records import PodFacts, PodRecord


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


def machine_gpu_type(machine: Machine, gpu_type_id: str | None) -> str | None:
    """The GPU type a Pod's ``machine`` is described by: the pod's own, else the machine's
    first."""
    types = machine.gpu_types()
    return gpu_type_id or (next(iter(types)) if types else None)


def gpu_display_name(machine: Machine, gpu_type_id: str | None, catalog: Catalog) -> str | None:
    """The ``machine``'s ``gpuDisplayName``."""
    type_id = machine_gpu_type(machine, gpu_type_id)
    known = catalog.gpu_types.get(type_id) if type_id else None
    return known.display_name if known else type_id


def machine_object(machine: Machine | None, gpu_type_id: str | None, catalog: Catalog,
                   used_gpus: int | None = None) -> dict[str, Any] | None:
    """The Pod's ``machine``, from discovery and the operator's settings."""
    if machine is None:
        return None
    types = machine.gpu_types()
    type_id = machine_gpu_type(machine, gpu_type_id)
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


def pod_object(p: PodFacts, catalog: Catalog) -> dict[str, Any]:
    """One Pod object with every spec field present."""
    machine = p.machine
    return {
        "id": p.id,
        "name": p.name,
        "consumerUserId": p.user_id,
        "desiredStatus": p.desired_status,
        "image": p.image,
        "env": p.env,
        "machineId": machine.id if machine else None,
        "machine": machine_object(machine, p.gpu_type_id, catalog),
        "gpu": gpu_object(p.gpu_type_id, p.gpu_count, catalog, machine),
        "costPerHr": p.cost_per_hr,
        # No savings plans on a self-hosted install: the adjusted cost is the cost.
        "adjustedCostPerHr": p.cost_per_hr,
        "savingsPlans": [],
        "vcpuCount": p.vcpu_count,
        "memoryInGb": p.memory_in_gb,
        "cpuFlavorId": p.cpu_flavor_id,
        "lastStartedAt": started_at(p),
        "lastStatusChange": p.last_status_change,
        "templateId": p.template_id,
        "endpointId": p.endpoint_id,
        "aiApiId": p.endpoint_id,
        "slsVersion": p.sls_version,
        "networkVolume": {"id": p.network_volume_id} if p.network_volume_id else None,
        "volumeMountPath": p.volume_mount_path,
        "ports": p.ports,
        "portMappings": dict(p.port_mappings),
        "publicIp": None,
        "interruptible": p.interruptible,
        "locked": p.locked,
        "containerDiskInGb": p.container_disk_in_gb,
        "volumeInGb": p.volume_in_gb,
        "volumeEncrypted": False,
        "dockerEntrypoint": p.docker_entrypoint,
        "dockerStartCmd": p.docker_start_cmd,
        "containerRegistryAuthId": p.registry_auth_id,
    }


def started_at(p: PodFacts) -> str | None:
    """``lastStartedAt`` as the Pod object shows it."""
    return iso(p.last_started_at) if p.last_started_at else None


def pod(p: PodRecord, catalog: Catalog) -> dict[str, Any]:
    """A pod's Pod object (``/v1/pods``)."""
    body = pod_object(p, catalog)
    body["createdAt"] = iso(p.created_at)  # beyond v1's Pod: REST v2 answers it
    return body
