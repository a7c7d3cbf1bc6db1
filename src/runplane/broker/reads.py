"""What clients read of jobs: memory first, the store behind it.

Memory holds every queued and running job and the just-finished ones
(:class:`~runplane.broker.budget.JustFinished`); the store holds every job until its TTL or
result retention ends, and every stream chunk. A job in memory wins over its row, which may
lag a write behind; one that left memory (an older final job) is read back from its row, and
the chunks of a job that left memory, or whose chunks went over its budget
(``Job.chunks_in_store``), from the store.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from runplane.broker import store as sql
from runplane.broker.book import JobBook
from runplane.broker.models import FINAL_STATES, IN_QUEUE, Job
from runplane.broker.writer import Writer
from runplane.clock import Clock

# At most this many extra rows are read to make up for rows whose job is in memory.
_MAX_OVERFETCH = 5000


def _retained(job: Job, now: float) -> bool:
    """A row past its TTL or result retention is being deleted: /status answers 404."""
    return job.expires_at > now and (job.retain_until is None or job.retain_until > now)


class JobReads:
    """The broker's reads (``Broker.find``, ``jobs_of``, ``chunks``, ``stream_take``)."""

    def __init__(self, engine: Engine, book: JobBook, clock: Clock, writer: Writer) -> None:
        self._engine = engine
        self._book = book
        self._clock = clock
        self._writer = writer

    def find(self, job_id: str) -> Job | None:
        """A job by id from memory, else from the store (final jobs); None if gone."""
        job = self._book.jobs.get(job_id)
        if job is not None:
            return None if job.deleted else job
        job = sql.load_job(self._engine, job_id)
        if job is None or not _retained(job, self._clock.now()):
            return None  # expired; its row is being deleted
        return job

    def jobs_of(self, endpoint_id: str, status: str | None, limit: int,
                with_payload: bool) -> list[Job]:
        """The endpoint's retained jobs, newest first (IN_QUEUE: oldest first, queue order).

        Memory is the truth for queued and running jobs (every one is there) and holds the
        most recent final ones; older final jobs are read from the store until their
        retention ends. A job in memory wins over its row, which may lag a write behind.
        """
        oldest_first = status == IN_QUEUE
        now = self._clock.now()
        mine = [j for j in list(self._book.jobs.values())
                if j.endpoint_id == endpoint_id and not j.deleted]
        found = [j for j in mine if status is None or j.status == status]
        wanted_final = tuple(FINAL_STATES) if status is None else (
            (status,) if status in FINAL_STATES else ())
        if wanted_final:
            in_memory = {j.id for j in mine}
            rows = sql.list_jobs(
                self._engine, endpoint_id, wanted_final,
                limit + min(len(in_memory), _MAX_OVERFETCH), oldest_first=oldest_first,
                with_payload=with_payload)
            found += [j for j in rows if j.id not in in_memory and _retained(j, now)]
        found.sort(key=lambda j: (j.created_at, j.id), reverse=not oldest_first)
        return found[:limit]

    def chunks(self, job: Job, start: int = 0) -> list[Any]:
        """The stream chunks of ``job`` from the ``start``-th on, without moving
        ``/stream``'s cursor."""
        if self._book.jobs.get(job.id) is job and not job.chunks_in_store:
            return job.chunks[start:]
        return sql.load_chunks(self._engine, job.id, start)

    def stream_take(self, job: Job) -> list[Any]:
        """Chunks not handed out yet (each chunk is handed out once)."""
        if self._book.jobs.get(job.id) is job and not job.chunks_in_store:
            new = job.chunks[job.stream_delivered:]
        else:  # a final job read from the store, or chunks over the budget
            new = sql.load_chunks(self._engine, job.id, job.stream_delivered)
        if new:
            self._writer.write_nowait(self._book.stream_handed(job, len(new)))
        return new

