"""Table tests for the scheduler: placements, no GPU over-commit, and actionable reasons."""

from __future__ import annotations

import pytest

from runplane.catalog.machines import Gpu, Machine
from runplane.controller.scheduler import (
    MachineLoad,
    NoFit,
    Parked,
    Placement,
    WorkerRequest,
    apply,
    place_evicting,
    schedule,
)

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100 80GB PCIe"
L4 = "NVIDIA L4"


def machine(mid: str, dc: str, gpus: list[tuple[str, str]], cpus: int = 16, mem: float = 64) -> Machine:
    return Machine(
        id=mid, name=mid, cpu_type="cpu", cpu_count=cpus, memory_in_gb=mem, disk_in_gb=100,
        data_center_id=dc, location="x", secure_cloud=True, support_public_ip=False,
        cost_per_gpu_hr=2.0, cost_per_vcpu_hr=0.05,
        gpus=[Gpu(i, t, 80, cuda) for i, (t, cuda) in enumerate(gpus)],
    )


def loads() -> list[MachineLoad]:
    return [
        MachineLoad(machine("ro", "EU-RO-1", [(H100, "12.4"), (H100, "12.4")])),
        MachineLoad(machine("us", "US-TX-3", [(A100, "12.2"), (A100, "12.2"), (A100, "12.2"), (A100, "12.2")])),
        MachineLoad(machine("cpu", "EU-RO-1", [], cpus=4, mem=8)),
    ]


def req(**kw: object) -> WorkerRequest:
    return WorkerRequest(key=str(kw.pop("key", "ep")), **kw)  # type: ignore[arg-type]


CASES = [
    # (name, requests, expected: list of (machine, gpu type, indices) or "reason substring")
    ("first priority type", [req(gpu_type_ids=(H100, A100))], [("ro", H100, (0,))]),
    ("priority order respected", [req(gpu_type_ids=(A100, H100))], [("us", A100, (0,))]),
    ("falls back to second type", [req(gpu_type_ids=(L4, A100))], [("us", A100, (0,))]),
    ("gpuCount 2", [req(gpu_type_ids=(H100,), gpu_count=2)], [("ro", H100, (0, 1))]),
    ("no over-commit: third H100 worker does not fit",
     [req(gpu_type_ids=(H100,)), req(gpu_type_ids=(H100,)), req(gpu_type_ids=(H100,))],
     [("ro", H100, (0,)), ("ro", H100, (1,)), "all NVIDIA H100 80GB HBM3 GPUs are in use"]),
    ("spill to second type when first is full",
     [req(gpu_type_ids=(H100, A100), gpu_count=2), req(gpu_type_ids=(H100, A100))],
     [("ro", H100, (0, 1)), ("us", A100, (0,))]),
    ("data center filter", [req(gpu_type_ids=(H100, A100), data_center_ids=("US-TX-3",))],
     [("us", A100, (0,))]),
    ("missing type in dc", [req(gpu_type_ids=(H100,), data_center_ids=("US-TX-3",))],
     ["no machine has NVIDIA H100 80GB HBM3 in US-TX-3"]),
    ("unknown dc", [req(gpu_type_ids=(H100,), data_center_ids=("AP-JP-1",))],
     ["no machine in AP-JP-1 (machines are in EU-RO-1, US-TX-3)"]),
    ("network volume pins the dc", [req(gpu_type_ids=(H100, A100), volume_data_center="US-TX-3")],
     [("us", A100, (0,))]),
    ("volume dc outside endpoint dcs",
     [req(gpu_type_ids=(A100,), data_center_ids=("EU-RO-1",), volume_data_center="US-TX-3")],
     ["network volume's data center US-TX-3"]),
    ("allowed cuda excludes", [req(gpu_type_ids=(A100,), allowed_cuda_versions=("12.4",))],
     ["NVIDIA A100 80GB PCIe machines have CUDA 12.2, the endpoint needs 12.4"]),
    ("min cuda ok", [req(gpu_type_ids=(A100, H100), min_cuda_version="12.3")], [("ro", H100, (0,))]),
    ("count larger than any machine", [req(gpu_type_ids=(H100,), gpu_count=4)],
     ["no machine has 4 x NVIDIA H100 80GB HBM3 (at most 2 on one machine)"]),
    ("cpu instance", [req(compute_type="CPU", instance_ids=("cpu3c-4-8",))], [("cpu", None, ())]),
    ("cpu too big", [req(compute_type="CPU", instance_ids=("cpu3c-32-64",), data_center_ids=("EU-RO-1",))],
     ["no machine in EU-RO-1 has 32 free vCPUs and 64 GB free memory"]),
    ("cpu falls back to smaller instance", [req(compute_type="CPU", instance_ids=("cpu3c-32-64", "cpu3c-2-4"))],
     [("cpu", None, ())]),
]


