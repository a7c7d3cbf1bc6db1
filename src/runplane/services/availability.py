"""What this installation can place now: free GPUs and vCPUs per data center, from its real
machines and what live workers and pods hold (``controller.allocations``).

REST v2's catalog answers this with ``include=AVAILABILITY``. Levels count how many more
units of the asked size fit: none is NONE, one LOW, two or three MEDIUM, four or more HIGH.
CUDA versions are the drivers' of the machines with the GPU type, each available while one
of those machines has room. Clusters (several pods on a fast interconnect) do not exist
here, so availability for the CLUSTER product alone is NONE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from runplane.catalog.machines import cuda_key
from runplane.controller.scheduler import MachineLoad

LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")


def level(units: int) -> str:
    """The availability level of ``units`` placements that still fit."""
    if units <= 0:
        return "NONE"
    return "LOW" if units == 1 else "MEDIUM" if units <= 3 else "HIGH"


@dataclass(frozen=True)
class Scope:
    """Which machines count: the cloud, the data centers (None: all), the CUDA versions
    (exact ``cuda_versions`` or at least ``min_cuda``), and whether the product asked for
    is one runplane places (POD, SERVERLESS) rather than only CLUSTER."""

    secure: bool = True
    data_centers: frozenset[str] | None = None
    cuda_versions: frozenset[str] | None = None
    min_cuda: str | None = None
    placeable: bool = True

    def admits(self, load: MachineLoad) -> bool:
        machine = load.machine
        if not self.placeable or machine.secure_cloud != self.secure:
            return False
        return self.data_centers is None or machine.data_center_id in self.data_centers

    def admits_cuda(self, version: str | None) -> bool:
        if self.cuda_versions is not None:
            return version in self.cuda_versions
        if self.min_cuda is not None:
            return version is not None and cuda_key(version) >= cuda_key(self.min_cuda)
        return True


@dataclass
class GpuAvailability:
    """One GPU type's availability: overall, per data center, per CUDA version."""

    availability: str = "NONE"
    data_centers: dict[str, str] = field(default_factory=dict)
    cuda_versions: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuOffer:
    """What the machines offer of a GPU type regardless of load: price and largest count."""

    secure_price: float = 0.0
    community_price: float = 0.0
    secure_max: int = 0
    community_max: int = 0


class Availability:
    """Reads the machines' load (``loads``: ``Allocations.loads``) at each call."""

    def __init__(self, loads: Callable[[], list[MachineLoad]]) -> None:
        self._loads = loads

    def gpu(self, gpu_type_id: str, count: int, scope: Scope) -> GpuAvailability:
        """How many ``count``-GPU placements of the type fit, where ``scope`` says."""
        out = GpuAvailability()
        units_by_dc: dict[str, int] = {}
        for load in self._loads():
            machine = load.machine
            cuda = machine.cuda_version
            if not load.machine.gpus or not scope.admits(load):
                continue
            if not any(g.type_id == gpu_type_id for g in machine.gpus):
                continue
            dc = machine.data_center_id
            units_by_dc.setdefault(dc, 0)
            if cuda is not None:
                out.cuda_versions.setdefault(cuda, False)
            if not scope.admits_cuda(cuda):
                continue
            units = len(load.free_gpus(gpu_type_id)) // count
            units_by_dc[dc] += units
            if cuda is not None and units:
                out.cuda_versions[cuda] = True
        if scope.cuda_versions is not None or scope.min_cuda is not None:
            out.cuda_versions = {v: ok for v, ok in out.cuda_versions.items()
                                 if scope.admits_cuda(v)}
        out.data_centers = {dc: level(units) for dc, units in units_by_dc.items()}
        out.availability = level(sum(units_by_dc.values()))
        return out

    def cpu(self, vcpu_count: int, scope: Scope) -> tuple[str, dict[str, str]]:
        """(overall, per data center) levels of ``vcpu_count``-vCPU placements."""
        units_by_dc: dict[str, int] = {}
        for load in self._loads():
            if not scope.admits(load):
                continue
            dc = load.machine.data_center_id
            units_by_dc[dc] = units_by_dc.get(dc, 0) + int(load.free_vcpus // vcpu_count)
        return (level(sum(units_by_dc.values())),
                {dc: level(units) for dc, units in units_by_dc.items()})

    def gpu_types_in(self, data_center_id: str) -> dict[str, str]:
        """GPU type id -> level of one-GPU placements, for the types a data center has."""
        units: dict[str, int] = {}
        for load in self._loads():
            if load.machine.data_center_id != data_center_id:
                continue
            for gpu in load.machine.gpus:
                units.setdefault(gpu.type_id, 0)
            for type_id in set(units):
                units[type_id] += len(load.free_gpus(type_id))
        return {type_id: level(n) for type_id, n in units.items()}

    def offer(self, gpu_type_id: str) -> GpuOffer:
        """The type's lowest hourly price and largest per-machine count, by cloud."""
        prices: dict[bool, list[float]] = {True: [], False: []}
        largest = {True: 0, False: 0}
        for load in self._loads():
            machine = load.machine
            n = sum(1 for g in machine.gpus if g.type_id == gpu_type_id)
            if n:
                prices[machine.secure_cloud].append(machine.cost_per_gpu_hr)
                largest[machine.secure_cloud] = max(largest[machine.secure_cloud], n)
        return GpuOffer(min(prices[True], default=0.0), min(prices[False], default=0.0),
                        largest[True], largest[False])

    def data_centers(self) -> set[str]:
        """The data centers that have at least one machine."""
        return {load.machine.data_center_id for load in self._loads()}

    def vcpu_price(self) -> tuple[float, int]:
        """(lowest price per vCPU-hour, most vCPUs one machine offers)."""
        loads = self._loads()
        return (min((m.machine.cost_per_vcpu_hr for m in loads), default=0.0),
                max((m.machine.cpu_count for m in loads), default=0))
