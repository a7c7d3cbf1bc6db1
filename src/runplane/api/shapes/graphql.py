"""RunPod's GraphQL ``Pod`` (``pod``, ``myself.pods``, the pod mutations), rendered from a
pod's record."""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from runplane.api.shapes.pod import gpu_display_name, started_at
from runplane.catalog.catalog import Catalog
from runplane.schemas.pod_records import PodRecord


def pod_out(p: PodRecord, catalog: Catalog, now: float) -> dict[str, Any]:
    """A pod in RunPod's GraphQL shape; ``now`` for its uptime."""
    shown = started_at(p)
    running = p.desired_status == "RUNNING" and shown is not None
    # From the start as shown (to the millisecond), so uptime agrees with it.
    uptime = max(0, int(now - datetime.fromisoformat(shown).timestamp())) \
        if running and shown else 0
    machine = p.machine
    return {
        "id": p.id,
        "name": p.name,
        "imageName": p.image,
        "env": [f"{k}={v}" for k, v in p.env.items()],
        "desiredStatus": p.desired_status,
        "lastStatusChange": p.last_status_change,
        "podType": "ON_DEMAND",
        "machineId": machine.id if machine else None,
        "machine": {
            "gpuDisplayName": gpu_display_name(machine, p.gpu_type_id, catalog)
            if machine else None,
            "podHostId": None,
            "dataCenterId": machine.data_center_id if machine else None,
            "location": machine.location if machine else None,
            "secureCloud": machine.secure_cloud if machine else None,
        },
        "gpuCount": p.gpu_count if p.has_gpu else 0,
        "vcpuCount": p.vcpu_count,
        "memoryInGb": p.memory_in_gb,
        "costPerHr": p.cost_per_hr,
        "containerDiskInGb": p.container_disk_in_gb,
        "volumeInGb": p.volume_in_gb,
        "volumeMountPath": p.volume_mount_path,
        # As the schema's string arguments take them (graphql/wire.py's argv_in, split).
        "dockerArgs": shlex.join(p.docker_start_cmd),
        "dockerId": None,
        "ports": ",".join(p.ports),
        "port": None,
        "uptimeSeconds": uptime,
        "templateId": p.template_id,
        "networkVolumeId": p.network_volume_id,
        "runtime": {"uptimeInSeconds": uptime, "ports": _ports(p)} if running else None,
    }


def _ports(p: PodRecord) -> list[dict[str, Any]]:
    """The pod's ports with where the runtime published them (processes: the same port)."""
    mapped = p.port_mappings
    out = []
    for spec in p.ports:
        number, _, kind = spec.partition("/")
        if not number.isdigit():
            continue
        out.append({"ip": None, "isIpPublic": False, "privatePort": int(number),
                    "publicPort": mapped.get(number, int(number)), "type": kind or "tcp"})
    return out