@pytest.mark.parametrize(("name", "requests", "expected"), CASES, ids=[c[0] for c in CASES])
def test_schedule(name, requests, expected) -> None:
    results = schedule(requests, loads())
    for got, want in zip(results, expected, strict=True):
        if isinstance(want, str):
            assert isinstance(got, NoFit), got
            assert want in got.reason
        else:
            assert isinstance(got, Placement), got
            assert (got.machine_id, got.gpu_type_id, got.gpu_indices) == want


def test_no_machines() -> None:
    (got,) = schedule([req(gpu_type_ids=(H100,))], [])
    assert isinstance(got, NoFit) and "no machine" in got.reason


def test_busy_gpus_are_not_given_again_and_cost_follows_machine() -> None:
    ls = loads()
    ls[0].used_gpus.add(0)
    (got,) = schedule([req(gpu_type_ids=(H100,))], ls)
    assert isinstance(got, Placement) and got.gpu_indices == (1,)
    assert got.cost_per_hr == 2.0
    (cpu,) = schedule([req(compute_type="CPU", instance_ids=("cpu3c-2-4",))], ls)
    assert isinstance(cpu, Placement) and cpu.cost_per_hr == pytest.approx(0.1)


def test_cpu_capacity_is_consumed() -> None:
    ls = [loads()[2]]
    results = schedule([req(compute_type="CPU", instance_ids=("cpu3c-2-4",))] * 3, ls)
    assert [isinstance(r, Placement) for r in results] == [True, True, False]
    assert isinstance(results[2], NoFit) and results[2].busy  # fits once one stops


BUSY_CASES = [
    # (name, requests; only the last one's NoFit is checked, busy expected)
    ("GPUs taken", [req(gpu_type_ids=(H100,), gpu_count=2), req(gpu_type_ids=(H100,))], True),
    ("type absent", [req(gpu_type_ids=(L4,))], False),
    ("count too large", [req(gpu_type_ids=(H100,), gpu_count=4)], False),
    ("cuda mismatch", [req(gpu_type_ids=(A100,), allowed_cuda_versions=("12.4",))], False),
    ("one type taken, other mismatched",
     [req(gpu_type_ids=(H100,), gpu_count=2),
      req(gpu_type_ids=(H100, A100), allowed_cuda_versions=("12.4",))], True),
    ("cpu bigger than any machine", [req(compute_type="CPU", instance_ids=("cpu3c-64-512",))], False),
    ("wrong data center", [req(gpu_type_ids=(H100,), data_center_ids=("US-TX-3",))], False),
]


@pytest.mark.parametrize(("name", "requests", "busy"), BUSY_CASES, ids=[c[0] for c in BUSY_CASES])
def test_no_fit_says_whether_capacity_is_only_taken(name, requests, busy) -> None:
    got = schedule(requests, loads())[-1]
    assert isinstance(got, NoFit), got
    assert got.busy is busy


# -- evicting parked workers (FlashBoot) ---------------------------------------------------

