"""Start-up: take over what the previous server run left running.

Workers outlive the server (a restart or upgrade costs no work): each controller worker the
store says was running is looked for again through the provider (``Provider.adopt``: a
process worker's supervisor by pid and start time). One that still runs is tracked as if
this run had started it, holding its placement; the broker's rebuild already kept its
credential and the jobs it held, so it takes them back without a retry as soon as it speaks
again (a job its pings no longer list is lost after the usual grace, counting a retry). One
that is gone is marked exited with what its supervisor recorded, and retired, so its jobs go
back to the queue at once (each counting a retry). Normal scaling resumes with the first
tick, which counts the adopted workers as capacity.

Pods are not adopted: any that survived is killed (pid and start time must match, so a
reused pid is never signalled). Manual workers (``runplane worker run``) are left alone:
they reconnect by themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runplane.controller.ports import PodProcesses, WorkerRegistryPort
from runplane.controller.scheduler import Placement
from runplane.controller.state import Tracked
from runplane.controller.worker_rows import WorkerTable
from runplane.providers.base import EXITED, Provider

log = logging.getLogger("runplane.controller")


def take_over_previous_run(workers: WorkerTable, pods: PodProcesses,
                           registry: WorkerRegistryPort, provider: Provider,
                           adopt: Callable[[Tracked], None], now: float) -> None:
    """Run once at start-up, after the broker rebuilt its index and before the first tick.
    ``adopt(w)``: the controller tracks ``w`` as its own, holding its placement."""
    from runplane.providers.runtimes.process import exit_file, kill_orphan, read_exit_code

    for data in pods.unfinished_process_data():
        if data.get("pid") and data.get("started_at"):
            kill_orphan(int(data["pid"]), float(data["started_at"]))
    adopted: set[str] = set()
    for row in workers.unfinished_workers():
        data = dict(row.provider_data or {})
        log_path = Path(row.log_path or provider.log_path(row.id))
        registered = registry.get(row.id)
        # A parked (frozen) worker holds no job: it is not worth taking over.
        info = provider.adopt(row.id, data, log_path) \
            if registered is not None and not registered.parked else None
        if info is not None and info.state != EXITED:
            adopt(_tracked(row, data))
            adopted.add(row.id)
            log.info("worker %s of %s still runs: taken over", row.id, row.endpoint_id,
                     extra={"worker_id": row.id, "endpoint_id": row.endpoint_id})
            continue
        if data.get("pid") and data.get("started_at"):
            kill_orphan(int(data["pid"]), float(data["started_at"]))
        code = read_exit_code(exit_file(log_path))
        reason = ("gone after a server restart" if code is None
                  else f"exited with code {code} while the server was down")
        workers.mark_exited(row.id, now, code, reason)
        registry.retire(row.id, reason)
    # Registered but never started (the server stopped in between), or not found above.
    for registered_worker in registry.all():
        if not registered_worker.manual and registered_worker.id not in adopted:
            registry.retire(registered_worker.id, "server restarted")
    provider.remove_leftovers()


def _tracked(row: Any, data: dict[str, Any]) -> Tracked:
    """What the controller keeps of a worker it takes over, from its row."""
    gpus = data.get("gpus")
    placement = Placement(
        key=f"adopted:{row.id}", machine_id=row.machine_id or "", gpu_type_id=row.gpu_type_id,
        gpu_indices=tuple(int(i) for i in gpus) if isinstance(gpus, list) else (),
        vcpu_count=float(row.vcpu_count or 0), memory_in_gb=float(row.memory_in_gb or 0),
        cost_per_hr=float(row.cost_per_hr or 0))
    return Tracked(row.id, row.endpoint_id, row.user_id, int(row.endpoint_version or 0),
                   float(row.started_at), placement, took=row.first_take_at is not None)
