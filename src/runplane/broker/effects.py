"""What a job transition asks for, and the one place where that is carried out.

The transitions (:mod:`runplane.broker.book`) change only the in-memory book: jobs, queues,
counters and worker holds. (A final job's ``settled`` is the one field of a job written here:
its write committed.) Everything else they need done is returned as :class:`Effects`
and carried out by :class:`EffectApplier`, in this order: workers whose holds changed get
their state (IDLE/RUNNING) recomputed, holders of ended jobs are told to stop them, the
enqueue and job listeners hear of it, and the writes go to the group-commit writer; jobs that
reached a final state are *settled* (what ``/runsync`` waits for) once that write committed,
and the settled listeners hear of them then (the api layer's webhooks, ``api/v2/webhooks.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from runplane.broker.models import Job, JobEvent, Worker
from runplane.broker.writer import Op, Writer
from runplane.errors import Unavailable

log = logging.getLogger("runplane.broker")

T = TypeVar("T")
JobListener = Callable[[JobEvent], None]
EnqueueListener = Callable[[str], None]
SettledListener = Callable[[Job], None]


@dataclass(slots=True, eq=False)
class Effects:
    """The side effects of one or more transitions, in the order they were asked for."""

    writes: list[Op] = field(default_factory=list)
    # Steps of jobs' lives, for the job listeners (metrics, stats).
    events: list[JobEvent] = field(default_factory=list)
    # (worker id, job id): the worker is told, through its job-stop channel, to stop the job.
    stops: list[tuple[str, str]] = field(default_factory=list)
    # Workers whose holds changed: their IDLE/RUNNING state follows.
    workers: list[Worker] = field(default_factory=list)
    # Jobs that reached a final state: settled (and their listeners told) once the writes
    # commit.
    finals: list[Job] = field(default_factory=list)
    # Endpoints that had a job queued (scale from zero without waiting for a tick).
    enqueued: list[str] = field(default_factory=list)


def event(kind: str, job: Job, at: float) -> JobEvent:
    """``job`` as its listeners see it now."""
    return JobEvent(kind, job.id, job.endpoint_id, at, job.status, job.worker_id,
                    job.delay_ms(), job.execution_ms())


class WorkerSide(Protocol):
    """What the applier asks of the worker registry."""

    def holds_changed(self, w: Worker) -> None: ...

    def stop_job(self, worker_id: str, job_id: str) -> None: ...


class EffectApplier:
    """Carries out :class:`Effects` (see the module docstring)."""

    def __init__(self, writer: Writer, workers: WorkerSide) -> None:
        self._writer = writer
        self._workers = workers
        self.job_listeners: list[JobListener] = []
        self.enqueue_listeners: list[EnqueueListener] = []
        # A final job's write committed (the api layer sends its webhook).
        self.settled_listeners: list[SettledListener] = []

    def apply(self, fx: Effects) -> asyncio.Future | None:
        """Carry out ``fx``; returns the future of its writes (None when there were none, or
        when they ran at once because the writer is closed)."""
        workers = self._workers
        for w in fx.workers:
            workers.holds_changed(w)
        for worker_id, job_id in fx.stops:
            workers.stop_job(worker_id, job_id)
        if self.enqueue_listeners:
            for endpoint_id in fx.enqueued:
                _tell(self.enqueue_listeners, endpoint_id)
        if self.job_listeners:
            for e in fx.events:
                _tell(self.job_listeners, e)
        if not fx.writes:
            return None
        fut = self._writer.write_nowait(*fx.writes)
        finals = fx.finals
        if finals:
            if fut is None:  # written at once: settled, but not told (the server is closing)
                for job in finals:
                    job.settled = True
                    job.notify()
            else:
                fut.add_done_callback(lambda f: self._settle(finals, f))
        return fut

    def _settle(self, finals: list[Job], fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        for job in finals:
            job.settled = True
            job.notify()
            if self.settled_listeners:
                _tell(self.settled_listeners, job)


async def landed(fut: asyncio.Future | None, timeout_s: float, what: str) -> None:
    """Wait until ``fut`` (the writes of a transition) committed, at most ``timeout_s``:
    Unavailable (503) when the store has not taken them by then. The transition stands and
    its writes are kept and retried (the writer's must-land writes): only its
    acknowledgement waits. Cheaper than ``wait_for`` on the hot path (no task)."""
    if fut is None:
        return
    if not fut.done():
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        fut.add_done_callback(wake)
        timer = loop.call_later(timeout_s, wake)
        try:
            await waiter
        finally:
            timer.cancel()
        if not fut.done():
            raise Unavailable(f"{what}, but the store cannot write it yet (it is kept and "
                              "stored once it can): retry to learn when")
    fut.result()


def _tell(listeners: list[Callable[[T], None]], what: T) -> None:
    """Call each listener; one that raises is logged and does not stop the others (or the
    transition: its state has changed already)."""
    for listener in listeners:
        try:
            listener(what)
        except Exception:
            log.exception("listener %r failed", listener)
