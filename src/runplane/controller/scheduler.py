"""Scheduler: a pure function from worker requests and machine loads to placements.

Each request is placed on a machine that satisfies its compute type (CPU: instanceIds and
vcpuCount; GPU: gpuTypeIds in priority order, gpuCount, allowed CUDA versions), its data
centers, and its network volume's data center, without ever giving one GPU to two workers.
When nothing fits, the answer is a reason a person can act on ("no machine has NVIDIA H100
80GB HBM3 in EU-RO-1"), taken from the first requirement that rules every machine out.

Parked workers (FlashBoot) keep their GPUs but are evictable: ``place_evicting`` places a
request that only their capacity is in the way of, naming the parked workers to stop (oldest
first, only those whose GPUs or host share the placement needs) in ``Placement.evict``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from runplane.catalog.machines import Machine, cuda_key


@dataclass(frozen=True)
class WorkerRequest:
    """What one worker (or pod) needs; built from an endpoint or pod spec."""

    key: str  # endpoint or pod id, for the caller's bookkeeping
    compute_type: str = "GPU"  # "GPU" or "CPU"
    gpu_type_ids: tuple[str, ...] = ()  # priority order
    gpu_count: int = 1
    allowed_cuda_versions: tuple[str, ...] = ()  # empty: any
    min_cuda_version: str | None = None
    data_center_ids: tuple[str, ...] | None = None  # None: any data center
    volume_data_center: str | None = None
    # CPU endpoints: instance ids "<flavor>-<vcpus>-<memGb>" tried in order; else vcpu_count.
    instance_ids: tuple[str, ...] = ()
    vcpu_count: int = 0
    memory_in_gb: float = 0.0


@dataclass
class MachineLoad:
    """A machine and what is already allocated on it."""

    machine: Machine
    used_gpus: set[int] = field(default_factory=set)
    used_vcpus: float = 0.0
    used_memory_gb: float = 0.0
    # Factor by which vCPUs/memory may be over-committed (GPUs never are).
    overcommit: float = 1.0

    def free_gpus(self, type_id: str, allowed: set[str] | None = None) -> list[int]:
        return [
            g.index
            for g in self.machine.gpus
            if g.type_id == type_id and g.index not in self.used_gpus
            and (allowed is None or g.cuda_version in allowed)
        ]

    @property
    def free_vcpus(self) -> float:
        return self.machine.cpu_count * self.overcommit - self.used_vcpus

    @property
    def free_memory_gb(self) -> float:
        return self.machine.memory_in_gb * self.overcommit - self.used_memory_gb


@dataclass(frozen=True)
class Placement:
    """Where a request goes: a machine, its GPU indices (or none), and its share of the host."""

    key: str
    machine_id: str
    gpu_type_id: str | None
    gpu_indices: tuple[int, ...]
    vcpu_count: float
    memory_in_gb: float
    cost_per_hr: float
    cpu_flavor_id: str | None = None
    # Parked workers to stop first (``place_evicting``): the placement uses what they hold.
    evict: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoFit:
    """Why a request cannot be placed. ``busy``: a machine could hold it, but its capacity is
    taken now (it fits once something stops), as opposed to a request no machine can ever hold."""

    key: str
    reason: str
    busy: bool = False


def _where(req: WorkerRequest) -> str:
    dcs = _allowed_dcs(req)
    if dcs is None:
        return ""
    return " in " + (", ".join(sorted(dcs)) if len(dcs) <= 3 else f"{len(dcs)} data centers")


def _allowed_dcs(req: WorkerRequest) -> set[str] | None:
    dcs = set(req.data_center_ids) if req.data_center_ids is not None else None
    if req.volume_data_center:
        dcs = {req.volume_data_center} if dcs is None else dcs & {req.volume_data_center}
    return dcs


def _cuda_ok(version: str, req: WorkerRequest) -> bool:
    if req.allowed_cuda_versions and version not in req.allowed_cuda_versions:
        return False
    if req.min_cuda_version and cuda_key(version) < cuda_key(req.min_cuda_version):
        return False
    return True


def parse_instance_id(instance_id: str) -> tuple[str, int, int] | None:
    """"cpu3c-8-16" -> ("cpu3c", 8, 16); None when malformed."""
    parts = instance_id.split("-")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


def place_one(req: WorkerRequest, loads: list[MachineLoad]) -> Placement | NoFit:
    """Place one request, or say why it cannot be placed. Does not modify ``loads``."""
    if not loads:
        return NoFit(req.key, "no machine is registered with runplane")
    dcs = _allowed_dcs(req)
    in_dc = [m for m in loads if dcs is None or m.machine.data_center_id in dcs]
    if not in_dc:
        have = ", ".join(sorted({m.machine.data_center_id for m in loads}))
        if req.volume_data_center and (dcs == set() or dcs == {req.volume_data_center}):
            return NoFit(req.key, f"no machine in the network volume's data center "
                                  f"{req.volume_data_center} (machines are in {have})")
        return NoFit(req.key, f"no machine{_where(req)} (machines are in {have})")
    if req.compute_type == "CPU":
        return _place_cpu(req, in_dc)
    return _place_gpu(req, in_dc)


def _place_cpu(req: WorkerRequest, loads: list[MachineLoad]) -> Placement | NoFit:
    options: list[tuple[str | None, float, float]] = []
    for inst in req.instance_ids:
        parsed = parse_instance_id(inst)
        if parsed:
            options.append((parsed[0], float(parsed[1]), float(parsed[2])))
    if not options:
        options.append((None, float(max(req.vcpu_count, 1)), req.memory_in_gb))
    for flavor, vcpus, memory in options:
        fits = [m for m in loads if m.free_vcpus >= vcpus and m.free_memory_gb >= memory]
        if fits:
            best = min(fits, key=lambda m: (m.free_vcpus, m.machine.id))  # pack
            return Placement(
                req.key, best.machine.id, None, (), vcpus, memory,
                round(vcpus * best.machine.cost_per_vcpu_hr, 6), flavor,
            )
    flavor, vcpus, memory = options[0]
    most = max(loads, key=lambda m: m.free_vcpus)
    busy = any(m.machine.cpu_count * m.overcommit >= v and m.machine.memory_in_gb * m.overcommit >= g
               for _, v, g in options for m in loads)
    return NoFit(req.key, f"no machine{_where(req)} has {vcpus:g} free vCPUs and "
                          f"{memory:g} GB free memory (most free: {max(most.free_vcpus, 0):g} "
                          f"vCPUs, {max(most.free_memory_gb, 0):.0f} GB)", busy)


def _place_gpu(req: WorkerRequest, loads: list[MachineLoad]) -> Placement | NoFit:
    wanted = list(req.gpu_type_ids) or sorted({g.type_id for m in loads for g in m.machine.gpus})
    if not any(g.type_id in wanted for m in loads for g in m.machine.gpus):
        names = " or ".join(wanted[:3]) + (f" (or {len(wanted) - 3} more)" if len(wanted) > 3 else "")
        return NoFit(req.key, f"no machine has {names or 'a GPU'}{_where(req)}")
    count = max(req.gpu_count, 1)
    reasons: list[str] = []
    busy = False
    for type_id in wanted:  # priority order
        with_type = [m for m in loads if any(g.type_id == type_id for g in m.machine.gpus)]
        if not with_type:
            continue
        cuda_ok = {
            g.cuda_version for m in with_type for g in m.machine.gpus
            if g.type_id == type_id and _cuda_ok(g.cuda_version, req)
        }
        if not cuda_ok:
            have = sorted({g.cuda_version for m in with_type for g in m.machine.gpus
                           if g.type_id == type_id}, key=cuda_key)
            reasons.append(f"{type_id} machines have CUDA {', '.join(have)}, "
                           f"the endpoint needs {_cuda_need(req)}")
            continue
        total = max(len([g for g in m.machine.gpus if g.type_id == type_id
                         and g.cuda_version in cuda_ok]) for m in with_type)
        if total < count:
            reasons.append(f"no machine has {count} x {type_id} (at most {total} on one machine)")
            continue
        fits = [(m, m.free_gpus(type_id, cuda_ok)) for m in with_type]
        fits = [(m, free) for m, free in fits if len(free) >= count]
        if not fits:
            reasons.append(f"all {type_id} GPUs are in use")
            busy = True
            continue
        m, free = min(fits, key=lambda mf: (len(mf[1]), mf[0].machine.id))  # pack
        indices = tuple(sorted(free)[:count])
        share = m.machine.cpu_count * count / max(len(m.machine.gpus), 1)
        mem_share = m.machine.memory_in_gb * count / max(len(m.machine.gpus), 1)
        return Placement(
            req.key, m.machine.id, type_id, indices, float(max(1, math.floor(share))),
            round(mem_share, 1), round(count * m.machine.cost_per_gpu_hr, 6),
        )
    return NoFit(req.key, "; ".join(reasons), busy)


def _cuda_need(req: WorkerRequest) -> str:
    parts = []
    if req.allowed_cuda_versions:
        parts.append(" or ".join(req.allowed_cuda_versions))
    if req.min_cuda_version:
        parts.append(f"{req.min_cuda_version} or newer")
    return " and ".join(parts)


def apply(load: MachineLoad, placement: Placement) -> None:
    """Record a placement's allocation on its machine's load."""
    load.used_gpus.update(placement.gpu_indices)
    if placement.gpu_type_id is None:
        load.used_vcpus += placement.vcpu_count
        load.used_memory_gb += placement.memory_in_gb


def release(load: MachineLoad, placement: Placement) -> None:
    """Undo ``apply``: the placement's allocation is free again."""
    load.used_gpus.difference_update(placement.gpu_indices)
    if placement.gpu_type_id is None:
        load.used_vcpus -= placement.vcpu_count
        load.used_memory_gb -= placement.memory_in_gb


