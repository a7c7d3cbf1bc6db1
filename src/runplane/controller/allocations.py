"""What runs where: the placement of every live endpoint worker and pod, and from them each
machine's load (what the scheduler places the next worker or pod against).

One ledger for both, because workers and pods share the machines' GPUs and host share: the
controller holds a worker's placement from just before its start until its exit is
recorded, the pod service a pod's while its process runs. Nothing else decides what is
allocated, so the two can never hand out the same GPU.
"""

from __future__ import annotations

from runplane.controller.scheduler import MachineLoad, Placement, apply
from runplane.providers.base import Provider


class Allocations:
    """Placements by worker id and by pod id; see the module docstring."""

    def __init__(self, provider: Provider, cpu_overcommit: float) -> None:
        self._provider = provider
        self._overcommit = cpu_overcommit
        # Insertion-ordered: loads are summed in the order things were placed.
        self._workers: dict[str, Placement] = {}
        self._pods: dict[str, Placement] = {}

    # -- endpoint workers ---------------------------------------------------------------

    def hold_worker(self, worker_id: str, placement: Placement) -> None:
        """``worker_id`` holds ``placement`` until ``release_worker``."""
        self._workers[worker_id] = placement

    def release_worker(self, worker_id: str) -> None:
        """The worker's exit was recorded: what it held is free."""
        self._workers.pop(worker_id, None)

    # -- pods ---------------------------------------------------------------------------

    def hold_pod(self, pod_id: str, placement: Placement) -> None:
        """``pod_id`` holds ``placement`` until ``release_pod``."""
        self._pods[pod_id] = placement

    def release_pod(self, pod_id: str) -> None:
        """The pod's process ended: what it held is free."""
        self._pods.pop(pod_id, None)

    def pod_runs(self, pod_id: str) -> bool:
        """Whether the pod holds a placement (its process was started and has not ended)."""
        return pod_id in self._pods

    def pod_placements(self) -> list[Placement]:
        """What every running pod holds (keyed by pod id: ``Placement.key``)."""
        return list(self._pods.values())

    # -- machines -----------------------------------------------------------------------

    def loads(self) -> list[MachineLoad]:
        """Each machine with the GPUs/CPUs held by live workers and pods."""
        out = {m.id: MachineLoad(m, overcommit=self._overcommit)
               for m in self._provider.machines()}
        for placement in (*self._workers.values(), *self._pods.values()):
            if placement.machine_id in out:
                apply(out[placement.machine_id], placement)
        return list(out.values())

    def data_center_of(self, machine_id: str) -> str | None:
        """The data center of one of the provider's machines (None if it is gone)."""
        return next((m.data_center_id for m in self._provider.machines() if m.id == machine_id),
                    None)
