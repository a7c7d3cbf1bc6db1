"""The labelling convention (docs/ray.md): a Ray node's facts -> a runplane Machine.

Pure: the inputs are ``ray.nodes()`` entries as Ray returns them (shape taken from Ray 2.x) and
probe answers, so these run without Ray installed."""

from __future__ import annotations

from typing import Any

import pytest

from runplane.catalog.catalog import build_catalog
from runplane.config import MachineSettings
from runplane.providers.ray.nodes import (
    accelerator_resource,
    data_center_resource,
    machine_id_for,
    node_machine,
    ray_gpu_type,
)

CATALOG = build_catalog()
DEFAULTS = MachineSettings(data_center_id="LOCAL-1", cost_per_gpu_hr=1.5, cost_per_vcpu_hr=0.01)
NODE_ID = "dcea5f59e372a39277fe342ae146abecd7a056043752c145d9e0ec3f"


def node(resources: dict[str, float], labels: dict[str, str] | None = None,
         alive: bool = True) -> dict[str, Any]:
    return {"NodeID": NODE_ID, "Alive": alive, "NodeManagerAddress": "10.0.0.7",
            "NodeManagerHostname": "gpu-box-7", "NodeName": "10.0.0.7",
            "Resources": {"memory": 64 * 2**30, "node:10.0.0.7": 1.0, **resources},
            "Labels": {"ray.io/node-id": NODE_ID, **(labels or {})}}


NVML_H100 = {"hostname": "gpu-box-7", "cpu_type": "AMD EPYC 9654", "disk_in_gb": 1800.0,
             "cuda": "12.6", "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_in_gb": 80,
                                       "uuid": f"GPU-{i}"} for i in range(8)]}


@pytest.mark.parametrize(("accelerator", "type_id"), [
    ("H100", "NVIDIA H100 80GB HBM3"),  # Ray's names for data-center cards
    ("L4", "NVIDIA L4"),
    ("A100-40G", "NVIDIA A100-SXM4-40GB"),
    ("RTX4090", "NVIDIA GeForce RTX 4090"),  # what an operator declares
    ("GeForce-RTX-4090", "NVIDIA GeForce RTX 4090"),  # what Ray derives from NVML's name
    ("NVIDIA-GeForce-RTX-4090", "NVIDIA GeForce RTX 4090"),  # a label value: - for spaces
    ("NVIDIA-A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"),
    ("Quantum-Widget-9", "Quantum-Widget-9"),  # unknown: kept as it is
])
def test_ray_names_map_to_runpod_ids(accelerator: str, type_id: str) -> None:
    assert ray_gpu_type(accelerator, CATALOG) == type_id


def test_nvml_on_the_node_gives_exact_gpus_capped_at_what_ray_offers() -> None:
    m = node_machine(node({"CPU": 96, "GPU": 4, "accelerator_type:H100": 1}), NVML_H100,
                     DEFAULTS, CATALOG)
    assert m is not None
    assert m.id == machine_id_for(NODE_ID) == "ray-dcea5f59e372"
    assert [(g.index, g.type_id, g.memory_in_gb, g.cuda_version, g.declared, g.uuid)
            for g in m.gpus] == [(i, "NVIDIA H100 80GB HBM3", 80, "12.6", False, f"GPU-{i}")
                                 for i in range(4)]
    assert (m.cpu_count, m.memory_in_gb, m.cpu_type, m.disk_in_gb) == (96, 64.0, "AMD EPYC 9654",
                                                                      1800.0)
    assert (m.data_center_id, m.cost_per_gpu_hr, m.provider) == ("LOCAL-1", 1.5, "ray")
    assert m.name == "gpu-box-7-dcea5f"


