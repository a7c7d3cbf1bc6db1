"""Machine discovery: this host's CPUs, memory, disk and NVIDIA GPUs, as RunPod names them.

GPUs come from NVML (nvidia-ml-py) when a driver is present; with no driver there are no GPU
rows, never invented ones. An operator may *declare* GPUs in the config (for demos and tests on
hosts without GPUs); those are reported with ``declared=True`` so nobody mistakes them for
detected hardware. What cannot be discovered (data center, location, price) comes from the
``[machine]`` settings.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from runplane.catalog.catalog import Catalog
from runplane.config import MachineSettings


@dataclass(frozen=True)
class Gpu:
    """One GPU device of a machine."""

    index: int
    type_id: str  # RunPod's gpuTypeId when the model is one RunPod rents, else NVML's name
    memory_in_gb: int
    cuda_version: str  # the driver's CUDA version, e.g. "12.4"
    declared: bool = False
    uuid: str = ""


@dataclass
class Machine:
    """A host that runs workers and pods, with what the scheduler needs to place them."""

    id: str
    name: str
    cpu_type: str
    cpu_count: int  # logical CPUs offered to workers (after the operator's reservation)
    memory_in_gb: float
    disk_in_gb: float
    data_center_id: str
    location: str
    secure_cloud: bool
    support_public_ip: bool
    cost_per_gpu_hr: float
    cost_per_vcpu_hr: float
    gpus: list[Gpu] = field(default_factory=list)
    provider: str = "local"

    @property
    def cuda_version(self) -> str | None:
        """The driver CUDA version (the lowest one if GPUs somehow disagree)."""
        versions = sorted({g.cuda_version for g in self.gpus}, key=cuda_key)
        return versions[0] if versions else None

    def gpu_types(self) -> dict[str, int]:
        """GPU type id -> how many of them this machine has."""
        out: dict[str, int] = {}
        for g in self.gpus:
            out[g.type_id] = out.get(g.type_id, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "cpuTypeId": self.cpu_type,
            "cpuCount": self.cpu_count,
            "memoryInGb": self.memory_in_gb,
            "diskInGb": self.disk_in_gb,
            "dataCenterId": self.data_center_id,
            "location": self.location,
            "secureCloud": self.secure_cloud,
            "supportPublicIp": self.support_public_ip,
            "costPerGpuHr": self.cost_per_gpu_hr,
            "costPerVcpuHr": self.cost_per_vcpu_hr,
            "cudaVersion": self.cuda_version,
            "gpus": [
                {
                    "index": g.index,
                    "gpuTypeId": g.type_id,
                    "memoryInGb": g.memory_in_gb,
                    "cudaVersion": g.cuda_version,
                    "declared": g.declared,
                }
                for g in self.gpus
            ],
        }


def cuda_key(version: str) -> tuple[int, ...]:
    """Sortable form of "12.4" -> (12, 4); unparsable parts count as 0."""
    out = []
    for part in version.split("."):
        out.append(int(part) if part.isdigit() else 0)
    return tuple(out)


def gpu_type_id_for(nvml_name: str, catalog: Catalog | None) -> str:
    """Map NVML's device name onto RunPod's gpuTypeId.

    NVML reports names such as "NVIDIA H100 80GB HBM3" or "NVIDIA GeForce RTX 4090", which are
    RunPod's ids already; the match ignores case and repeated spaces so that the catalog's odd
    variants ("NVIDIA  A30") map too. Unknown models keep NVML's name.
    """
    name = " ".join(nvml_name.split())
    if catalog is None:
        return name
    if name in catalog.gpu_types:
        return name
    wanted = name.lower()
    for type_id in catalog.gpu_types:
        if " ".join(type_id.split()).lower() == wanted:
            return type_id
    # Some drivers omit the vendor prefix ("Tesla T4" vs "NVIDIA Tesla T4").
    for type_id in catalog.gpu_types:
        if type_id.lower().endswith(wanted) or wanted.endswith(type_id.lower()):
            return type_id
    return name


def detect_nvidia_gpus(catalog: Catalog | None = None) -> list[Gpu]:
    """This host's NVIDIA GPUs through NVML; [] when there is no driver or no device."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        raw = pynvml.nvmlSystemGetCudaDriverVersion()  # e.g. 12040
        cuda = f"{raw // 1000}.{(raw % 1000) // 10}"
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
            gpus.append(Gpu(i, gpu_type_id_for(name, catalog), round(mem / 2**30), cuda, uuid=uuid))
        return gpus
    except pynvml.NVMLError:
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _cpu_model() -> str:
    """The CPU model name, from /proc/cpuinfo on Linux, else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def declared_gpus(settings: MachineSettings, catalog: Catalog | None, first_index: int) -> list[Gpu]:
    """The operator's declared GPUs, numbered after the detected ones."""
    out = []
    index = first_index
    for decl in settings.declared_gpus:
        type_id = gpu_type_id_for(decl.type, catalog)
        memory = decl.memoryInGb
        if memory is None and catalog is not None and type_id in catalog.gpu_types:
            memory = catalog.gpu_types[type_id].memory_in_gb
        for _ in range(decl.count):
            out.append(Gpu(index, type_id, memory or 0, decl.cuda, declared=True))
            index += 1
    return out


def local_machine_id(hostname: str) -> str:
    """A stable id for this host (same id across restarts, so records keep pointing at it)."""
    return "m-" + hashlib.sha256(hostname.encode()).hexdigest()[:10]


def discover_local_machine(
    settings: MachineSettings, data_dir: Path, catalog: Catalog | None = None
) -> Machine:
    """This host as a Machine: measured CPU/memory/disk/GPUs plus the operator's settings."""
    hostname = socket.gethostname()
    detected = detect_nvidia_gpus(catalog) if settings.detect_gpus else []
    gpus = detected + declared_gpus(settings, catalog, len(detected))
    cpus = max(1, (os.cpu_count() or 1) - settings.reserved_vcpus)
    memory = max(0.0, psutil.virtual_memory().total / 2**30 - settings.reserved_memory_gb)
    probe = data_dir if data_dir.exists() else Path("/")
    disk = psutil.disk_usage(str(probe)).total / 2**30
    return Machine(
        id=local_machine_id(hostname),
        name=settings.name or hostname,
        cpu_type=_cpu_model(),
        cpu_count=cpus,
        memory_in_gb=round(memory, 1),
        disk_in_gb=round(disk, 1),
        data_center_id=settings.data_center_id,
        location=settings.location,
        secure_cloud=settings.secure_cloud,
        support_public_ip=settings.support_public_ip,
        cost_per_gpu_hr=settings.cost_per_gpu_hr,
        cost_per_vcpu_hr=settings.cost_per_vcpu_hr,
        gpus=gpus,
    )
