"""Handing jobs to workers: what the worker routes do to jobs (``broker.take`` and friends).

A job-take reserves jobs (``take``, long-polling), the written response makes them taken
(``confirm``) or puts them back at the head of the queue (``untake``); ``done`` and
``stream_chunk`` take a worker's results. Owned by the :class:`Broker` (``broker.handoff``),
whose ``take``, ``confirm``, ``untake``, ``done`` and ``stream_chunk`` are these methods.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from runplane.broker import store as sql
from runplane.broker.models import COMPLETED, FAILED, IN_PROGRESS, JOB_TAKEN, Job, Worker

if TYPE_CHECKING:
    from runplane.broker.broker import Broker


class JobHandoff:
    """See the module docstring."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def take(
        self, worker: Worker, n: int, hold_s: float, disconnect: asyncio.Future | None = None
    ) -> list[Job]:
        """Reserve up to ``n`` jobs for ``worker``, holding the long-poll up to ``hold_s``.

        The caller writes the response and then calls :meth:`confirm` (or :meth:`untake` if
        it could not be written).
        """
        b = self._broker
        b.workers.seen(worker)
        b.workers.first_take(worker)
        if worker.parked and not b.closed:
            # Frozen by the controller (FlashBoot): hold the poll until it is resumed, then
            # take as usual for the rest of the hold, so a resumed worker gets its job at once.
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await b.workers.wait_unparked(worker, hold_s, disconnect)
            hold_s -= loop.time() - t0
            if hold_s <= 0 or (disconnect is not None and disconnect.done()):
                return []
        if not worker.can_take() or b.closed:
            if not b.closed:
                await _hold(hold_s, disconnect)
            return []
        return await b.queues.wait(worker, n, hold_s, disconnect)

    def confirm(self, worker: Worker, jobs: list[Job]) -> None:
        """The job-take response carrying ``jobs`` was written: they are taken now."""
        b = self._broker
        now = b.clock.now()
        if jobs:
            worker.handing -= 1
        ops = []
        workers = b.workers
        watch = b.sweeper.watch_execution
        lifecycle = b.lifecycle
        for job in jobs:
            job.reserved = False
            job.reserved_by = None
            if job.final or job.deleted:
                # Cancelled or expired while the response was on its way.
                workers.stop_job(worker.id, job.id)
                continue
            job.status = IN_PROGRESS
            job.worker_id = worker.id
            job.started_at = now
            job.missing_since = None
            workers.holds(worker, job)
            watch(job)
            ops.append((sql.TAKE_JOB, {"_id": job.id, "worker_id": worker.id,
                                       "started_at": now, "delay_ms": job.delay_ms()}))
            if lifecycle.listeners:
                lifecycle.emit(JOB_TAKEN, job, now)
        if ops:
            b.writer.write_nowait(*ops)

    def untake(self, jobs: list[Job], worker: Worker | None = None) -> None:
        """The job-take response (to ``worker``) could not be written: back to the head of
        the queue."""
        b = self._broker
        if worker is not None and jobs:
            worker.handing -= 1
        for job in reversed(jobs):
            if job.reserved and not job.final and not job.deleted:
                b.lifecycle.leave_running(job)
                b.queues.push(job, front=True)

    async def done(self, worker: Worker, job_id: str, body: Any, is_stream: bool) -> str:
        """A job-done post: progress update or final result. Returns what was done with it
        (``progress``, ``completed``, ``failed``, ``ignored``) for the response."""
        b = self._broker
        b.workers.seen(worker)
        if not isinstance(body, dict):
            body = {"output": body}
        if body.get("stopPod"):
            b.workers.request_stop(worker, "the handler asked for a fresh worker (refresh_worker)")
        job = b.jobs.get(job_id)
        if job is None or job.deleted or job.endpoint_id != worker.endpoint_id or job.final:
            return "ignored"
        if body.get("status") == IN_PROGRESS:
            if job.status != IN_PROGRESS or job.worker_id != worker.id:
                return "ignored"
            job.output = body.get("output")
            await b.writer.write((sql.PROGRESS_JOB, {"_id": job.id, "output": job.output}))
            return "progress"
        holder = job.worker_id if job.status == IN_PROGRESS else job.reserved_by
        error = body.get("error")
        if error:
            text = error if isinstance(error, str) else orjson.dumps(error).decode()
            fut = b.lifecycle.finalize(job, FAILED, body.get("output"), text)
            result = "failed"
        else:
            fut = b.lifecycle.finalize(job, COMPLETED, body.get("output"), None)
            result = "completed"
        if holder and holder != worker.id:
            # It was re-queued and handed to another worker meanwhile: first result wins.
            b.workers.stop_job(holder, job.id)
        if fut is not None:
            await fut
        return result

    async def stream_chunk(self, worker: Worker, job_id: str, body: Any) -> str:
        b = self._broker
        b.workers.seen(worker)
        job = b.jobs.get(job_id)
        if job is None or job.deleted or job.final or job.endpoint_id != worker.endpoint_id:
            return "ignored"
        chunk = body["output"] if isinstance(body, dict) and "output" in body else body
        seq = len(job.chunks)
        job.chunks.append(chunk)
        await b.writer.write((sql.INSERT_CHUNK, {"job_id": job.id, "seq": seq, "output": chunk}))
        job.notify()
        return "stored"


async def _hold(seconds: float, disconnect: asyncio.Future | None) -> None:
    if disconnect is None:
        await asyncio.sleep(seconds)
    else:
        await asyncio.wait({disconnect}, timeout=seconds)
