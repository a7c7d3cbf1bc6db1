"""Start-up: rebuild the broker's in-memory state from the store, which is the truth.

- Workers not EXITED come back with their credentials and a fresh heartbeat grace period.
- The per-endpoint counters (completed, failed, retried) are seeded from retained jobs.
- Queued jobs are queued again in submission order; a running job stays with its worker
  (and its execution timeout) when that worker is still registered, else it is put back in
  the queue without counting a retry (the server, not the worker, went away).
- Every job's TTL is armed again.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from runplane.broker import store as sql
from runplane.broker.book import JobBook
from runplane.broker.effects import Effects
from runplane.broker.models import COMPLETED, FAILED, IN_PROGRESS, TIMED_OUT
from runplane.broker.sweeps import Sweeper
from runplane.broker.workers import WorkerRegistry


def rebuild(engine: Engine, book: JobBook, workers: WorkerRegistry,
            sweeper: Sweeper, apply: Callable[[Effects], object]) -> None:
    """Fill ``book``, ``workers`` and ``sweeper`` from the store (before anything listens)."""
    workers.load()
    for ep, counts in sql.load_counters(engine).items():
        q = book.queues.of(ep)
        q.completed = counts.get(COMPLETED, 0)
        q.failed = counts.get(FAILED, 0) + counts.get(TIMED_OUT, 0)
        q.retried = counts.get("retried", 0)
    for job, _ in sql.load_active(engine):
        holder = workers.get(job.worker_id) if job.worker_id else None
        apply(book.restore(job, holder))
        sweeper.watch_ttl(job)
        if job.status == IN_PROGRESS:
            sweeper.watch_execution(job)
