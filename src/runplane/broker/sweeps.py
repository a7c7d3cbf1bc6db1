"""The time limits, enforced by a periodic sweep: TTL, execution timeout, heartbeats, retention.

Deadlines are kept in two heaps, so a sweep costs only the jobs that are due:

- TTL (``expires_at``, from submission): the job is deleted in any state.
- Execution timeout (from the job-take): the job is TIMED_OUT and its worker told to stop it.
  An entry carries the ``started_at`` it was pushed for, so one from an earlier run of a
  re-queued job is ignored.

Then the worker heartbeats (``sweep_workers``: the registry's), the long-polls that ended are
dropped, and final jobs past their result retention are deleted (read from the store, whose
``retain_until`` index makes that a range scan).

:meth:`Sweeper.sweep` takes ``now`` so that tests drive it with their own clock.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable

from sqlalchemy import Engine

from runplane.broker import store as sql
from runplane.broker.book import JobBook
from runplane.broker.effects import Effects
from runplane.broker.models import IN_PROGRESS, Job
from runplane.clock import Clock

log = logging.getLogger("runplane.broker")


class Sweeper:
    """See the module docstring.

    ``default_timeout_ms(endpoint_id)`` is the endpoint's execution timeout (a job's own
    ``policy.executionTimeout`` wins); ``apply`` carries out the transitions' effects;
    ``sweep_workers(now)`` enforces the heartbeats.
    """

    def __init__(self, book: JobBook, engine: Engine, clock: Clock, interval_s: float,
                 default_timeout_ms: Callable[[str], int], apply: Callable[[Effects], object],
                 sweep_workers: Callable[[float], None]) -> None:
        self._book = book
        self._engine = engine
        self._clock = clock
        self._interval_s = interval_s
        self._default_timeout_ms = default_timeout_ms
        self._apply = apply
        self._sweep_workers = sweep_workers
        self._ttl_heap: list[tuple[float, str]] = []
        self._exec_heap: list[tuple[float, str, float]] = []
        self._task: asyncio.Task | None = None

    def watch_ttl(self, job: Job) -> None:
        heapq.heappush(self._ttl_heap, (job.expires_at, job.id))

    def watch_execution(self, job: Job) -> None:
        """``job`` was just taken (``started_at`` set): arm its execution timeout."""
        assert job.started_at is not None
        deadline = job.started_at + self.timeout_ms(job) / 1000.0
        heapq.heappush(self._exec_heap, (deadline, job.id, job.started_at))

    def timeout_ms(self, job: Job) -> int:
        return job.execution_timeout_ms or self._default_timeout_ms(job.endpoint_id)

    def sweep(self, now: float) -> None:
        """Everything due as of ``now``."""
        book = self._book
        jobs = book.jobs
        while self._ttl_heap and self._ttl_heap[0][0] <= now:
            deadline, job_id = heapq.heappop(self._ttl_heap)
            job = jobs.get(job_id)
            if job is not None and not job.final and job.expires_at == deadline:
                self._apply(book.delete(job, "ttl expired", now))
        while self._exec_heap and self._exec_heap[0][0] <= now:
            _, job_id, started = heapq.heappop(self._exec_heap)
            job = jobs.get(job_id)
            if job is not None and job.status == IN_PROGRESS and job.started_at == started:
                self._apply(book.time_out(job, self.timeout_ms(job), now))
        self._sweep_workers(now)
        book.prune_polls()
        ids = sql.expired_ids(self._engine, now)
        if ids:
            self._apply(book.forget_results(ids))

    # -- the loop ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                self.sweep(self._clock.now())
            except Exception:
                log.exception("broker sweep failed")
