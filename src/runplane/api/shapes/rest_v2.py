"""REST v2's ``Pod`` (``/v2/pods``), rendered from a pod's record.

v2's pod is v1's with nested settings: ``gpu {id, count}`` is ``gpuTypeIds [id]`` and
``gpuCount``, ``cpu {id, vcpuCount}`` a CPU pod's flavor, ``mounts.persistent`` its volume
disk, ``mounts.network [{volumeId, path}]`` its network volume. ``status`` is RUNNING while it
is meant to run, EXITED otherwise.
"""

from __future__ import annotations

import shlex
from typing import Any

from runplane.api.shapes.pod import started_at
from runplane.clock import iso
from runplane.schemas.pod_records import PodRecord


def pod_v2(p: PodRecord) -> dict[str, Any]:
    """The spec's ``Pod`` of a pod."""
    running = p.desired_status == "RUNNING"
    machine = p.machine
    path = p.volume_mount_path or "/workspace"
    mounts: dict[str, Any] = {}
    if p.volume_in_gb:
        mounts["persistent"] = {"size": p.volume_in_gb, "path": path}
    if p.network_volume_id:
        mounts["network"] = [{"volumeId": p.network_volume_id, "path": path}]
    body: dict[str, Any] = {
        "id": p.id, "name": p.name, "status": "RUNNING" if running else "EXITED",
        "actions": ["stop", "restart", "terminate"] if running else ["start", "terminate"],
        "image": p.image, "args": shlex.join(p.docker_start_cmd),
        "disk": p.container_disk_in_gb or 1, "mounts": mounts, "ports": list(p.ports),
        "env": dict(p.env), "registry": p.registry_auth_id,
        "cloud": "SECURE" if machine is None or machine.secure_cloud else "COMMUNITY",
        # The v1 Pod's machine, which this was first rendered from, names no CUDA version.
        "dataCenterId": machine.data_center_id if machine else None, "cudaVersion": None,
        "ssh": {"proxy": None, "direct": None}, "template": p.template_id,
        "cost": float(p.cost_per_hr or 0), "locked": bool(p.locked),
        "globalNetworking": {"enabled": False},
        "runtime": ({"uptime": 0, "ports": [
            {"private": int(k), "public": v, "type": "tcp", "ip": None}
            for k, v in p.port_mappings.items() if str(k).isdigit()]}
            if running else None),
        "createdAt": iso(p.created_at),
        "startedAt": started_at(p) if running else None,
    }
    if p.has_gpu:
        body["gpu"] = {"id": p.gpu_type_id, "count": p.gpu_count}
    elif p.cpu_flavor_id:
        body["cpu"] = {"id": p.cpu_flavor_id, "vcpuCount": max(2, int(p.vcpu_count or 0)),
                       "memory": max(1, int(p.memory_in_gb or 1))}
    return body
