"""Ray nodes as runplane machines: the labelling convention of docs/ray.md, as pure functions.

A Ray node says what it is through Ray's own node facts (``ray.nodes()``: its ``CPU``, ``GPU``
and ``memory`` resources, Ray's ``accelerator_type:<X>`` resource), the operator's node labels
and custom resources, and what runplane's probe task found on it (NVML, CPU model, disk). For
each fact the most explicit source wins:

- GPU type: label ``runplane.io/gpu-type`` (RunPod's gpuTypeId, spaces written as ``-``
  because Ray label values cannot hold spaces: ``NVIDIA-GeForce-RTX-4090``), else a custom
  resource ``runplane-gpu:<gpuTypeId>`` (spaces allowed), else the name NVML reports on the
  node, else Ray's ``accelerator_type:<X>`` (``H100``, ``L4``, ``RTX4090``...) mapped onto
  RunPod's ids;
- GPU count: Ray's ``GPU`` resource (what Ray will hand out), never more;
- data center: label ``runplane.io/data-center``, else a resource ``runplane-dc:<ID>``, else
  ``[machine] data_center_id``;
- price: labels ``runplane.io/cost-per-gpu-hr`` / ``runplane.io/cost-per-vcpu-hr``, else
  ``[machine]``; location ``runplane.io/location``; CUDA ``runplane.io/cuda-version`` for GPUs
  NVML cannot see (declared), else ``12.4``;
- a node labelled ``runplane.io/schedulable=false``, or with neither CPUs nor GPUs (a head
  started with ``--num-cpus=0``), is not a machine.

Nothing here imports ray: the provider hands in the dictionaries Ray returns.
"""

from __future__ import annotations

import re
from typing import Any

from runplane.catalog.catalog import Catalog
from runplane.catalog.machines import Gpu, Machine, gpu_type_id_for
from runplane.config import MachineSettings

GPU_TYPE_LABEL = "runplane.io/gpu-type"
DATA_CENTER_LABEL = "runplane.io/data-center"
LOCATION_LABEL = "runplane.io/location"
COST_PER_GPU_LABEL = "runplane.io/cost-per-gpu-hr"
COST_PER_VCPU_LABEL = "runplane.io/cost-per-vcpu-hr"
CUDA_LABEL = "runplane.io/cuda-version"
NAME_LABEL = "runplane.io/name"
SCHEDULABLE_LABEL = "runplane.io/schedulable"
GPU_TYPE_RESOURCE = "runplane-gpu:"
DATA_CENTER_RESOURCE = "runplane-dc:"
ACCELERATOR_RESOURCE = "accelerator_type:"
DEFAULT_CUDA = "12.4"

# Ray's accelerator type names (ray.util.accelerators) that do not name one RunPod type by
# themselves: the variant runplane assumes. A label says exactly which one a node has.
RAY_ACCELERATORS: dict[str, str] = {
    "H100": "NVIDIA H100 80GB HBM3",
    "H200": "NVIDIA H200",
    "B200": "NVIDIA B200",
    "A100": "NVIDIA A100-SXM4-80GB",
    "A100-80G": "NVIDIA A100-SXM4-80GB",
    "A100-40G": "NVIDIA A100-SXM4-40GB",
    "L4": "NVIDIA L4",
    "L40S": "NVIDIA L40S",
    "T4": "Tesla T4",
    "V100": "Tesla V100-SXM2-16GB",
    "RTX-PRO-6000": "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    "AMD-Instinct-MI300X-OAM": "AMD Instinct MI300X OAM",
}


def machine_id_for(node_id: str) -> str:
    """A machine id per Ray node (a node that restarts is a new node, so a new machine)."""
    return "ray-" + node_id[:12]


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def ray_gpu_type(accelerator: str, catalog: Catalog | None) -> str:
    """Ray's ``accelerator_type`` (or a label value with ``-`` for spaces) -> RunPod's id.

    Exact id (spaces and hyphens alike) first, then Ray's well-known names, then a unique
    catalog id ending with the name (``RTX4090``, ``GeForce-RTX-4090`` -> ``NVIDIA GeForce RTX
    4090``). An unknown name is kept as it is."""
    if accelerator in RAY_ACCELERATORS:
        return RAY_ACCELERATORS[accelerator]
    if catalog is None:
        return accelerator
    wanted = _norm(accelerator)
    if not wanted:
        return accelerator
    exact = [t for t in catalog.gpu_types if _norm(t) == wanted]
    if exact:
        return exact[0]
    for name, type_id in RAY_ACCELERATORS.items():
        if _norm(name) == wanted:
            return type_id
    ending = sorted((t for t in catalog.gpu_types if _norm(t).endswith(wanted)), key=len)
    if ending:
        return ending[0]
    return accelerator


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default


