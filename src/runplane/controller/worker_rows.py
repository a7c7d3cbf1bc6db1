"""The controller's side of the ``workers`` table: its writes (``WorkerTable``), and live
workers' rows and records kept in memory for ``includeWorkers`` (``WorkerRowCache``).

The job protocol (the broker's writer) owns the columns it changes (status, heartbeats, the
credential); every column the controller changes is written through ``WorkerTable`` only.

A worker's row is complete once it was started (or attached by hand): from then on the
columns a worker's record reads (machine, GPUs, cost, image's port mappings, log path, endpoint
version) do not change while it lives; what does change (status, desired status, when the
status changed) is read from the worker registry instead. So each live worker's row is read
from SQL once, not on every GET of its endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, delete, select, update

from runplane.controller.scheduler import Placement
from runplane.providers.base import ProcessInfo
from runplane.schemas.pod_records import WorkerRecord
from runplane.store.tables import workers
from runplane.worker_state import WorkerState

_ROWS_BY_ID = select(workers).where(workers.c.id.in_(bindparam("ids", expanding=True)))


class WorkerTable:
    """Every write the controller makes to ``workers``, one named method per transition."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def mark_started(self, worker_id: str, info: ProcessInfo, log_path: Path,
                     placed: Placement, endpoint_version: int) -> None:
        """Its process runs: where, on what, from when, and where its output goes."""
        self._set(worker_id, started_at=info.started_at, provider_data=info.data,
                  log_path=str(log_path), machine_id=placed.machine_id,
                  gpu_type_id=placed.gpu_type_id, gpu_count=len(placed.gpu_indices),
                  vcpu_count=int(placed.vcpu_count), memory_in_gb=placed.memory_in_gb,
                  cost_per_hr=placed.cost_per_hr, endpoint_version=endpoint_version,
                  desired_status=WorkerState.RUNNING.value)

    def mark_stopping(self, worker_id: str, reason: str) -> None:
        """The controller asked it to stop (its process may still be shutting down)."""
        self._set(worker_id, desired_status=WorkerState.EXITED.value, reason=reason)

    def mark_exited(self, worker_id: str, end: float, exit_code: int | None,
                    reason: str) -> None:
        """Its process is gone: when, with which exit code, and why."""
        self._set(worker_id, stopped_at=end, exit_code=exit_code, reason=reason,
                  desired_status=WorkerState.EXITED.value)

    def reuse(self, worker_id: str) -> None:
        """Its id is about to be registered again (a scaled-down worker started again by
        ``strict-resume``): its previous run's row goes; the new run's row takes the id. Only
        an exited worker's row is removed."""
        with self._engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.id == worker_id,
                                               workers.c.stopped_at.is_not(None)))

    def unfinished_process_data(self) -> list[dict[str, Any]]:
        """``provider_data`` of every started worker not marked exited (start-up cleanup)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(workers.c.provider_data).where(
                workers.c.stopped_at.is_(None), workers.c.provider_data.is_not(None))).all()
        return [row.provider_data or {} for row in rows]

    def unfinished_workers(self) -> list[Any]:
        """Rows of the controller workers a previous run started and did not see exit."""
        with self._engine.connect() as conn:
            return list(conn.execute(select(workers).where(
                workers.c.stopped_at.is_(None), workers.c.manual.is_(False),
                workers.c.started_at.is_not(None))).all())

    def _set(self, worker_id: str, **values: object) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(workers).where(workers.c.id == worker_id).values(**values))


class WorkerRowCache:
    """Rows of live workers by id; a row is kept only once it is complete (see above)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._rows: dict[str, Any] = {}
        self._records: dict[str, tuple[tuple[Any, ...], WorkerRecord]] = {}

    def record(self, worker_id: str, key: tuple[Any, ...]) -> WorkerRecord | None:
        """The worker's record built for ``key`` (its state), if that is still current."""
        hit = self._records.get(worker_id)
        return hit[1] if hit is not None and hit[0] == key else None

    def keep_record(self, worker_id: str, key: tuple[Any, ...], record: WorkerRecord) -> None:
        if worker_id in self._rows:  # only for complete rows, like the rows themselves
            self._records[worker_id] = (key, record)

    def fresh(self, worker_id: str) -> Any:
        """One worker's row as stored now (live or not; None if there is none), uncached."""
        with self._engine.connect() as conn:
            return conn.execute(_ROWS_BY_ID, {"ids": [worker_id]}).first()

    def rows(self, live_ids: Iterable[str],
             created: Mapping[str, float] | None = None) -> list[Any]:
        """The rows of these (live) workers; forgets workers no longer asked for.
        ``created``: each worker's registration time, when known: a cached row of an earlier
        run of the same id (a worker started again by ``strict-resume``) is read again."""
        wanted = list(live_ids)
        if created is not None:
            for i in wanted:
                row = self._rows.get(i)
                if row is not None and i in created and row.created_at != created[i]:
                    del self._rows[i]
                    self._records.pop(i, None)
        missing = [i for i in wanted if i not in self._rows]
        fetched: dict[str, Any] = {}
        if missing:
            with self._engine.connect() as conn:
                fetched = {r.id: r for r in conn.execute(_ROWS_BY_ID, {"ids": missing})}
            for worker_id, row in fetched.items():
                if row.started_at is not None or row.manual:
                    self._rows[worker_id] = row
        if len(self._rows) > 2 * len(wanted) + 1024:
            # Bounded: drop rows of workers that are gone (callers ask for the live ones).
            keep = set(wanted)
            self._rows = {k: v for k, v in self._rows.items() if k in keep}
            self._records = {k: v for k, v in self._records.items() if k in keep}
        return [r for i in wanted if (r := self._rows.get(i) or fetched.get(i)) is not None]