def test_labels_beat_resources_beat_nvml_beat_ray_accelerator() -> None:
    resources = {"CPU": 8, "GPU": 1, "accelerator_type:H100": 1,
                 "runplane-gpu:NVIDIA H100 NVL": 1, "runplane-dc:EU-RO-1": 1}
    labelled = node(resources, {"runplane.io/gpu-type": "NVIDIA-H100-PCIe",
                                "runplane.io/data-center": "HOME-1"})
    m = node_machine(labelled, NVML_H100, DEFAULTS, CATALOG)
    assert m is not None and (m.gpus[0].type_id, m.data_center_id) == ("NVIDIA H100 PCIe", "HOME-1")
    m = node_machine(node(resources), NVML_H100, DEFAULTS, CATALOG)
    assert m is not None and (m.gpus[0].type_id, m.data_center_id) == ("NVIDIA H100 NVL", "EU-RO-1")
    del resources["runplane-gpu:NVIDIA H100 NVL"]
    nvml_a100 = {**NVML_H100, "gpus": [{"name": "NVIDIA A100 80GB PCIe", "memory_in_gb": 80}]}
    m = node_machine(node(resources), nvml_a100, DEFAULTS, CATALOG)
    assert m is not None and m.gpus[0].type_id == "NVIDIA A100 80GB PCIe"
    m = node_machine(node(resources), None, DEFAULTS, CATALOG)
    assert m is not None and m.gpus[0].type_id == "NVIDIA H100 80GB HBM3"


def test_declared_gpus_take_the_catalog_memory_and_the_labelled_cuda_and_price() -> None:
    m = node_machine(node({"CPU": 2, "GPU": 2, "accelerator_type:RTX4090": 1},
                          {"runplane.io/cuda-version": "12.2", "runplane.io/cost-per-gpu-hr": "0.69",
                           "runplane.io/cost-per-vcpu-hr": "0.03", "runplane.io/location": "garage",
                           "runplane.io/name": "rig"}),
                     {}, DEFAULTS, CATALOG)
    assert m is not None
    assert [(g.type_id, g.memory_in_gb, g.cuda_version, g.declared) for g in m.gpus] == \
        [("NVIDIA GeForce RTX 4090", 24, "12.2", True)] * 2
    assert (m.cost_per_gpu_hr, m.cost_per_vcpu_hr, m.location, m.name) == (0.69, 0.03, "garage",
                                                                          "rig")


@pytest.mark.parametrize("n", [
    node({"CPU": 0}),  # a head started with --num-cpus=0 offers nothing
    node({"CPU": 4}, alive=False),
    node({"CPU": 4}, {"runplane.io/schedulable": "false"}),
])
def test_nodes_that_are_not_machines(n: dict[str, Any]) -> None:
    assert node_machine(n, {}, DEFAULTS, CATALOG) is None


def test_a_bad_price_label_falls_back_to_the_settings() -> None:
    m = node_machine(node({"CPU": 4}, {"runplane.io/cost-per-vcpu-hr": "cheap"}), {}, DEFAULTS,
                     CATALOG)
    assert m is not None and (m.cost_per_vcpu_hr, m.gpus) == (0.01, [])


def test_the_resources_an_actor_is_pinned_with() -> None:
    n = node({"CPU": 1, "GPU": 1, "accelerator_type:RTX4090": 1, "runplane-dc:HOME-2": 1})
    assert (accelerator_resource(n), data_center_resource(n)) == ("accelerator_type:RTX4090",
                                                                  "runplane-dc:HOME-2")
    assert (accelerator_resource(node({"CPU": 1})), data_center_resource(node({"CPU": 1}))) == \
        (None, None)


def test_the_default_install_never_imports_ray(tmp_path) -> None:
    """The local provider's server (and the Ray modules that need no Ray) load without it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from runplane.config import load_settings\n"
        "from runplane.server import build_services\n"
        "import runplane.cli, runplane.providers.ray.nodes, runplane.providers.ray.actor\n"
        f"services = build_services(load_settings(data_dir={str(tmp_path)!r}))\n"
        "assert services.provider.name == 'local'\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
