"""Start-up cleanup: what the previous server run left behind.

Workers and pods the store says were running when the server last stopped are not children
of this process. Any that survived is killed (pid and start time must match, so a reused pid
is never signalled), their rows are marked exited, and the controller workers are retired in
the broker so the jobs they held go back to the queue at once (each counting a retry) instead
of after a heartbeat timeout. Manual workers (``runplane worker run``) are left alone: they
are not ours to kill and reconnect by themselves.
"""

from __future__ import annotations

from runplane.controller.ports import PodProcesses, WorkerRegistryPort
from runplane.controller.worker_rows import WorkerTable


def cleanup_previous_run(workers: WorkerTable, pods: PodProcesses,
                         registry: WorkerRegistryPort, now: float) -> None:
    """Run once at start-up, after the broker rebuilt its index and before the first tick."""
    from runplane.providers.runtimes.process import kill_orphan

    for data in [*workers.unfinished_process_data(), *pods.unfinished_process_data()]:
        if data.get("pid") and data.get("started_at"):
            kill_orphan(int(data["pid"]), float(data["started_at"]))
    workers.mark_previous_run_exited(now)
    # The broker's rebuild left those workers' jobs IN_PROGRESS with them; no controller
    # worker of this run exists yet, so every non-manual worker in the registry is stale.
    for w in registry.all():
        if not w.manual:
            registry.retire(w.id, "server restarted")
