"""Start-up cleanup: what the previous server run left behind.

Workers and pods the store says were running when the server last stopped are not children
of this process. Any that survived is killed (pid and start time must match, so a reused pid
is never signalled), their rows are marked exited, and the controller workers are retired in
the broker so the jobs they held go back to the queue at once (each counting a retry) instead
of after a heartbeat timeout. Manual workers (``runplane worker run``) are left alone: they
are not ours to kill and reconnect by themselves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from runplane.store.tables import pods, workers


def cleanup_previous_run(services: Any, now: float) -> None:
    """Run once at start-up, after the broker rebuilt its index and before the first tick."""
    from runplane.providers.runtimes.process import kill_orphan

    with services.engine.begin() as conn:
        for table in (workers, pods):
            rows = conn.execute(select(table.c.id, table.c.provider_data).where(
                table.c.stopped_at.is_(None), table.c.provider_data.is_not(None))).all()
            for row in rows:
                data = row.provider_data or {}
                if data.get("pid") and data.get("started_at"):
                    kill_orphan(int(data["pid"]), float(data["started_at"]))
        conn.execute(update(workers).where(
            workers.c.stopped_at.is_(None), workers.c.manual.is_(False),
            workers.c.started_at.is_not(None)).values(
            stopped_at=now, reason="server restarted", desired_status="EXITED"))
    # The broker's rebuild left those workers' jobs IN_PROGRESS with them; no controller
    # worker of this run exists yet, so every non-manual worker in the registry is stale.
    registry = getattr(services, "worker_registry", None)
    if registry is not None:
        for w in registry.all():
            if not w.manual:
                registry.retire(w.id, "server restarted")
