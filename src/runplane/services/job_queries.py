"""Reading jobs for people (the dashboard's job list and job page): runplane extensions.

The broker's memory is the truth for queued and running jobs (every one of them is there) and
holds the most recent final ones; older final jobs are read from the store until their
retention ends. A job in memory always wins over its row, which may lag a write behind.
"""

from __future__ import annotations

from typing import Any

from runplane.broker import store as sql
from runplane.broker.models import FINAL_STATES, IN_PROGRESS, IN_QUEUE, Job
from runplane.clock import iso
from runplane.services.jobs import job_view

STATUSES = (IN_QUEUE, IN_PROGRESS, "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
# At most this many extra rows are read to make up for rows whose job is in memory.
_MAX_OVERFETCH = 5000


def list_jobs(
    broker: Any, endpoint_id: str, status: str | None, limit: int, include_input: bool
) -> list[dict[str, Any]]:
    """The endpoint's jobs as job objects: newest first; IN_QUEUE oldest first (queue order)."""
    oldest_first = status == IN_QUEUE
    now = broker.clock.now()
    mine = [j for j in list(broker.jobs.values()) if j.endpoint_id == endpoint_id and not j.deleted]
    found = [j for j in mine if status is None or j.status == status]
    wanted_final = tuple(FINAL_STATES) if status is None else (
        (status,) if status in FINAL_STATES else ())
    if wanted_final:
        in_memory = {j.id for j in mine}
        rows = sql.list_jobs(
            broker.engine, endpoint_id, wanted_final, limit + min(len(in_memory), _MAX_OVERFETCH),
            oldest_first=oldest_first, with_payload=include_input)
        found += [j for j in rows if j.id not in in_memory and _retained(j, now)]
    found.sort(key=lambda j: (j.created_at, j.id), reverse=not oldest_first)
    return [job_object(broker, j, include_input) for j in found[:limit]]


def _retained(job: Job, now: float) -> bool:
    """A row past its TTL or result retention is being deleted: /status answers 404 already."""
    return job.expires_at > now and (job.retain_until is None or job.retain_until > now)


def job_object(broker: Any, job: Job, include_input: bool) -> dict[str, Any]:
    """``/status``'s job object plus ``createdAt`` (and ``input`` when asked for)."""
    out = job_view(job)
    reason = broker.waiting_reason(job)
    if reason:
        out["reason"] = reason
    out["createdAt"] = iso(job.created_at)
    if include_input:
        out["input"] = (job.payload or {}).get("input")
    return out


def job_detail(broker: Any, job: Job, include_input: bool) -> dict[str, Any]:
    """The job page: the job object, its endpoint, times (ISO) and every stream chunk so far.

    Chunks are read without moving ``/stream``'s cursor: looking at a job never takes output
    away from its client.
    """
    out = job_object(broker, job, include_input)
    out["endpointId"] = job.endpoint_id
    out["startedAt"] = iso(job.started_at) if job.started_at is not None else None
    out["completedAt"] = iso(job.finished_at) if job.finished_at is not None else None
    live = broker.jobs.get(job.id) is job
    chunks = list(job.chunks) if live else sql.load_chunks(broker.engine, job.id, 0)
    out["stream"] = [{"output": c} for c in chunks]
    return out