def _with_prefix(resources: dict[str, float], prefix: str) -> str | None:
    names = sorted(k[len(prefix):] for k, v in resources.items() if k.startswith(prefix) and v > 0)
    return names[0] if names else None


def node_gpu_type(node: dict[str, Any], probe: dict[str, Any] | None,
                  catalog: Catalog | None) -> str | None:
    """The node's GPU type by the convention's precedence; None when nothing says."""
    labels: dict[str, str] = node.get("Labels") or {}
    resources: dict[str, float] = node.get("Resources") or {}
    if labels.get(GPU_TYPE_LABEL):
        return ray_gpu_type(labels[GPU_TYPE_LABEL], catalog)
    declared = _with_prefix(resources, GPU_TYPE_RESOURCE)
    if declared:
        return gpu_type_id_for(declared, catalog)
    nvml = (probe or {}).get("gpus") or []
    if nvml:
        return gpu_type_id_for(nvml[0]["name"], catalog)
    accel = _with_prefix(resources, ACCELERATOR_RESOURCE)
    return ray_gpu_type(accel, catalog) if accel else None


def node_data_center(node: dict[str, Any], default: str) -> str:
    labels: dict[str, str] = node.get("Labels") or {}
    if labels.get(DATA_CENTER_LABEL):
        return labels[DATA_CENTER_LABEL]
    return _with_prefix(node.get("Resources") or {}, DATA_CENTER_RESOURCE) or default


def node_machine(node: dict[str, Any], probe: dict[str, Any] | None, defaults: MachineSettings,
                 catalog: Catalog | None) -> Machine | None:
    """One Ray node (an entry of ``ray.nodes()``) as a Machine; None when it is not one (dead,
    no capacity, or labelled unschedulable). ``probe`` is what runplane's probe task returned
    on that node (None when it has not answered)."""
    if not node.get("Alive", node.get("alive", False)):
        return None
    labels: dict[str, str] = node.get("Labels") or {}
    resources: dict[str, float] = node.get("Resources") or {}
    if labels.get(SCHEDULABLE_LABEL, "").lower() in ("false", "no", "0"):
        return None
    cpus = int(resources.get("CPU", 0))
    gpu_count = int(resources.get("GPU", 0))
    if cpus <= 0 and gpu_count <= 0:
        return None
    probe = probe or {}
    nvml: list[dict[str, Any]] = probe.get("gpus") or []
    type_id = node_gpu_type(node, probe, catalog) if gpu_count else None
    memory_default = 0
    if type_id and catalog is not None and type_id in catalog.gpu_types:
        memory_default = catalog.gpu_types[type_id].memory_in_gb
    cuda = probe.get("cuda") or labels.get(CUDA_LABEL) or DEFAULT_CUDA
    gpus = []
    for i in range(gpu_count):
        seen = nvml[i] if i < len(nvml) else None
        gpus.append(Gpu(
            index=i, type_id=type_id or "unknown",
            memory_in_gb=int(seen["memory_in_gb"]) if seen else memory_default,
            cuda_version=cuda if seen else (labels.get(CUDA_LABEL) or cuda),
            declared=seen is None, uuid=seen.get("uuid", "") if seen else ""))
    node_id = node["NodeID"]
    host = probe.get("hostname") or node.get("NodeManagerHostname") or node.get("NodeName", "")
    return Machine(
        id=machine_id_for(node_id),
        name=labels.get(NAME_LABEL) or f"{host}-{node_id[:6]}",
        cpu_type=probe.get("cpu_type") or "unknown",
        cpu_count=cpus,
        memory_in_gb=round(float(resources.get("memory", 0.0)) / 2**30, 1),
        disk_in_gb=round(float(probe.get("disk_in_gb") or 0.0), 1),
        data_center_id=node_data_center(node, defaults.data_center_id),
        location=labels.get(LOCATION_LABEL) or defaults.location,
        secure_cloud=defaults.secure_cloud,
        support_public_ip=defaults.support_public_ip,
        cost_per_gpu_hr=_float(labels.get(COST_PER_GPU_LABEL), defaults.cost_per_gpu_hr),
        cost_per_vcpu_hr=_float(labels.get(COST_PER_VCPU_LABEL), defaults.cost_per_vcpu_hr),
        gpus=gpus,
        provider="ray",
    )


def accelerator_resource(node: dict[str, Any]) -> str | None:
    """The node's ``accelerator_type:<X>`` resource name, to pin GPU actors to it."""
    resources = node.get("Resources") or {}
    accel = _with_prefix(resources, ACCELERATOR_RESOURCE)
    return ACCELERATOR_RESOURCE + accel if accel else None


def data_center_resource(node: dict[str, Any]) -> str | None:
    """The node's ``runplane-dc:<ID>`` resource name, when it declares one."""
    dc = _with_prefix(node.get("Resources") or {}, DATA_CENTER_RESOURCE)
    return DATA_CENTER_RESOURCE + dc if dc else None
