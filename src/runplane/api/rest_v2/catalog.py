"""/v2/catalog/gpus, /cpus, /datacenters: what users may ask for, and with
``include=AVAILABILITY`` (GPU_AVAILABILITY / CPU_AVAILABILITY for data centers) what this
installation's machines can place now (``services.availability``).

Names come from the server's catalog (RunPod's, plus the operator's); prices and the largest
GPU count per machine from the machines that have the type (0 where none does). runplane
claims no compliance certification and has no global network; its volumes are STANDARD.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from runplane.api.rest_v2.common import User, V2Route, gpu_pools, ok, services
from runplane.catalog.catalog import GpuType
from runplane.errors import Invalid, NotFound
from runplane.services.availability import Scope
from runplane.services.endpoint_rules import gb_per_vcpu
from runplane.system import Services

router = APIRouter(prefix="/v2/catalog", tags=["catalog"], route_class=V2Route)

_CUDA = re.compile(r"[0-9]+\.[0-9]+")  # (fullmatch: ``$`` passes a final newline)
_REGIONS = {"US": "NORTH_AMERICA", "CA": "NORTH_AMERICA", "EU": "EUROPE", "EUR": "EUROPE",
            "AP": "ASIA", "JP": "ASIA", "SEA": "ASIA", "OC": "OCEANIA", "AU": "OCEANIA",
            "SA": "SOUTH_AMERICA", "BR": "SOUTH_AMERICA", "ME": "MIDDLE_EAST", "AF": "AFRICA"}
_CPU_NAMES = {"c": "Compute-Optimized", "g": "General Purpose", "m": "Memory-Optimized"}
CSV = Annotated[str | None, Query()]


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _manufacturer(gpu_id: str) -> str:
    if gpu_id.startswith(("NVIDIA", "Tesla")):
        return "NVIDIA"
    return "AMD" if gpu_id.startswith("AMD") else "UNKNOWN"


def region_of(dc: str) -> str:
    return _REGIONS.get(dc.split("-")[0].upper(), "UNKNOWN")


def _gpu_scope(parts: Services, include: str | None, product: str | None, count: int | None, cloud: str | None,
               countries: str | None, cudas: str | None, min_cuda: str | None) -> Scope | None:
    """None without include=AVAILABILITY (and then no filter may be given: 400)."""
    wanted = _csv(include)
    if any(v != "AVAILABILITY" for v in wanted):
        raise Invalid("include: the only expansion is AVAILABILITY", "include")
    filters = {"product": product, "count": count, "cloud": cloud, "countryCodes": countries,
               "cudaVersions": cudas, "minCudaVersion": min_cuda}
    if not wanted:
        given = [k for k, v in filters.items() if v is not None]
        if given:
            raise Invalid(f"{given[0]}: valid only with include=AVAILABILITY", given[0])
        return None
    products = _csv(product)
    if not products:
        raise Invalid("product: required with include=AVAILABILITY (POD, CLUSTER, SERVERLESS)",
                      "product")
    if any(p not in ("POD", "CLUSTER", "SERVERLESS") for p in products):
        raise Invalid("product: POD, CLUSTER or SERVERLESS", "product")
    if cudas and min_cuda:
        raise Invalid("minCudaVersion: cudaVersions and minCudaVersion are mutually exclusive",
                      "minCudaVersion")
    versions = _csv(cudas)
    if any(not _CUDA.fullmatch(v) for v in versions):
        raise Invalid("cudaVersions: each is major.minor, e.g. 12.8", "cudaVersions")
    if cloud not in (None, "SECURE", "COMMUNITY"):
        raise Invalid("cloud: SECURE or COMMUNITY", "cloud")
    # A data center's country is its id's first part: US-TX-3 is in the US.
    codes = _csv(countries)
    if any(not re.fullmatch(r"[A-Z]{2}", c) for c in codes):
        raise Invalid("countryCodes: ISO 3166-1 alpha-2 codes, uppercase", "countryCodes")
    dcs = frozenset(dc for dc in parts.catalog.data_centers if dc.split("-")[0].upper() in codes)
    return Scope(secure=cloud != "COMMUNITY", data_centers=dcs if codes else None,
                 cuda_versions=frozenset(versions) if versions else None,
                 min_cuda=min_cuda, placeable=any(p != "CLUSTER" for p in products))


def _gpu(parts: Services, request: Request, gpu: GpuType, scope: Scope | None,
         count: int) -> dict[str, Any]:
    offer = parts.availability.offer(gpu.id)
    body: dict[str, Any] = {
        "id": gpu.id, "name": gpu.display_name,
        "pool": gpu_pools(request).pool_of_type.get(gpu.id),
        "manufacturer": _manufacturer(gpu.id), "memory": gpu.memory_in_gb,
        "secure": offer.secure_max > 0, "community": offer.community_max > 0,
        "price": {"secure": offer.secure_price, "community": offer.community_price,
                  "serverless": offer.secure_price or offer.community_price},
        "maxCount": {"secure": offer.secure_max, "community": offer.community_max},
    }
    if scope is not None:
        found = parts.availability.gpu(gpu.id, count, scope)
        body["availability"] = found.availability
        dcs = [{"id": dc, "name": dc, "availability": lvl}
               for dc, lvl in sorted(found.data_centers.items()) if lvl != "NONE"]
        if dcs:
            body["dataCenters"] = dcs
        if found.cuda_versions:
            body["cudaVersions"] = [{"version": v, "available": ok_}
                                    for v, ok_ in sorted(found.cuda_versions.items())]
    return body


@router.get("/gpus")
async def list_gpus(
    request: Request, user: User, include: CSV = None, product: CSV = None,
    count: Annotated[int | None, Query(ge=1)] = None, cloud: CSV = None,
    countryCodes: CSV = None, cudaVersions: CSV = None,
    minCudaVersion: Annotated[str | None, Query(pattern=r"^\d+(\.\d+)?$")] = None,
) -> Response:
    parts = services(request)
    scope = _gpu_scope(parts, include, product, count, cloud, countryCodes, cudaVersions,
                       minCudaVersion)
    out = [_gpu(parts, request, g, scope, count or 1) for g in parts.catalog.gpu_types.values()]
    if scope is not None and scope.data_centers is not None:
        out = [g for g in out if g.get("dataCenters")]
    return ok({"gpus": out})


@router.get("/gpus/{id}")
async def get_gpu(
    request: Request, id: str, user: User, include: CSV = None, product: CSV = None,
    count: Annotated[int | None, Query(ge=1)] = None, cloud: CSV = None,
    countryCodes: CSV = None, cudaVersions: CSV = None,
    minCudaVersion: Annotated[str | None, Query(pattern=r"^\d+(\.\d+)?$")] = None,
) -> Response:
    parts = services(request)
    gpu = parts.catalog.gpu_types.get(id)
    if gpu is None:
        raise NotFound("GPU type", id)
    scope = _gpu_scope(parts, include, product, count, cloud, countryCodes, cudaVersions,
                       minCudaVersion)
    return ok(_gpu(parts, request, gpu, scope, count or 1))


def _cpu(parts: Services, flavor: str, include: str | None, product: str | None,
         vcpus: int | None) -> dict[str, Any]:
    price, most = parts.availability.vcpu_price()
    body: dict[str, Any] = {
        "id": flavor, "name": _CPU_NAMES.get(flavor[-1], flavor),
        "group": f"Gen {flavor[3:-1]}" if flavor[3:-1].isdigit() else flavor,
        "vcpu": {"min": 2, "max": max(2, most)}, "ramGbPerVcpu": float(gb_per_vcpu(flavor)),
        "price": {"securePerVcpu": price, "serverlessPerVcpu": price},
    }
    wanted = _csv(include)
    if any(v != "AVAILABILITY" for v in wanted):
        raise Invalid("include: the only expansion is AVAILABILITY", "include")
    if not wanted:
        if product is not None:
            raise Invalid("product: valid only with include=AVAILABILITY", "product")
        return body
    products = _csv(product)
    if not products or any(p not in ("POD", "SERVERLESS") for p in products):
        raise Invalid("product: required with include=AVAILABILITY (POD, SERVERLESS)", "product")
    overall, by_dc = parts.availability.cpu(vcpus or 2, Scope())
    body["availability"] = overall
    dcs = [{"id": dc, "name": dc, "availability": lvl} for dc, lvl in sorted(by_dc.items())
           if lvl != "NONE"]
    if dcs:
        body["dataCenters"] = dcs
    return body


@router.get("/cpus")
async def list_cpus(request: Request, user: User, include: CSV = None, product: CSV = None,
                    vcpuCount: Annotated[int | None, Query(ge=2)] = None) -> Response:
    parts = services(request)
    return ok({"cpus": [_cpu(parts, f, include, product, vcpuCount)
                        for f in parts.catalog.cpu_flavors]})


@router.get("/cpus/{id}")
async def get_cpu(request: Request, id: str, user: User, include: CSV = None,
                  product: CSV = None,
                  vcpuCount: Annotated[int | None, Query(ge=2)] = None) -> Response:
    parts = services(request)
    if id not in parts.catalog.cpu_flavors:
        raise NotFound("CPU type", id)
    return ok(_cpu(parts, id, include, product, vcpuCount))


def _data_center(parts: Services, dc: str, include: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"id": dc, "name": dc, "region": region_of(dc), "globalNetwork": False,
                            "networkVolumeTypes": ["STANDARD"], "compliance": []}
    if "GPU_AVAILABILITY" in include:
        gpus = parts.availability.gpu_types_in(dc)
        if gpus:
            names = parts.catalog.gpu_types
            body["gpuAvailability"] = [
                {"id": g, "name": names[g].display_name if g in names else g, "availability": lvl}
                for g, lvl in sorted(gpus.items())]
    if "CPU_AVAILABILITY" in include:
        _, by_dc = parts.availability.cpu(2, Scope(data_centers=frozenset([dc])))
        if dc in by_dc:
            body["cpuAvailability"] = [
                {"id": f, "name": _CPU_NAMES.get(f[-1], f), "availability": by_dc[dc]}
                for f in parts.catalog.cpu_flavors]
    return body


def _dc_include(include: str | None) -> list[str]:
    wanted = _csv(include)
    for v in wanted:
        if v not in ("GPU_AVAILABILITY", "CPU_AVAILABILITY"):
            raise Invalid("include: GPU_AVAILABILITY or CPU_AVAILABILITY", "include")
    return wanted


@router.get("/datacenters")
async def list_data_centers(
    request: Request, user: User, include: CSV = None, regions: CSV = None,
    networkVolumeTypes: CSV = None, compliance: CSV = None,
    globalNetwork: Annotated[bool | None, Query()] = None,
) -> Response:
    parts = services(request)
    wanted = _dc_include(include)
    out = [_data_center(parts, dc, wanted) for dc in parts.catalog.data_centers]
    if regions:
        out = [d for d in out if d["region"] in _csv(regions)]
    if networkVolumeTypes:
        out = [d for d in out if set(_csv(networkVolumeTypes)) & set(d["networkVolumeTypes"])]
    if compliance:
        out = [d for d in out if set(_csv(compliance)) <= set(d["compliance"])]
    if globalNetwork is not None:
        out = [d for d in out if d["globalNetwork"] == globalNetwork]
    return ok({"dataCenters": out})


@router.get("/datacenters/{id}")
async def get_data_center(request: Request, id: str, user: User,
                          include: CSV = None) -> Response:
    parts = services(request)
    if id not in parts.catalog.data_centers:
        raise NotFound("data center", id)
    return ok(_data_center(parts, id, _dc_include(include)))
