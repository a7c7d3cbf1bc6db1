"""Jobs as people read them (the dashboard's job list and job page): runplane extensions.

The objects are /status's job object (``api.v2.wire.job_view``) plus wire-only fields (ISO
times, ``stream``, the controller's ``reason`` for a queued job), next to their one router
(``v1.jobs``). Which jobs, from memory or the store, is ``Broker.jobs_of``.
"""

from __future__ import annotations

from typing import Any

from runplane.api.v2.wire import job_view
from runplane.broker.models import IN_PROGRESS, IN_QUEUE, Job
from runplane.clock import iso
from runplane.system import Services

STATUSES = (IN_QUEUE, IN_PROGRESS, "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


def list_jobs(
    services: Services, endpoint_id: str, status: str | None, limit: int, include_input: bool
) -> list[dict[str, Any]]:
    """The endpoint's jobs as job objects: newest first; IN_QUEUE oldest first (queue order)."""
    jobs = services.broker.jobs_of(endpoint_id, status, limit, include_input)
    return [job_object(services, j, include_input) for j in jobs]


def job_object(services: Services, job: Job, include_input: bool) -> dict[str, Any]:
    """``/status``'s job object plus ``createdAt`` (and ``input`` when asked for)."""
    out = job_view(job)
    reason = services.controller.endpoint_reason(job.endpoint_id) \
        if job.status == IN_QUEUE else None
    if reason:
        out["reason"] = reason
    out["createdAt"] = iso(job.created_at)
    if include_input:
        out["input"] = (job.payload or {}).get("input")
    return out


def job_detail(services: Services, job: Job, include_input: bool) -> dict[str, Any]:
    """The job page: the job object, its endpoint, times (ISO) and every stream chunk so far
    (read without moving ``/stream``'s cursor: looking at a job never takes output away from
    its client)."""
    out = job_object(services, job, include_input)
    out["endpointId"] = job.endpoint_id
    out["startedAt"] = iso(job.started_at) if job.started_at is not None else None
    out["completedAt"] = iso(job.finished_at) if job.finished_at is not None else None
    out["stream"] = [{"output": c} for c in services.broker.chunks(job)]
    return out
