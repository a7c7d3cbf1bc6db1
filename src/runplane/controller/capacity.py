"""Machines with their free and used capacity, for the admin route and ``runplane machines``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runplane.controller.reconcile import Controller


def machines_report(controller: Controller) -> list[dict[str, Any]]:
    """Each machine as discovered/declared, plus what workers and pods hold on it now."""
    out = []
    holds = controller.readings.worker_holds()
    for load in controller.loads():
        m = load.machine
        body = m.as_dict()
        holders: dict[int, str] = {}
        workers = [w for w in holds if w.machine_id == m.id]
        for w in workers:
            for i in w.gpu_indices:
                holders[i] = (f"worker {w.id} ({w.endpoint_id}"
                              f"{', parked' if w.parked else ''})")
        pods = [p for p in controller.allocations.pod_placements() if p.machine_id == m.id]
        for p in pods:
            for i in p.gpu_indices:
                holders[i] = f"pod {p.key}"
        for g in body["gpus"]:
            g["usedBy"] = holders.get(g["index"])
        body["capacity"] = {
            "gpusTotal": len(m.gpus),
            "gpusUsed": len(load.used_gpus),
            "gpusFree": len(m.gpus) - len(load.used_gpus),
            "vcpusOffered": m.cpu_count * load.overcommit,
            "vcpusUsed": load.used_vcpus,
            "memoryInGbUsed": load.used_memory_gb,
            "workers": len(workers),
            "pods": len(pods),
        }
        out.append(body)
    return out
