"""Pure checks and derivations for endpoint settings (no I/O): the template an endpoint may
run, catalog names, ranges that span fields, volume placement, CPU instance ids.

Every function takes the complete settings (defaults applied, an update merged onto the
stored endpoint) and raises ``Invalid`` (a 400 on the wire) naming the field at fault.
"""

from __future__ import annotations

from typing import Any

from runplane.catalog.catalog import Catalog
from runplane.errors import Invalid
from runplane.schemas.templates import Template

# Memory per vCPU of RunPod's CPU flavors: "c" compute-optimised 2 GB, "g" general 4 GB.
_GB_PER_VCPU = {"c": 2, "g": 4}


def cuda_key(version: str) -> tuple[int, ...]:
    """'12.10' > '12.9': compare CUDA versions numerically."""
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def gb_per_vcpu(flavor: str) -> int:
    """Memory per vCPU of a CPU flavor (by its last letter; 2 GB when unknown)."""
    return _GB_PER_VCPU.get(flavor[-1:], 2)


def instance_ids(flavors: list[str], vcpus: int) -> list[str]:
    """RunPod's CPU instance ids, ``<flavor>-<vcpus>-<memoryGb>`` (``cpu3c-8-16``)."""
    return [f"{f}-{vcpus}-{vcpus * _GB_PER_VCPU.get(f[-1], 2)}" for f in flavors]


def usable_template(template: Template | None, template_id: str, owner_id: str) -> Template:
    """The one rule for the template an endpoint runs, whatever the surface (v1, GraphQL,
    REST v2 with or without inline container settings, which copy it): a serverless
    template of the endpoint's owner. The owner, not the caller: an admin changing another
    user's endpoint picks among that user's templates, as for its volumes and registry
    credentials, so no user's environment or credentials reach another's workers. Another
    user's template, public or not, reads as a missing one (``template`` None: no such id).
    """
    if template is None or template.userId != owner_id:
        raise Invalid(f"templateId: no template {template_id!r}", "templateId")
    if not template.isServerless:
        raise Invalid(
            f"templateId: template {template_id} is a Pod template; endpoints need a "
            "template created with isServerless: true",
            "templateId",
        )
    return template


def _unknown(field: str, values: list[str], allowed: list[str] | dict[str, Any], what: str) -> None:
    for i, value in enumerate(values):
        if value not in allowed:
            raise Invalid(f"{field}[{i}]: unknown {what} {value!r}", f"{field}[{i}]")


def check_catalog_names(catalog: Catalog, s: dict[str, Any]) -> None:
    """GPU types, CPU flavors, CUDA versions and data centers must be in the catalog.

    Fields that do not apply to the endpoint's compute type are still checked, so a typo is
    reported instead of silently stored.
    """
    _unknown("gpuTypeIds", s["gpuTypeIds"], catalog.gpu_types, "GPU type")
    _unknown("cpuFlavorIds", s["cpuFlavorIds"], catalog.cpu_flavors, "CPU flavor")
    _unknown("allowedCudaVersions", s["allowedCudaVersions"], catalog.cuda_versions, "CUDA version")
    _unknown("dataCenterIds", s["dataCenterIds"], catalog.data_centers, "data center")
    minimum = s.get("minCudaVersion")
    if minimum is not None and minimum not in catalog.cuda_versions:
        raise Invalid(f"minCudaVersion: unknown CUDA version {minimum!r}", "minCudaVersion")


def check_consistency(s: dict[str, Any]) -> None:
    """Rules across fields: non-empty choices, worker bounds, CUDA bounds."""
    if s["computeType"] == "GPU" and not s["gpuTypeIds"]:
        raise Invalid("gpuTypeIds: a GPU endpoint needs at least one GPU type", "gpuTypeIds")
    if s["computeType"] == "CPU" and not s["cpuFlavorIds"]:
        raise Invalid("cpuFlavorIds: a CPU endpoint needs at least one CPU flavor", "cpuFlavorIds")
    if not s["dataCenterIds"]:
        raise Invalid("dataCenterIds: at least one data center is needed", "dataCenterIds")
    if s.get("type") == "LOAD_BALANCER" and s["scalerType"] != "REQUEST_COUNT":
        raise Invalid("scalerType: a load-balancing endpoint scales by REQUEST_COUNT (its "
                      "workers' concurrent in-flight requests)", "scalerType")
    if s["workersMin"] > s["workersMax"]:
        raise Invalid(
            f"workersMin: {s['workersMin']} is more than workersMax ({s['workersMax']})",
            "workersMin",
        )
    minimum = s.get("minCudaVersion")
    allowed = s["allowedCudaVersions"]
    if minimum and allowed and not any(cuda_key(v) >= cuda_key(minimum) for v in allowed):
        raise Invalid(
            f"allowedCudaVersions: none of {allowed} is at least minCudaVersion {minimum}",
            "allowedCudaVersions",
        )


def check_volume_placement(
    volume_field: str, volumes: list[tuple[str, str]], data_centers: list[str]
) -> None:
    """Each (volume id, data center) must be in an allowed data center, one volume per DC."""
    seen: dict[str, str] = {}
    for i, (volume_id, dc) in enumerate(volumes):
        field = f"{volume_field}[{i}]" if volume_field == "networkVolumeIds" else volume_field
        if dc not in data_centers:
            raise Invalid(
                f"{field}: network volume {volume_id} is in {dc}, which dataCenterIds excludes",
                field,
            )
        if dc in seen:
            raise Invalid(
                f"{field}: network volumes {seen[dc]} and {volume_id} are both in {dc}; "
                "attach at most one volume per data center",
                field,
            )
        seen[dc] = volume_id


def requested_volume_ids(given: dict[str, Any]) -> tuple[str, list[str]] | None:
    """The volume list a request asks for and the field to blame, or None if it sends none.

    ``networkVolumeId`` (the single-volume field) comes first, then ``networkVolumeIds``;
    null or "" / [] detach every volume.
    """
    if "networkVolumeId" not in given and "networkVolumeIds" not in given:
        return None
    ids: list[str] = []
    single = given.get("networkVolumeId")
    if single:
        ids.append(single)
    for volume_id in given.get("networkVolumeIds") or []:
        if volume_id not in ids:
            ids.append(volume_id)
    field = "networkVolumeIds" if given.get("networkVolumeIds") else "networkVolumeId"
    return field, ids


def apply_compute_type(catalog: Catalog, s: dict[str, Any]) -> None:
    """Fill what follows from the compute type: CPU instance ids, or GPU-only fields."""
    if s["computeType"] == "CPU":
        s["instanceIds"] = instance_ids(s["cpuFlavorIds"], s["vcpuCount"])
        for instance in s["instanceIds"]:
            if not catalog.is_cpu_instance_id(instance):
                raise Invalid(f"vcpuCount: no CPU instance {instance!r}", "vcpuCount")
    else:
        s["instanceIds"] = []
