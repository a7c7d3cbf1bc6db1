"""Batch jobs (RunPod's beta): a named set of ``/run`` requests against one endpoint.

A batch is built as a DRAFT (requests added and removed), then FINALIZED: its requests are
submitted, in one transaction with the batch's change of state, as ordinary jobs of the
endpoint under the requests' own ids, at low priority, so a worker takes them only when no
interactive job waits (and they do not scale the endpoint up, as ``policy.lowPriority``
jobs do not). A batch has no RUNNING or COMPLETED state: a FINALIZED batch is done when
its completed, failed and cancelled requests add up to its total. A cancel drops the queued
requests at once and lets the running ones finish; the batch is CANCELLED once they have.
runplane never makes a batch FAILED: a finalize whose jobs cannot be submitted (the store
refused them, the endpoint's queue is full) changes nothing and is answered with that error,
to be sent again.

Limits as RunPod documents them: 10 active batches per endpoint (a DRAFT, or a FINALIZED one
with requests still to end), 5,000 requests per batch.

Results outlive the jobs: when a batch's job ends (the broker's ``final`` event), its state
and result are copied to its request's row. A job that disappears before it ends (its TTL;
a batch request's default TTL is 7 days, not 24 h) is recorded as FAILED when noticed: on a
read of its batch, or at start-up, when the requests of unfinished batches are matched
with their jobs again.
"""

from __future__ import annotations

import asyncio
import builtins  # ``list`` in the class below is BatchService.list
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from runplane.broker.broker import Broker, NewJob
from runplane.broker.models import (
    CANCELLED,
    COMPLETED,
    FINAL_STATES,
    IN_PROGRESS,
    IN_QUEUE,
    JOB_FINAL,
    Job,
    JobEvent,
)
from runplane.clock import Clock
from runplane.errors import Conflict, Invalid, NotFound
from runplane.ids import new_id
from runplane.services import batch_rows as sql

DRAFT = "DRAFT"
FINALIZED = "FINALIZED"
FAILED = "FAILED"  # the batch's; a request's FAILED is the job state of the same name
MAX_ACTIVE_BATCHES = 10
MAX_REQUESTS_PER_BATCH = 5_000
BATCH_REQUEST_TTL_MS = 7 * 24 * 3600 * 1000



@dataclass(frozen=True, slots=True)
class NewRequest:
    """One validated ``/run`` body of a batch and the policy its job will have."""

    payload: dict[str, Any]
    ttl_ms: int
    execution_timeout_ms: int | None
    webhook: str | None


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch as its routes show it; times are the clock's seconds."""

    id: str
    endpoint_id: str
    name: str | None
    status: str
    created_at: float
    finalized_at: float | None
    total: int
    in_progress: int
    completed: int
    failed: int
    cancelled: int


@dataclass(frozen=True, slots=True)
class Request:
    """One request of a batch: its job's state (live while it runs, copied once it ended)."""

    id: str
    status: str
    output: Any
    error: str | None
    started_at: float | None
    completed_at: float | None


@dataclass(eq=False)
class _Live:
    """A FINALIZED batch with jobs still to end: the jobs, and the counts of the ended."""

    id: str
    endpoint_id: str
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    cancelling: bool = False
    jobs: dict[str, Job] = field(default_factory=dict)


