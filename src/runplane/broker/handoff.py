"""Handing jobs to workers: the operations behind the worker routes of the job protocol.

A job-take reserves jobs (:meth:`JobHandoff.take`, long-polling); the written response makes
them taken (:meth:`~JobHandoff.confirm`) or puts them back at the head of the queue
(:meth:`~JobHandoff.untake`); :meth:`~JobHandoff.done` and :meth:`~JobHandoff.stream_chunk`
take a worker's results and :meth:`~JobHandoff.ping` its heartbeats. The state changes are
the job book's transitions (reserving jobs for a take, a progress output, a stream chunk
included: nothing here writes a job); their effects are carried out by ``apply``, and the one
write a worker's post waits for is awaited here.

What a worker posts counts against its job's held-bytes budgets (:mod:`.budget`) only while
it is kept in memory: a result is always taken (it leaves the budgets), a stream chunk over
them is stored and read from the store from then on, and only a progress update over them
is refused (429: the job goes on, its result will be taken).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from runplane.broker.book import JobBook
from runplane.broker.effects import Effects, landed
from runplane.broker.models import COMPLETED, FAILED, IN_PROGRESS, JOB_TAKEN, Job, Worker
from runplane.broker.rebuild import StartupQuiet
from runplane.broker.sweeps import Sweeper
from runplane.broker.workers import WorkerRegistry
from runplane.broker.writer import Writer
from runplane.clock import Clock
from runplane.errors import Forbidden, RateLimited, Unavailable

log = logging.getLogger("runplane.broker.handoff")


class JobHandoff:
    """See the module docstring. ``closed()`` tells whether the server is stopping."""

    def __init__(self, book: JobBook, workers: WorkerRegistry, sweeper: Sweeper,
                 writer: Writer, clock: Clock, apply: Callable[[Effects], asyncio.Future | None],
                 closed: Callable[[], bool], hold_s: float, store_wait_s: float = 5.0,
                 draining: Callable[[], bool] = lambda: False) -> None:
        self._book = book
        self._workers = workers
        self._sweeper = sweeper
        self._writer = writer
        self._clock = clock
        self._apply = apply
        self._closed = closed
        self._draining = draining  # a warm shutdown: no job is handed out any more
        self.hold_s = hold_s  # how long a job-take or job-stop long-poll is held
        # How long a result waits for the store before the worker is told to send it again.
        self.store_wait_s = store_wait_s
        # After a restart: no job handed out until the previous run's workers spoke.
        self.startup: StartupQuiet | None = None

    def has_queued(self, endpoint_id: str) -> bool:
        """Whether a job-take for the endpoint would be answered at once."""
        return self._book.has_queued(endpoint_id)

    async def take(
        self, worker: Worker, n: int, hold_s: float, disconnect: asyncio.Future | None = None
    ) -> list[Job]:
        """Reserve up to ``n`` jobs for ``worker``, holding the long-poll up to ``hold_s``.

        The caller writes the response and then calls :meth:`confirm` (or :meth:`untake` if
        it could not be written).
        """
        workers = self._workers
        workers.seen(worker)
        workers.first_take(worker)
        if worker.parked and not self._closed():
            # Frozen by the controller (FlashBoot): hold the poll until it is resumed, then
            # take as usual for the rest of the hold, so a resumed worker gets its job at once.
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await workers.wait_unparked(worker, hold_s, disconnect)
            hold_s -= loop.time() - t0
            if hold_s <= 0 or (disconnect is not None and disconnect.done()):
                return []
        quiet = self.startup.left_s() if self.startup is not None else 0.0
        if not worker.can_take() or self._closed() or self._draining() or quiet:
            if not self._closed():
                await _hold(min(hold_s, quiet) if quiet else hold_s, disconnect)
            return []
        book = self._book
        jobs = book.reserve(worker, n)
        if jobs is not None:
            return jobs
        # Nothing queued: a long-poll, answered by the next jobs queued (reserved for it).
        fut = asyncio.get_running_loop().create_future()
        book.park(worker, n, fut)
        worker.polling += 1
        try:
            waits = {fut} if disconnect is None else {fut, disconnect}
            await asyncio.wait(waits, timeout=hold_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            worker.polling -= 1
        if fut.done():
            return fut.result()
        fut.cancel()
        return []

    def confirm(self, worker: Worker, jobs: list[Job]) -> None:
        """The job-take response carrying ``jobs`` was written: they are taken now."""
        fx = self._book.confirm(worker, jobs, self._clock.now())
        watch = self._sweeper.watch_execution
        for job in jobs:
            if job.worker_id == worker.id and job.status == IN_PROGRESS:
                watch(job)
        self._apply(fx)

    def untake(self, jobs: list[Job], worker: Worker | None = None) -> None:
        """The job-take response (to ``worker``) could not be written: back to the head of
        the queue."""
        self._book.untake(jobs, worker)

    async def done(self, worker: Worker, job_id: str, body: Any, is_stream: bool,
                   size: int = 0) -> str:
        """A job-done post (``size`` bytes): progress update or final result. Returns what
        was done with it (``progress``, ``completed``, ``failed``, ``ignored``) for the
        response."""
        self._workers.seen(worker)
        if not isinstance(body, dict):
            body = {"output": body}
        if body.get("stopPod"):
            self._workers.request_stop(worker, "the handler asked for a fresh worker "
                                               "(refresh_worker)")
        job = self._book.jobs.get(job_id)
        if job is None or job.deleted or job.endpoint_id != worker.endpoint_id:
            return "ignored"
        if not _holds(worker, job):
            _refuse(worker, job, "job-done")
        if job.final:
            if not job.settled and job.worker_id == worker.id:
                # Its result (an earlier attempt of this post) waits for the store: the
                # worker is answered only once it is stored (or told to send it again).
                await self._until_settled(job)
                return "failed" if job.error else "completed"
            return "ignored"
        if body.get("status") == IN_PROGRESS:
            if job.status != IN_PROGRESS or job.worker_id != worker.id:
                return "ignored"
            output = body.get("output")
            if not size and output is not None:
                size = len(orjson.dumps(output))
            write = self._book.progress(job, output, size)
            if write is None:
                raise RateLimited(5.0, f"progress update of job {job.id} refused: the jobs "
                                       "held for its endpoint or user are at their byte "
                                       "budget (its result will be taken)")
            await self._writer.write(write)
            return "progress"
        error = body.get("error")
        text = (error if isinstance(error, str) else orjson.dumps(error).decode()) if error \
            else None
        fut = self._apply(self._book.report(job, worker, FAILED if text else COMPLETED,
                                            body.get("output"), text, self._clock.now(), size))
        await landed(fut, self.store_wait_s, f"the result of job {job.id} was taken")
        return "failed" if text else "completed"

    async def _until_settled(self, job: Job) -> None:
        """Wait (``store_wait_s`` at most) until ``job``'s final state is stored."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.store_wait_s
        while not job.settled and not job.deleted:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Unavailable(f"the result of job {job.id} was taken, but the store "
                                  "cannot write it yet: retry to learn when it is stored")
            ev = job.changed or asyncio.Event()
            job.changed = ev
            try:
                await asyncio.wait_for(ev.wait(), remaining)
            except TimeoutError:
                pass

    async def stream_chunk(self, worker: Worker, job_id: str, body: Any, size: int = 0) -> str:
        """A streamed output chunk (``size`` bytes as posted) of a running job
        (``/job-stream``): stored, and kept in memory while its budgets allow."""
        self._workers.seen(worker)
        job = self._book.jobs.get(job_id)
        if job is None or job.deleted or job.final or job.endpoint_id != worker.endpoint_id:
            return "ignored"
        if not _holds(worker, job):
            _refuse(worker, job, "job-stream")
        chunk = body["output"] if isinstance(body, dict) and "output" in body else body
        if not size:
            size = len(orjson.dumps(chunk))
        book = self._book
        write = book.stream_chunk(job, chunk, size)
        try:
            await self._writer.write(write)
        except Unavailable:
            # Not stored, not acknowledged: the worker sends it again.
            book.unstream(job, write, size)
            raise
        job.notify()
        return "stored"

    def ping(self, worker: Worker, job_ids: list[str]) -> None:
        """A heartbeat listing the jobs the worker holds (running or queued locally)."""
        now = self._clock.now()
        if self.startup is not None:
            self.startup.heard(worker.id)
        overdue, fx = self._book.reconcile_ping(worker, set(job_ids), now)
        for e in fx.events:  # jobs it was found to run (taken back): their time limit too
            if e.kind == JOB_TAKEN:
                self._sweeper.watch_execution(self._book.jobs[e.job_id])
        self._workers.heartbeat(worker, overdue, now)
        self._apply(fx)


def _holds(worker: Worker, job: Job) -> bool:
    """Whether ``worker`` holds ``job``: runs it, is being handed it, or ran it last (a final
    job: its holder's retried job-done stays idempotent)."""
    if job.final or job.status == IN_PROGRESS:
        return job.worker_id == worker.id
    return job.reserved and job.reserved_by == worker.id


def _refuse(worker: Worker, job: Job, route: str) -> None:
    """Another worker's (or a never taken) job: refused, and logged for the operator."""
    log.warning("%s for job %s refused: worker %s does not hold it", route, job.id, worker.id,
                extra={"job_id": job.id, "worker_id": worker.id,
                       "endpoint_id": job.endpoint_id})
    raise Forbidden(f"job {job.id} is not held by worker {worker.id}")


async def _hold(seconds: float, disconnect: asyncio.Future | None) -> None:
    if disconnect is None:
        await asyncio.sleep(seconds)
    else:
        await asyncio.wait({disconnect}, timeout=seconds)
