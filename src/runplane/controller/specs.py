"""Translations from endpoints, pods and templates into scheduler requests and process specs."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from runplane.catalog.catalog import Catalog
from runplane.catalog.spec import enum_of
from runplane.controller.scheduler import WorkerRequest
from runplane.providers.base import HttpPorts


@cache
def _runpod_dcs() -> tuple[str, ...]:
    return tuple(enum_of("EndpointCreateInput", "dataCenterIds"))


def _dcs(ids: list[str] | None, catalog: Catalog) -> tuple[str, ...] | None:
    """None ("anywhere") for no list, or for a list covering every data center RunPod has:
    that is the spec's default, which a self-hosted box in its own data center must satisfy."""
    if not ids:
        return None
    if set(_runpod_dcs()) <= set(ids):
        return None
    return tuple(ids)


def request_for(spec: dict[str, Any], key: str, catalog: Catalog, volume_dc: str | None,
                compute_type: str | None = None) -> WorkerRequest:
    """A scheduler request from an endpoint's or pod's settings (RunPod field names)."""
    ctype = compute_type or spec.get("computeType") or "GPU"
    instance_ids = list(spec.get("instanceIds") or [])
    vcpus = int(spec.get("vcpuCount") or 0)
    if ctype == "CPU" and not instance_ids and spec.get("cpuFlavorIds") and vcpus:
        # A flavor list plus vcpuCount means "<flavor>-<vcpus>-<2 GB per vCPU>" (RunPod's ratio).
        instance_ids = [f"{f}-{vcpus}-{vcpus * 2}" for f in spec["cpuFlavorIds"]]
    return WorkerRequest(
        key=key,
        compute_type=ctype,
        gpu_type_ids=tuple(spec.get("gpuTypeIds") or ()),
        gpu_count=int(spec.get("gpuCount") or 1),
        allowed_cuda_versions=tuple(spec.get("allowedCudaVersions") or ()),
        min_cuda_version=spec.get("minCudaVersion") or None,
        data_center_ids=_dcs(spec.get("dataCenterIds"), catalog),
        volume_data_center=volume_dc,
        instance_ids=tuple(instance_ids),
        vcpu_count=vcpus,
        memory_in_gb=float(spec.get("memoryInGb") or (vcpus * 2 if ctype == "CPU" else 0)),
    )


def command_of(template: Mapping[str, Any]) -> list[str]:
    """dockerEntrypoint + dockerStartCmd, as Docker would combine them."""
    return [*(template.get("dockerEntrypoint") or []), *(template.get("dockerStartCmd") or [])]


def volume_env(path: Path, mount_path: str) -> dict[str, str]:
    """Process workers see a network volume as a directory (``path``, created here) named in
    their environment; container runtimes mount that directory at ``mount_path``."""
    path.mkdir(parents=True, exist_ok=True)
    return {"RUNPLANE_VOLUME_PATH": str(path), "RUNPLANE_VOLUME_MOUNT_PATH": mount_path}


def http_ports(fields: Mapping[str, Any]) -> HttpPorts:
    """A load-balancing worker's ports as its template asks: ``PORT`` (else the template's
    first port, else RunPod's 80) and ``PORT_HEALTH`` (else the same port)."""
    env = fields.get("env") or {}
    listed = [p for p in (str(x).partition("/")[0].strip() for x in fields.get("ports") or ())
              if p.isdigit()]
    port = _port(env.get("PORT")) or (int(listed[0]) if listed else 80)
    return HttpPorts(port, _port(env.get("PORT_HEALTH")) or port)


def _port(value: object) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None
