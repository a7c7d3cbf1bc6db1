"""Start-up: rebuild the broker's in-memory state from the store, which is the truth.

- Workers not EXITED come back with their credentials and a fresh heartbeat grace period.
- The per-endpoint counters (completed, failed, retried) are seeded from retained jobs.
- Queued jobs are queued again in submission order; a running job stays with its worker
  (and its execution timeout) when that worker is still registered, else it is put back in
  the queue without counting a retry (the server, not the worker, went away).
- Every job's TTL is armed again.
- Jobs are handed out again once the previous run's workers have spoken
  (:class:`StartupQuiet`).
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
from runplane.clock import Clock


def rebuild(engine: Engine, book: JobBook, workers: WorkerRegistry,
            sweeper: Sweeper, apply: Callable[[Effects], object]) -> None:
    """Fill ``book``, ``workers`` and ``sweeper`` from the store (before anything listens)."""
    workers.load()
    for ep, counts in sql.load_counters(engine).items():
        book.seed_counters(ep, counts.get(COMPLETED, 0),
                           counts.get(FAILED, 0) + counts.get(TIMED_OUT, 0),
                           counts.get("retried", 0))
    for job in sql.load_active(engine):
        holder = workers.get(job.worker_id) if job.worker_id else None
        apply(book.restore(job, holder))
        sweeper.watch_ttl(job)
        if job.status == IN_PROGRESS:
            sweeper.watch_execution(job)


class StartupQuiet:
    """After a restart, no job is handed out until every controller worker of the previous
    run has pinged (a ping lists the jobs it runs) or ``grace_s`` has passed: a job whose
    take was not stored before the server went down is queued in the store, and must go
    back to the worker running it (``JobBook.reconcile_ping``), not to a second one."""

    def __init__(self, workers: WorkerRegistry, clock: Clock, grace_s: float) -> None:
        self._workers = workers
        self._clock = clock
        self._unheard = {w.id for w in workers.all() if not w.manual}
        self._until = clock.now() + grace_s if self._unheard else 0.0

    def heard(self, worker_id: str) -> None:
        """``worker_id`` pinged."""
        self._unheard.discard(worker_id)

    def left_s(self) -> float:
        """Seconds of quiet left; 0 once every worker still registered was heard."""
        if not self._until:
            return 0.0
        self._unheard = {i for i in self._unheard if self._workers.get(i) is not None}
        left = self._until - self._clock.now()
        if not self._unheard or left <= 0:
            self._until = 0.0
            return 0.0
        return left
