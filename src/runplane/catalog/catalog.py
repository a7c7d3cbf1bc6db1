"""The catalog of names users may ask for, RunPod's by default, extended by the operator."""

from __future__ import annotations

from dataclasses import dataclass, field

from runplane.catalog.spec import enum_of

# Memory (GB) of each GPU type RunPod rents; the spec gives the ids only.
_GPU_MEMORY_GB: dict[str, int] = {
    "NVIDIA GeForce RTX 4090": 24, "NVIDIA A40": 48, "NVIDIA RTX A5000": 24,
    "NVIDIA GeForce RTX 5090": 32, "NVIDIA H100 80GB HBM3": 80, "NVIDIA GeForce RTX 3090": 24,
    "NVIDIA RTX A4500": 20, "NVIDIA L40S": 48, "NVIDIA H200": 141, "NVIDIA L4": 24,
    "NVIDIA RTX 6000 Ada Generation": 48, "NVIDIA A100-SXM4-80GB": 80,
    "NVIDIA A100-SXM4-40GB": 40, "NVIDIA RTX 4000 Ada Generation": 20, "NVIDIA RTX A6000": 48,
    "NVIDIA A100 80GB PCIe": 80, "NVIDIA RTX 2000 Ada Generation": 16, "NVIDIA RTX A4000": 16,
    "NVIDIA RTX PRO 6000 Blackwell Server Edition": 96, "NVIDIA H100 PCIe": 80,
    "NVIDIA H100 NVL": 94, "NVIDIA L40": 48, "NVIDIA B200": 180,
    "NVIDIA GeForce RTX 3080 Ti": 12, "NVIDIA RTX PRO 6000 Blackwell Workstation Edition": 96,
    "NVIDIA GeForce RTX 3080": 10, "NVIDIA GeForce RTX 3070": 8, "AMD Instinct MI300X OAM": 192,
    "NVIDIA GeForce RTX 4080 SUPER": 16, "Tesla V100-PCIE-16GB": 16, "Tesla V100-SXM2-32GB": 32,
    "NVIDIA RTX 5000 Ada Generation": 32, "NVIDIA GeForce RTX 4070 Ti": 12,
    "NVIDIA RTX 4000 SFF Ada Generation": 20, "NVIDIA GeForce RTX 3090 Ti": 24,
    "NVIDIA RTX A2000": 6, "NVIDIA GeForce RTX 4080": 16, "NVIDIA A30": 24,
    "NVIDIA GeForce RTX 5080": 16, "Tesla V100-FHHL-16GB": 16, "NVIDIA H200 NVL": 141,
    "Tesla V100-SXM2-16GB": 16, "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition": 96,
    "NVIDIA A5000 Ada": 32, "Tesla V100-PCIE-32GB": 32, "NVIDIA  RTX A4500": 20,
    "NVIDIA  A30": 24, "NVIDIA GeForce RTX 3080TI": 12, "Tesla T4": 16, "NVIDIA RTX A30": 24,
}


def _display_name(gpu_type_id: str) -> str:
    """RunPod's display names drop the vendor prefix ("NVIDIA GeForce RTX 4090" -> "RTX 4090")."""
    name = " ".join(gpu_type_id.split())
    for prefix in ("NVIDIA GeForce ", "NVIDIA ", "AMD Instinct ", "Tesla "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


@dataclass(frozen=True)
class GpuType:
    id: str
    display_name: str
    memory_in_gb: int
    custom: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "memoryInGb": self.memory_in_gb,
            "custom": self.custom,
        }


@dataclass
class Catalog:
    """Allowed names for each enum-like field; the defaults come from the spec's enums."""

    gpu_types: dict[str, GpuType]
    data_centers: list[str]
    cuda_versions: list[str]
    cpu_flavors: list[str]
    default_data_centers: list[str] = field(default_factory=list)

    def is_cpu_instance_id(self, instance_id: str) -> bool:
        """CPU instance ids are ``<flavor>-<vcpus>-<memoryGb>``, e.g. ``cpu3c-8-16``."""
        parts = instance_id.split("-")
        return (
            len(parts) == 3
            and parts[0] in self.cpu_flavors
            and parts[1].isdigit()
            and parts[2].isdigit()
            and int(parts[1]) > 0
            and int(parts[2]) > 0
        )


def build_catalog(
    extra_data_centers: list[str] | None = None,
    extra_gpu_types: list[tuple[str, str | None, int]] | None = None,
) -> Catalog:
    """RunPod's catalog from the spec, plus the operator's own data centers and GPU types."""
    gpu_ids = dict.fromkeys(enum_of("EndpointCreateInput", "gpuTypeIds"))
    gpu_ids.update(dict.fromkeys(enum_of("PodCreateInput", "gpuTypeIds")))
    gpus = {g: GpuType(g, _display_name(g), _GPU_MEMORY_GB.get(g, 0)) for g in gpu_ids}
    for gpu_id, display, memory in extra_gpu_types or []:
        gpus[gpu_id] = GpuType(gpu_id, display or _display_name(gpu_id), memory, custom=True)
    runpod_dcs = enum_of("EndpointCreateInput", "dataCenterIds")
    extra = [d for d in extra_data_centers or [] if d not in runpod_dcs]
    return Catalog(
        gpu_types=gpus,
        data_centers=runpod_dcs + extra,
        cuda_versions=enum_of("Endpoint", "allowedCudaVersions"),
        cpu_flavors=enum_of("EndpointCreateInput", "cpuFlavorIds"),
        # "All data centers when none given" includes the operator's own: on a self-hosted
        # install those are the only ones that have machines.
        default_data_centers=runpod_dcs + extra,
    )
