"""The job broker: what the job API does to jobs, and the assembly of the broker's parts.

Rules (docs/jobs.md):

- ``submit`` commits the job before it is queued or its id is returned.
- A job popped for a job-take is *reserved* until the response was written; only then is it
  confirmed as taken (IN_PROGRESS). If the worker went away first, it goes back to the head
  of the queue without counting a retry.
- A job its worker lost (heartbeats stopped, pings stopped listing it, worker retired) is
  re-queued at the head counting a retry; past ``job_max_retries`` retries it is FAILED.
- Cancel and execution timeout finalize at once (CANCELLED, TIMED_OUT) and push the id to
  the worker's job-stop channel. TTL expiry deletes the job in any state.
- A result for a job that is already final is acknowledged and ignored.

The parts, built here in dependency order and each given only what it uses: the worker
registry (:mod:`.workers`), the job book that owns the state (the queues among it) and its
transitions (:mod:`.book`), the applier of their effects (:mod:`.effects`), the time
limits (:mod:`.sweeps`), the worker-route operations (:mod:`.handoff`), webhooks
(:mod:`.webhooks`), the start-up rebuild (:mod:`.rebuild`) and the group-commit writer
(:mod:`.writer`); the held-bytes budgets and the cache of just-finished jobs
(:mod:`.budget`). Everything runs on the server's event loop thread; SQL writes go through
the writer. Time comes from the injected clock so :meth:`Broker.sweep` can be driven by tests.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson
from sqlalchemy import Engine

from runplane.broker import store as sql
from runplane.broker.book import JobBook
from runplane.broker.budget import HeldBytes
from runplane.broker.effects import EffectApplier, EnqueueListener, JobListener, landed
from runplane.broker.handoff import JobHandoff
from runplane.broker.idempotency import IdempotencyKeys
from runplane.broker.models import Job, QueueMetrics
from runplane.broker.reads import JobReads
from runplane.broker.rebuild import StartupQuiet, rebuild
from runplane.broker.sweeps import Sweeper
from runplane.broker.webhook_guard import Network, check_url
from runplane.broker.webhooks import WebhookSender
from runplane.broker.workers import WorkerRegistry
from runplane.broker.writer import Op, Writer
from runplane.clock import Clock
from runplane.config import BrokerSettings
from runplane.errors import Conflict, RateLimited, Unavailable

def new_job_id() -> str:
    """A job id as /run makes them (``<uuid4>-u1``), for a job submitted later under it
    (:meth:`Broker.submit_many`)."""
    return str(uuid.UUID(int=secrets.randbits(128), version=4)) + "-u1"


@dataclass(frozen=True, slots=True)
class NewJob:
    """One job of :meth:`Broker.submit_many`: its id, the request body as sent, its policy,
    its bytes (0: those of ``payload`` as JSON)."""

    id: str
    payload: dict[str, Any]
    ttl_ms: int
    execution_timeout_ms: int | None
    low_priority: bool
    webhook: str | None
    size: int = 0


class Broker:
    """The job broker; see the module docstring.

    ``owner_of(endpoint_id)`` and ``execution_timeout_ms(endpoint_id)`` come from the control
    plane's endpoints; ``public_url`` is the server's address as workers reach it;
    :attr:`webhooks` posts the bodies the api layer renders (it knows no wire format).

    For the controller: :meth:`queue_metrics`, :meth:`add_enqueue_listener` (called
    synchronously on every enqueue: new job, retry, re-queue of a lost job; e.g. to scale
    from zero at once), :meth:`add_job_listener` (every job's submit, re-queue, take and final
    state, for metrics and statistics) and :attr:`workers`.
    """

    def __init__(self, engine: Engine, settings: BrokerSettings, clock: Clock, public_url: str,
                 owner_of: Callable[[str], str | None],
                 execution_timeout_ms: Callable[[str], int], *,
                 webhook_allow: Sequence[Network] = (),
                 max_queued_jobs: int = 0, max_queued_bytes: int = 0) -> None:
        self._engine = engine
        # Where webhooks may go besides public addresses; an endpoint's queue caps (0: none).
        self._webhook_allow = tuple(webhook_allow)
        self._max_queued_jobs = max_queued_jobs
        self._max_queued_bytes = max_queued_bytes
        self._clock = clock
        self._closed = False
        self._draining = False
        self.writer = Writer(engine)
        # (A worker that goes has its long-polls answered by the book, built next.)
        self.workers = WorkerRegistry(engine, clock, self.writer, settings, public_url, owner_of,
                                      release_waiters=lambda w: self._book.answer_polls(w),
                                      lose_jobs=self._lose)
        self.held = HeldBytes(settings.max_held_bytes_per_endpoint,
                              settings.max_held_bytes_per_user)
        self._book = JobBook(self.workers.get, max_retries=settings.job_max_retries,
                             run_retention_s=settings.run_result_retention_s,
                             runsync_retention_s=settings.runsync_result_retention_s,
                             held=self.held, cache_bytes=settings.result_cache_bytes)
        reads = JobReads(engine, self._book, clock, self.writer)
        # (Reads of memory and the store: .reads.)
        self.find = reads.find
        self.jobs_of = reads.jobs_of
        self.chunks = reads.chunks
        self.stream_take = reads.stream_take
        self._keys = IdempotencyKeys(engine, self.find)
        self.webhooks = WebhookSender(settings.webhook_retry_delay_s, self._webhook_allow,
                                      self.held)
        self._applier = EffectApplier(self.writer, self.workers)
        # First of the settled listeners: a final job's write committed, so it joins the
        # cache of just-finished jobs (from which it leaves memory); the api layer's
        # webhooks come after (server.py).
        self._applier.settled_listeners.append(self._book.keep)
        self._apply = self._applier.apply
        self._sweeper = Sweeper(self._book, engine, clock, settings.sweep_interval_s,
                                execution_timeout_ms, self._apply, self.workers.sweep)
        self.handoff = JobHandoff(self._book, self.workers, self._sweeper, self.writer, clock,
                                  self._apply, lambda: self._closed, settings.job_take_hold_s,
                                  settings.store_wait_s, lambda: self._draining)
        rebuild(engine, self._book, self.workers, self._sweeper, self._apply)
        self.handoff.startup = StartupQuiet(self.workers, clock,
                                            1.5 * settings.worker_ping_interval_ms / 1000 + 1)

    # -- start-up and shutdown -----------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def jobs(self) -> Mapping[str, Job]:
        """The jobs in memory (queued, running, the most recent final ones), read-only."""
        return MappingProxyType(self._book.jobs)

    def start(self) -> None:
        """Start the sweep loop on the running event loop (idempotent)."""
        if not self._sweeper.running and not self._closed:
            self._sweeper.start()

    def drain(self) -> None:
        """A warm shutdown begins: no new job is accepted (``submit`` answers Unavailable)
        or handed out; running jobs go on and their results are taken."""
        self._draining = True
        self._book.answer_polls()

    def running(self) -> int:
        """Jobs handed to workers and not final (what a warm shutdown waits for)."""
        return self._book.running()

    def begin_shutdown(self) -> None:
        """Answer every open long-poll now and hold no new ones (the server is stopping)."""
        self._closed = True
        self._sweeper.stop()
        self._book.answer_polls()
        self.workers.close()
        for job in list(self._book.jobs.values()):
            job.notify()

    async def shutdown(self) -> None:
        """Release every long-poll at once (so the server stops promptly), stop the sweeps
        and webhooks and flush pending writes."""
        self.begin_shutdown()
        await self.webhooks.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)

    def close(self) -> None:
        """Stop the writer thread (after flushing). For tests and process exit."""
        self._closed = True
        self._sweeper.stop()
        self.writer.close()

    # -- for the controller and observers ------------------------------------------------

    def add_enqueue_listener(self, callback: EnqueueListener) -> None:
        self._applier.enqueue_listeners.append(callback)

    def add_job_listener(self, callback: JobListener) -> None:
        """``callback(JobEvent)`` on submit, re-queue, take and final state, synchronously on
        the hot path: it must be O(1) and do no I/O. Its exceptions are logged, not raised."""
        self._applier.job_listeners.append(callback)

    def add_settled_listener(self, callback: Callable[[Job], None]) -> None:
        """``callback(job)`` once a final job's write committed (webhooks), as above."""
        self._applier.settled_listeners.append(callback)

    def queue_metrics(self, endpoint_id: str) -> QueueMetrics:
        return self._book.metrics(endpoint_id)

    def queued_at(self, endpoint_id: str) -> list[float]:
        """When each queued normal-priority job was submitted, oldest first (the ADAPTIVE
        scaler reads the queue's ages; O(queue), asked only for such endpoints)."""
        return sorted(j.created_at for j in self._book.queued(endpoint_id)
                      if not j.low_priority)

    def sweep(self, now: float | None = None) -> None:
        """Enforce TTLs, execution timeouts, heartbeats and result retention as of ``now``."""
        self._sweeper.sweep(self._clock.now() if now is None else now)

    # -- client operations ---------------------------------------------------------------

    async def submit(
        self,
        endpoint_id: str,
        user_id: str,
        payload: dict[str, Any],
        *,
        sync: bool,
        ttl_ms: int,
        execution_timeout_ms: int | None,
        low_priority: bool,
        webhook: str | None,
        size: int = 0,
        idempotency_key: str | None = None,
    ) -> Job:
        """Store a new job (committed before this returns) and queue it. ``size``: the
        request's bytes, counted against the endpoint's queued-bytes cap and the held-bytes
        budgets. A webhook to a refused address is ``Invalid``; a full queue or budget is
        ``RateLimited`` (``TooLarge`` when ``size`` alone is over). A retained job of
        ``user_id`` submitted with the same ``idempotency_key`` is returned instead of a new
        one (:mod:`.idempotency`; ``Conflict`` when it is another endpoint's)."""
        if self._draining:
            raise Unavailable("the server is shutting down: send the job again once it is "
                              "back")
        key = (user_id, idempotency_key) if idempotency_key is not None else None
        stale: list[Op] = []
        if key is not None:
            first, expired = await self._keys.first(key)
            if first is not None:
                if first.endpoint_id != endpoint_id:
                    raise Conflict(f"this Idempotency-Key was used for job {first.id} of "
                                   "another endpoint")
                return first
            if expired is not None:
                stale = self._book.forget_results([expired]).writes
        if webhook is not None:
            check_url(webhook, self._webhook_allow)
        self._book.check_room(endpoint_id, 1, size, self._max_queued_jobs,
                              self._max_queued_bytes)
        self.held.check(endpoint_id, user_id, size)
        now = self._clock.now()
        # A version-4 UUID from the OS's CSPRNG (secrets): every route checks the endpoint's
        # owner, but an id no one can predict leaks nothing even where a check is missed.
        job_id = (("sync-" if sync else "") + str(uuid.UUID(int=secrets.randbits(128), version=4))
                  + "-u1")
        payload = {**payload, "id": job_id}
        job = Job(
            id=job_id, endpoint_id=endpoint_id, user_id=user_id, payload=payload,
            created_at=now, expires_at=now + ttl_ms / 1000.0, sync=sync,
            low_priority=low_priority, execution_timeout_ms=execution_timeout_ms, webhook=webhook,
            size=size, idempotency_key=idempotency_key,
        )
        # Counted from now on (concurrent submissions see it), released if not stored.
        self.held.add(job, size)
        try:
            if key is None:
                await self.writer.write((sql.INSERT_JOB, sql.job_row(job)))
            else:
                self._keys.claim(key)
                stored = None
                try:
                    await self.writer.write(*stale, (sql.INSERT_JOB, sql.job_row(job)))
                    stored = job
                finally:
                    self._keys.release(key, stored)
        except BaseException:
            self.held.release(job)
            raise
        fx = self._book.admit(job, now)
        self._sweeper.watch_ttl(job)
        self._apply(fx)
        return job

    def check_webhook(self, url: str) -> None:
        """Refuse (``Invalid``) a webhook URL that ``submit`` would refuse."""
        check_url(url, self._webhook_allow)

    async def submit_many(self, endpoint_id: str, user_id: str, new: Sequence[NewJob],
                          *also: Op) -> list[Job]:
        """Store the jobs ``new`` and the writes ``also`` in one transaction (all or none),
        then queue them: a batch's finalize, whose own state change is ``also``. Their bytes
        count as one submission's against the queue's cap and the budgets (``submit``)."""
        for n in new:
            if n.webhook is not None:
                check_url(n.webhook, self._webhook_allow)
        sizes = [n.size or len(orjson.dumps(n.payload)) for n in new]
        total = sum(sizes)
        self._book.check_room(endpoint_id, len(new), total, self._max_queued_jobs,
                              self._max_queued_bytes)
        self.held.check(endpoint_id, user_id, total, f"these {len(new):,} jobs")
        now = self._clock.now()
        jobs = [Job(id=n.id, endpoint_id=endpoint_id, user_id=user_id,
                    payload={**n.payload, "id": n.id}, created_at=now,
                    expires_at=now + n.ttl_ms / 1000.0, low_priority=n.low_priority,
                    execution_timeout_ms=n.execution_timeout_ms, webhook=n.webhook, size=size)
                for n, size in zip(new, sizes, strict=True)]
        for job in jobs:
            self.held.add(job, job.size)
        try:
            await self.writer.write(*[(sql.INSERT_JOB, sql.job_row(j)) for j in jobs], *also)
        except BaseException:
            for job in jobs:
                self.held.release(job)
            raise
        for job in jobs:
            fx = self._book.admit(job, now)
            self._sweeper.watch_ttl(job)
            self._apply(fx)
        return jobs

    async def wait_final(self, job: Job, timeout: float) -> None:
        """Wait until ``job`` is final (and committed) or deleted, at most ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ((job.final and job.settled) or job.deleted or self._closed):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if not await self.wait_change(job, remaining):
                return

    async def wait_change(self, job: Job, timeout: float) -> bool:
        """Wait for the next chunk or the end of ``job`` (for SSE streams), at most
        ``timeout`` s; False when the time ran out."""
        ev = job.changed or asyncio.Event()
        job.changed = ev
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def cancel(self, job: Job) -> Job:
        """CANCELLED (committed before this returns), its worker told to stop it."""
        fut = self._apply(self._book.cancel(job, self._clock.now()))
        await landed(fut, self.handoff.store_wait_s, f"the cancel of job {job.id} was taken")
        return job

    async def retry(self, job: Job) -> Job:
        """Re-queue a FAILED or TIMED_OUT job under the same id (old result removed): a
        submission again, refused as ``submit`` refuses one past the budgets."""
        if not job.size:  # (read back from the store: its size is that of its input)
            job.size = len(orjson.dumps(job.payload))
        self.held.check(job.endpoint_id, job.user_id, job.size)
        # Stored first: a retry the store refused changes nothing (503).
        await self.writer.write((sql.RESET_JOB, {"_id": job.id}),
                                (sql.DELETE_CHUNKS, {"_id": job.id}))
        if not job.final:  # a concurrent retry of the same job re-queued it already
            return job
        self._book.reset(job)
        self._sweeper.watch_ttl(job)
        self._apply(self._book.requeue(job, self._clock.now()))
        return job

    async def purge(self, endpoint_id: str) -> int:
        """Cancel every queued (not yet handed out) job of the endpoint; returns how many."""
        removed, fx = self._book.purge(endpoint_id, self._clock.now())
        await landed(self._apply(fx), self.handoff.store_wait_s,
                     f"the purge of {removed} queued jobs was taken")
        return removed

    # -- what the registry reports -------------------------------------------------------

    def _lose(self, jobs: Iterable[Job], reason: str) -> None:
        """Their worker lost them (retired, silent, stopped listing them)."""
        self._apply(self._book.lose(jobs, reason, self._clock.now()))