@dataclass(frozen=True)
class Parked:
    """A parked worker's allocation, which a placement may take by evicting it."""

    worker_id: str
    placement: Placement
    parked_since: float


def place_evicting(req: WorkerRequest, loads: list[MachineLoad], parked: list[Parked],
                   prefer: str | None = None) -> Placement | NoFit:
    """``place_one``; when the request does not fit only because capacity is taken, free the
    parked workers' allocations oldest first until it fits, and return the placement with the
    parked workers it needs stopped (``evict``: those on its machine whose GPUs it uses, or
    whose host share it needs for a CPU request). ``prefer``: a machine to use when the
    request fits there as it is (a worker started again where it ran). Does not modify
    ``loads``."""
    if prefer is not None:
        there = [m for m in loads if m.machine.id == prefer]
        placed = place_one(req, there) if there else None
        if isinstance(placed, Placement):
            return placed
    placed = place_one(req, loads)
    if isinstance(placed, Placement) or not placed.busy or not parked:
        return placed
    trial = [MachineLoad(m.machine, set(m.used_gpus), m.used_vcpus, m.used_memory_gb,
                         m.overcommit) for m in loads]
    by_id = {m.machine.id: m for m in trial}
    order = sorted(parked, key=lambda p: (p.parked_since, p.worker_id))
    for i, p in enumerate(order):
        load = by_id.get(p.placement.machine_id)
        if load is None:
            continue
        release(load, p.placement)
        fit = place_one(req, trial)
        if isinstance(fit, Placement):
            used = set(fit.gpu_indices)
            evict = tuple(
                q.worker_id for q in order[:i + 1]
                if q.placement.machine_id == fit.machine_id
                and (used & set(q.placement.gpu_indices) if fit.gpu_type_id is not None
                     else q.placement.gpu_type_id is None))
            return replace(fit, evict=evict)
    return placed


def schedule(requests: list[WorkerRequest], loads: list[MachineLoad]) -> list[Placement | NoFit]:
    """Place requests in order, each seeing the allocations of those before it.

    ``loads`` is updated in place so the caller's view stays current.
    """
    by_id = {m.machine.id: m for m in loads}
    out: list[Placement | NoFit] = []
    for req in requests:
        result = place_one(req, loads)
        if isinstance(result, Placement):
            apply(by_id[result.machine_id], result)
        out.append(result)
    return out
