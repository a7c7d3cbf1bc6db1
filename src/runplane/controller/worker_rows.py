"""Live workers' rows and Pod objects, kept in memory for ``includeWorkers``.

A worker's row is complete once it was started (or attached by hand): from then on the
columns the Pod view reads (machine, GPUs, cost, image's port mappings, log path, endpoint
version) do not change while it lives; what does change (status, desired status, when the
status changed) is read from the worker registry instead. So each live worker's row is read
from SQL once, not on every GET of its endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, bindparam, select

from runplane.store.tables import workers

_ROWS_BY_ID = select(workers).where(workers.c.id.in_(bindparam("ids", expanding=True)))


class WorkerRowCache:
    """Rows of live workers by id; a row is kept only once it is complete (see above)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._rows: dict[str, Any] = {}
        self._pods: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def pod(self, worker_id: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
        """The worker's Pod object built for ``key`` (its state), if that is still current.
        Callers must not modify it."""
        hit = self._pods.get(worker_id)
        return hit[1] if hit is not None and hit[0] == key else None

    def keep_pod(self, worker_id: str, key: tuple[Any, ...], body: dict[str, Any]) -> None:
        if worker_id in self._rows:  # only for complete rows, like the rows themselves
            self._pods[worker_id] = (key, body)

    def rows(self, live_ids: Iterable[str]) -> list[Any]:
        """The rows of these (live) workers; forgets workers no longer asked for."""
        wanted = list(live_ids)
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
            self._pods = {k: v for k, v in self._pods.items() if k in keep}
        return [r for i in wanted if (r := self._rows.get(i) or fetched.get(i)) is not None]