def hold(ls: list[MachineLoad], wid: str, mid: str, gpus: tuple[int, ...] = (),
         since: float | None = None, vcpus: float = 2, mem: float = 4) -> list[Parked]:
    """Allocate a worker on machine ``mid``; parked (evictable) when ``since`` is given."""
    load = next(m for m in ls if m.machine.id == mid)
    gpu_type = load.machine.gpus[gpus[0]].type_id if gpus else None
    placement = Placement(wid, mid, gpu_type, gpus, vcpus, mem, 1.0)
    apply(load, placement)
    return [] if since is None else [Parked(wid, placement, since)]


def evict_case(setup, request):
    ls = [MachineLoad(m.machine, overcommit=1.0) for m in loads()]
    parked = [p for args in setup for p in hold(ls, *args)]
    before = [(set(m.used_gpus), m.used_vcpus) for m in ls]
    got = place_evicting(request, ls, parked)
    assert [(set(m.used_gpus), m.used_vcpus) for m in ls] == before  # loads untouched
    return got


EVICT_CASES = [
    # (name, held: (worker, machine, gpus, parked since or None, ...), request, expected:
    #  (machine, indices, evicted) or a NoFit reason substring)
    ("a free GPU: nothing evicted", [("p", "ro", (0,), 10.0)], req(gpu_type_ids=(H100,)),
     ("ro", (1,), ())),
    ("all H100s parked: the oldest is evicted",
     [("new", "ro", (1,), 20.0), ("old", "ro", (0,), 10.0)], req(gpu_type_ids=(H100,)),
     ("ro", (0,), ("old",))),
    ("gpuCount 2 evicts both", [("a", "ro", (0,), 10.0), ("b", "ro", (1,), 20.0)],
     req(gpu_type_ids=(H100,), gpu_count=2), ("ro", (0, 1), ("a", "b"))),
    ("an older parked worker elsewhere is not evicted for nothing",
     [("a100", "us", (0,), 1.0), ("h1", "ro", (0,), 10.0), ("h2", "ro", (1,), 20.0)],
     req(gpu_type_ids=(H100,)), ("ro", (0,), ("h1",))),
    ("a live worker's GPU is never taken", [("live", "ro", (0,), None), ("p", "ro", (1,), 10.0)],
     req(gpu_type_ids=(H100,), gpu_count=2), "all NVIDIA H100 80GB HBM3 GPUs are in use"),
    ("a live worker is kept, the parked one beside it goes",
     [("live", "ro", (0,), None), ("p", "ro", (1,), 10.0)], req(gpu_type_ids=(H100,)),
     ("ro", (1,), ("p",))),
    ("no machine has the type: nothing to evict", [("p", "ro", (0,), 10.0)],
     req(gpu_type_ids=(L4,)), "no machine has NVIDIA L4"),
    ("cpu: the oldest parked CPU worker makes room",
     [("c1", "cpu", (), 5.0), ("c2", "cpu", (), 6.0),
      ("full-ro", "ro", (), None, 16, 8), ("full-us", "us", (), None, 16, 8)],
     req(compute_type="CPU", instance_ids=("cpu3c-2-4",)), ("cpu", (), ("c1",))),
    ("priority order: a free second type beats evicting the first",
     [("h1", "ro", (0,), 10.0), ("h2", "ro", (1,), 20.0)], req(gpu_type_ids=(H100, A100)),
     ("us", (0,), ())),
]


@pytest.mark.parametrize(("name", "held", "request_", "expected"), EVICT_CASES,
                         ids=[c[0] for c in EVICT_CASES])
def test_place_evicting(name, held, request_, expected) -> None:
    got = evict_case(held, request_)
    if isinstance(expected, str):
        assert isinstance(got, NoFit) and expected in got.reason, got
        return
    assert isinstance(got, Placement), got
    assert (got.machine_id, got.gpu_indices, got.evict) == expected
