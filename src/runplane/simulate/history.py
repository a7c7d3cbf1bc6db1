"""An installation's own history as simulator input: an endpoint's jobs (a trace) and its
workers' measured cold starts, read from the store."""

from __future__ import annotations

from sqlalchemy import Engine, select

from runplane.simulate.trace import Trace, TraceJob, make_trace
from runplane.store.tables import jobs, workers


def endpoint_trace(engine: Engine, endpoint_id: str, since: float,
                   limit: int | None = None) -> Trace:
    """The endpoint's jobs submitted since ``since`` (epoch seconds) that ran, as a trace
    (arrival: submission; execution: what the worker took), the newest ``limit`` of them
    when given. Jobs whose results the retention already deleted are not in the store, so
    not in the trace."""
    query = (select(jobs.c.created_at, jobs.c.execution_ms)
             .where(jobs.c.endpoint_id == endpoint_id, jobs.c.created_at >= since,
                    jobs.c.execution_ms.is_not(None))
             .order_by(jobs.c.created_at.desc()))
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return make_trace(f"endpoint {endpoint_id}",
                      [TraceJob(r.created_at, r.execution_ms / 1000.0, endpoint_id) for r in rows])


def measured_cold_starts(engine: Engine, endpoint_id: str | None = None,
                         limit: int = 1000) -> list[float]:
    """Start-to-first-job-take seconds of the latest controller-started workers (one
    endpoint's, or every endpoint's): the cold starts this installation measured."""
    query = (select(workers.c.started_at, workers.c.first_take_at)
             .where(workers.c.started_at.is_not(None), workers.c.first_take_at.is_not(None),
                    workers.c.manual.is_(False))
             .order_by(workers.c.started_at.desc()).limit(limit))
    if endpoint_id is not None:
        query = query.where(workers.c.endpoint_id == endpoint_id)
    with engine.connect() as conn:
        return [max(0.0, r.first_take_at - r.started_at) for r in conn.execute(query)]