class BatchService:
    """See the module docstring. Every method takes the endpoint the caller was checked
    against; a batch of another endpoint is a NotFound, like a missing one."""

    def __init__(self, engine: Engine, broker: Broker, clock: Clock) -> None:
        self._rows = sql.BatchRows(engine)
        self._broker = broker
        self._clock = clock
        self._lock = asyncio.Lock()  # one change of a batch's requests at a time
        self._live: dict[str, _Live] = {}
        self._of_job: dict[str, _Live] = {}
        broker.add_job_listener(self._on_job)
        self._load()

    # -- changes -------------------------------------------------------------------------

    async def create(self, endpoint_id: str, user_id: str, requests: Sequence[NewRequest],
                     name: str | None = None) -> Batch:
        """A new DRAFT batch with ``requests`` (possibly none)."""
        _check_size(len(requests))
        _check_webhooks(self._broker, requests)
        async with self._lock:
            if self._active(endpoint_id) >= MAX_ACTIVE_BATCHES:
                raise Conflict(f"endpoint {endpoint_id} has {MAX_ACTIVE_BATCHES} active batches "
                               "already (the limit): finalize and let one finish, or cancel one")
            batch_id = "batch_" + new_id(24)
            now = self._clock.now()
            row = {"id": batch_id, "endpoint_id": endpoint_id, "user_id": user_id, "name": name,
                   "status": DRAFT, "created_at": now}
            await self._broker.writer.write(sql.insert_batch(row),
                                            *sql.insert_requests(batch_id, 0, requests))
        return self.get(endpoint_id, batch_id)

    async def append(self, endpoint_id: str, batch_id: str,
                     requests: Sequence[NewRequest]) -> Batch:
        """Add ``requests`` to a DRAFT batch."""
        _check_webhooks(self._broker, requests)
        async with self._lock:
            self._draft(endpoint_id, batch_id, "add requests to")
            rows = self._rows
            _check_size(rows.count(batch_id) + len(requests))
            await self._broker.writer.write(
                *sql.insert_requests(batch_id, rows.next_seq(batch_id), requests))
        return self.get(endpoint_id, batch_id)

    async def remove_request(self, endpoint_id: str, batch_id: str, request_id: str) -> Batch:
        """Remove one request of a DRAFT batch."""
        async with self._lock:
            self._draft(endpoint_id, batch_id, "remove requests from")
            if not self._rows.has_request(batch_id, request_id):
                raise NotFound("request", request_id)
            await self._broker.writer.write(sql.delete_request(request_id))
        return self.get(endpoint_id, batch_id)

    async def rename(self, endpoint_id: str, batch_id: str, name: str | None) -> Batch:
        """Change the batch's display name (in any state)."""
        self._row(endpoint_id, batch_id)
        await self._broker.writer.write((sql.SET_BATCH.values(name=name), {"_id": batch_id}))
        return self.get(endpoint_id, batch_id)

    async def finalize(self, endpoint_id: str, batch_id: str) -> Batch:
        """Lock a DRAFT batch and submit its requests as low-priority jobs (all or none);
        a FINALIZED batch is answered as it is (a resent finalize)."""
        async with self._lock:
            row = self._row(endpoint_id, batch_id)
            if row.status == FINALIZED:
                return self.get(endpoint_id, batch_id)
            if row.status != DRAFT:
                raise Conflict(f"batch {batch_id} is {row.status}: only a DRAFT batch can be "
                               "finalized")
            rows = self._rows.requests(batch_id)
            new = [NewJob(r.id, r.payload, r.ttl_ms, r.execution_timeout_ms, True, r.webhook)
                   for r in rows]
            now = self._clock.now()
            jobs = await self._broker.submit_many(
                endpoint_id, row.user_id, new,
                (sql.SET_BATCH.values(status=FINALIZED, finalized_at=now), {"_id": batch_id}))
            live = _Live(batch_id, endpoint_id)
            self._live[batch_id] = live
            for job in jobs:
                self._track(live, job)
        return self.get(endpoint_id, batch_id)

    async def cancel(self, endpoint_id: str, batch_id: str) -> Batch:
        """Cancel a batch: its queued requests at once; running ones finish (CANCELLED once
        they have). A CANCELLED batch is answered as it is."""
        async with self._lock:
            row = self._row(endpoint_id, batch_id)
            now = self._clock.now()
            if row.status == DRAFT:
                await self._broker.writer.write(
                    (sql.SET_BATCH.values(status=CANCELLED, cancel_requested_at=now, ended_at=now),
                     {"_id": batch_id}),
                    sql.set_requests(batch_id, CANCELLED))
            elif row.status == FINALIZED and row.cancel_requested_at is None:
                live = self._live.get(batch_id)
                if live is not None:  # (before the write: a job may end meanwhile)
                    live.cancelling = True
                await self._broker.writer.write(
                    (sql.SET_BATCH.values(cancel_requested_at=now), {"_id": batch_id}))
                if live is None:  # every request had ended: cancelled at once
                    await self._broker.writer.write(
                        (sql.SET_BATCH.values(status=CANCELLED, ended_at=now), {"_id": batch_id}))
                else:
                    queued = [j for j in live.jobs.values() if j.status == IN_QUEUE]
                    await asyncio.gather(*(self._broker.cancel(j) for j in queued))
                    self._end_if_drained(live)
            elif row.status == FAILED:
                raise Conflict(f"batch {batch_id} is FAILED: there is nothing to cancel")
        return self.get(endpoint_id, batch_id)

    # -- reads ---------------------------------------------------------------------------

    def get(self, endpoint_id: str, batch_id: str) -> Batch:
        """The batch's summary with its request counts."""
        return self._summary(self._row(endpoint_id, batch_id))

    def list(self, endpoint_id: str, offset: int, limit: int) -> tuple[list[Batch], int]:
        """The endpoint's batches, newest first, and how many there are."""
        rows, total = self._rows.page(endpoint_id, offset, limit)
        return [self._summary(r) for r in rows], total

    def requests(self, endpoint_id: str, batch_id: str, offset: int,
                 limit: int) -> tuple[builtins.list[Request], int]:
        """The batch's requests in the order they were added, and how many there are."""
        self._row(endpoint_id, batch_id)
        live = self._live.get(batch_id)
        if live is not None:
            self._notice_expired(live)
        out = []
        for r in self._rows.requests(batch_id, offset, limit):
            job = live.jobs.get(r.id) if live is not None else None
            if job is not None:
                out.append(Request(r.id, _shown(job), None, None, job.started_at, None))
            elif r.status not in FINAL_STATES and live is not None:
                # Ended a moment ago: its copy is on its way to the store; the job has it.
                ended = self._broker.find(r.id)
                out.append(_from_job(ended) if ended is not None else _from_row(r))
            else:
                out.append(_from_row(r))
        return out, self._rows.count(batch_id)

    # -- the jobs' ends ------------------------------------------------------------------

    def _on_job(self, e: JobEvent) -> None:
        """A job listener (on the hot path: one dict lookup for a job of no batch)."""
        if e.kind != JOB_FINAL:
            return
        live = self._of_job.pop(e.job_id, None)
        if live is not None:
            self._ended(live, live.jobs.pop(e.job_id))
            self._end_if_drained(live)

    def _ended(self, live: _Live, job: Job) -> None:
        self._record(live, job.id, job.status, job.output, job.error, job.started_at,
                     job.finished_at)

    def _expired(self, live: _Live, request_id: str, started_at: float | None) -> None:
        self._record(live, request_id, FAILED, None,
                     "the job expired (its TTL) before it ended", started_at, None)

    def _record(self, live: _Live, request_id: str, status: str, output: Any,
                error: str | None, started_at: float | None, ended_at: float | None) -> None:
        """Count a request's end and copy it to its row (through the job plane's writer,
        after the job's own final write)."""
        if status == COMPLETED:
            live.completed += 1
        elif status == CANCELLED:
            live.cancelled += 1
        else:
            live.failed += 1
        self._broker.writer.write_nowait((sql.FINISH_REQUEST, {
            "_id": request_id, "status": status, "output": output, "error": error,
            "started_at": started_at, "completed_at": ended_at or self._clock.now()}))

    def _end_if_drained(self, live: _Live) -> None:
        if live.jobs:
            return
        self._live.pop(live.id, None)
        if live.cancelling:
            self._broker.writer.write_nowait(
                (sql.SET_BATCH.values(status=CANCELLED, ended_at=self._clock.now()),
                 {"_id": live.id}))

    def _notice_expired(self, live: _Live) -> None:
        """Jobs deleted before they ended (TTL) tell no listener: recorded when seen."""
        for job in [j for j in live.jobs.values() if j.deleted and not j.final]:
            del live.jobs[job.id]
            self._of_job.pop(job.id, None)
            self._expired(live, job.id, job.started_at)
        self._end_if_drained(live)

    def _track(self, live: _Live, job: Job) -> None:
        live.jobs[job.id] = job
        self._of_job[job.id] = live

    def _load(self) -> None:
        """Start-up: match the unfinished requests of FINALIZED batches with their jobs."""
        for r in self._rows.unfinished():
            live = self._live.get(r.batch_id)
            if live is None:
                live = self._live[r.batch_id] = _Live(r.batch_id, r.endpoint_id,
                                                      cancelling=r.cancel_requested_at is not None)
                counts = self._rows.status_counts(r.batch_id)
                live.completed = counts.get(COMPLETED, 0)
                live.cancelled = counts.get(CANCELLED, 0)
                live.failed = sum(counts.values()) - live.completed - live.cancelled \
                    - counts.get(IN_QUEUE, 0)
            job = self._broker.find(r.id)
            if job is None:
                self._expired(live, r.id, None)
            elif job.final:
                self._ended(live, job)
            else:
                self._track(live, job)
        for live in list(self._live.values()):
            self._end_if_drained(live)

    # -- rows ----------------------------------------------------------------------------

    def _row(self, endpoint_id: str, batch_id: str) -> Any:
        row = self._rows.batch(batch_id)
        if row is None or row.endpoint_id != endpoint_id:
            raise NotFound("batch", batch_id)
        return row

    def _draft(self, endpoint_id: str, batch_id: str, what: str) -> Any:
        row = self._row(endpoint_id, batch_id)
        if row.status != DRAFT:
            raise Conflict(f"batch {batch_id} is {row.status}: you can only {what} a DRAFT "
                           "batch")
        return row

    def _active(self, endpoint_id: str) -> int:
        return self._rows.drafts(endpoint_id) + sum(1 for b in self._live.values() if b.endpoint_id == endpoint_id)

    def _summary(self, row: Any) -> Batch:
        live = self._live.get(row.id)
        if live is not None:
            self._notice_expired(live)
            live = self._live.get(row.id)
        counts = self._rows.status_counts(row.id)
        total = sum(counts.values())
        if live is not None:  # the store lags the live counts by a write
            running = sum(1 for j in live.jobs.values() if j.status == IN_PROGRESS)
            done = (live.completed, live.failed, live.cancelled)
        else:
            running = 0
            done = (counts.get(COMPLETED, 0),
                    total - counts.get(COMPLETED, 0) - counts.get(CANCELLED, 0)
                    - counts.get(IN_QUEUE, 0), counts.get(CANCELLED, 0))
        # A cancelled batch that drained is CANCELLED, whether or not that write landed yet.
        drained = row.status == FINALIZED and row.cancel_requested_at is not None and live is None
        status = CANCELLED if drained else row.status
        return Batch(row.id, row.endpoint_id, row.name, status, row.created_at,
                     row.finalized_at, total, running, *done)


def _check_webhooks(broker: Broker, requests: Sequence[NewRequest]) -> None:
    """Refuse now the webhooks the finalize's submit would refuse."""
    for i, r in enumerate(requests):
        if r.webhook is not None:
            try:
                broker.check_webhook(r.webhook)
            except Invalid as exc:
                raise Invalid(f"requests[{i}].{exc.message}", f"requests[{i}].webhook") from None


def _check_size(n: int) -> None:
    if n > MAX_REQUESTS_PER_BATCH:
        raise Invalid(f"a batch holds at most {MAX_REQUESTS_PER_BATCH:,} requests ({n:,} asked)",
                      "requests")


def _shown(job: Job) -> str:
    """As /status shows it: a final state once stored (``wire.shown_status``)."""
    if job.settled or not job.final:
        return job.status
    return IN_PROGRESS if job.started_at is not None else IN_QUEUE


def _from_job(job: Job) -> Request:
    return Request(job.id, job.status, job.output, job.error, job.started_at, job.finished_at)


def _from_row(r: Any) -> Request:
    return Request(r.id, r.status, r.output, r.error, r.started_at, r.completed_at)
