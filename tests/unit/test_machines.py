"""Machine discovery: measured host facts, NVML names mapped to RunPod ids, declared GPUs."""

from __future__ import annotations

from pathlib import Path

import psutil

from runplane.catalog.catalog import build_catalog
from runplane.catalog.machines import detect_nvidia_gpus, discover_local_machine, gpu_type_id_for
from runplane.config import load_settings


def test_nvml_names_map_to_runpod_ids() -> None:
    cat = build_catalog()
    assert gpu_type_id_for("NVIDIA H100 80GB HBM3", cat) == "NVIDIA H100 80GB HBM3"
    assert gpu_type_id_for("nvidia  geforce rtx 4090", cat) == "NVIDIA GeForce RTX 4090"
    assert gpu_type_id_for("Some Future GPU", cat) == "Some Future GPU"


def test_host_facts_are_measured(tmp_path: Path) -> None:
    m = discover_local_machine(load_settings(data_dir=tmp_path).machine, tmp_path, build_catalog())
    assert m.cpu_count == psutil.cpu_count()
    assert abs(m.memory_in_gb - psutil.virtual_memory().total / 2**30) < 0.1
    # Only what NVML reports: nothing invented on a host without a driver.
    assert [g.type_id for g in m.gpus] == [g.type_id for g in detect_nvidia_gpus(build_catalog())]
    assert all(not g.declared for g in m.gpus)


def test_declared_gpus_are_marked_and_settings_applied(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, machine={
        "data_center_id": "EU-RO-1", "cost_per_gpu_hr": 2.5,
        "declared_gpus": [{"type": "NVIDIA L4", "count": 2, "cuda": "12.2"}],
    })
    m = discover_local_machine(settings.machine, tmp_path, build_catalog())
    declared = [g for g in m.gpus if g.declared]
    assert [(g.type_id, g.memory_in_gb, g.cuda_version) for g in declared] == [("NVIDIA L4", 24, "12.2")] * 2
    assert len({g.index for g in m.gpus}) == len(m.gpus)
    d = m.as_dict()
    assert d["dataCenterId"] == "EU-RO-1" and d["costPerGpuHr"] == 2.5
    assert d["gpus"][-1]["declared"] is True


def test_machine_settings_from_toml(tmp_path: Path) -> None:
    (tmp_path / "runplane.toml").write_text(
        '[machine]\ndata_center_id = "HOME-1"\ncost_per_vcpu_hr = 0.01\n'
        '[[machine.declared_gpus]]\ntype = "NVIDIA H100 80GB HBM3"\ncount = 1\n'
    )
    s = load_settings(data_dir=tmp_path)
    assert s.machine.data_center_id == "HOME-1"
    assert s.machine.declared_gpus[0].type == "NVIDIA H100 80GB HBM3"
