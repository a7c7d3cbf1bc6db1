"""In-memory records of jobs and workers, and the read-only views handed to other modules."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from runplane.worker_state import EXITED, WorkerState

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMED_OUT = "TIMED_OUT"
FINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})


@dataclass(eq=False, slots=True)
class Job:
    """A job the broker tracks in memory: queued, being handed out, running, or just final.

    ``payload`` is the object given to the worker (``id``, ``input`` and every other
    top-level field of the request). Times are seconds since the epoch from the clock.
    """

    id: str
    endpoint_id: str
    user_id: str
    payload: dict[str, Any]
    created_at: float
    expires_at: float
    sync: bool = False
    low_priority: bool = False
    execution_timeout_ms: int | None = None
    webhook: str | None = None
    # The request's bytes: the queued-bytes cap and the held-bytes budgets (broker.budget).
    size: int = 0
    # Bytes counted against its endpoint's and user's budgets now (0 once it ended), and
    # what of it the chunks and the output in memory are; a final job's cost in the cache of
    # just-finished jobs (``JobBook.keep``; 0: not in it).
    held: int = 0
    chunk_bytes: int = 0
    output_bytes: int = 0
    cached: int = 0
    status: str = IN_QUEUE
    worker_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    retain_until: float | None = None
    retries: int = 0
    output: Any = None
    error: str | None = None
    # Handed to a job-take response that is being written: not in a queue, not yet taken.
    reserved: bool = False
    reserved_by: str | None = None
    # In its endpoint's queue; ``qseq`` invalidates stale queue entries (lazy removal).
    queued: bool = False
    qseq: int = 0
    # Removed by TTL expiry (status answers 404 from now on).
    deleted: bool = False
    # Final and committed to the store (what runsync waits for).
    settled: bool = False
    # Stream chunks (outputs) in arrival order and how many /stream handed out already;
    # ``nchunks`` were stored. Once ``chunks_in_store`` (over the budget) they are not kept
    # in memory (``chunks`` stays empty): readers go to the store.
    chunks: list[Any] = field(default_factory=list)
    stream_delivered: int = 0
    nchunks: int = 0
    chunks_in_store: bool = False
    # Set (and replaced) whenever a chunk arrives or the job ends; SSE and runsync wait on it.
    changed: asyncio.Event | None = None
    # When this job was first missing from its worker's pings (heartbeat reconciliation).
    missing_since: float | None = None
    # The client's Idempotency-Key (or requestId) it was submitted with.
    idempotency_key: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATES

    def delay_ms(self) -> int | None:
        if self.started_at is None:
            return None
        return max(0, int((self.started_at - self.created_at) * 1000))

    def execution_ms(self) -> int | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            return None
        return max(0, int((end - self.started_at) * 1000))

    def notify(self) -> None:
        """Wake everyone waiting on a change of this job (runsync, SSE streams)."""
        if self.changed is not None:
            self.changed.set()
            self.changed = None


@dataclass(eq=False)
class Worker:
    """A worker the broker tracks in memory (``WorkerRegistry``); its row is ``workers``."""

    id: str
    endpoint_id: str
    user_id: str
    token_hash: str
    status: WorkerState
    desired_status: WorkerState
    manual: bool
    created_at: float
    first_take_at: float | None = None
    last_seen_at: float | None = None
    idle_since: float | None = None
    reason: str | None = None
    # When ``status`` last changed (the row's last_status_change_at, kept here so readers of
    # the Pod view need no SQL for it).
    status_changed_at: float | None = None
    parked: bool = False
    # Heartbeats stopped; cleared when the worker speaks again.
    lost: bool = False
    # The jobs it holds: the job book's (runplane.broker.book), read-only to everyone else.
    jobs: dict[str, Job] = field(default_factory=dict)
    stop_pending: list[str] = field(default_factory=list)
    stop_waiter: asyncio.Future | None = None
    polling: int = 0
    # Job-take responses reserved for it and not yet confirmed or handed back: it must not
    # be parked (frozen) while one may be on its way to it.
    handing: int = 0
    # A job-take held while it is parked; resolved when it is resumed (``set_parked``).
    unpark_waiter: asyncio.Future | None = None
    # What its first job-take said of runplane's SDK accelerator: (state, SDK version), ""
    # for what it did not say; None before its first job-take (runplane.accelerator).
    accelerator: tuple[str, str] | None = None
    # Jobs already final on the server (timed out, cancelled) that its pings still list:
    # job id -> (when the job ended, the last ping listing it). The controller stops a worker
    # whose handler keeps running such a job (a sync handler cannot be interrupted).
    overdue: dict[str, tuple[float, float]] = field(default_factory=dict)
    # A load-balancing worker's HTTP requests in flight (the load balancer's, runplane.lb;
    # read-only to everyone else) and when its health check first answered 204 (loading).
    requests: int = 0
    initializing_at: float | None = None

    def can_take(self) -> bool:
        return (not self.parked and self.desired_status != EXITED
                and self.status != EXITED)

    def may_park(self) -> bool:
        """Whether it may be frozen now: not while it holds a job or a request, or a job-take
        response may be on its way to it (frozen, it would hold that job without running it).
        The one park rule, for the registry and the simulator alike."""
        return not self.jobs and not self.requests and self.handing <= 0 and self.can_take()


@dataclass(frozen=True)
class QueueMetrics:
    """What the autoscaler reads per endpoint (``Broker.queue_metrics``).

    ``in_queue`` counts every queued job, ``in_queue_normal`` those that are not
    ``policy.lowPriority`` (low-priority jobs do not trigger scaling), ``in_progress`` the jobs
    handed to workers and not final, ``oldest_queued_at`` the submission time of the oldest
    normal-priority queued job (None when there is none). ``completed``/``failed``/``retried``
    are cumulative counters (since the store was created, as far as retained jobs tell at
    start-up, then counted live).
    """

    in_queue: int
    in_queue_normal: int
    in_progress: int
    oldest_queued_at: float | None
    completed: int
    failed: int
    retried: int


@dataclass(frozen=True)
class WorkerView:
    """A snapshot of one worker as the job protocol sees it (``WorkerRegistry.snapshot``)."""

    id: str
    endpoint_id: str
    status: str
    desired_status: str
    manual: bool
    parked: bool
    jobs: tuple[str, ...]
    created_at: float
    first_take_at: float | None
    last_seen_at: float | None
    idle_since: float | None
    reason: str | None
    # True while a job-take long-poll from this worker is open (it is waiting for work).
    polling: bool
    # (job id, seconds) for each job that ended on the server but that the worker's latest
    # ping still listed, that many seconds after it ended (its handler did not stop).
    overdue: tuple[tuple[str, float], ...] = ()
    status_changed_at: float | None = None
    # (state, SDK version) of runplane's SDK accelerator as the worker reported it.
    accelerator: tuple[str, str] | None = None
    # Load-balancing workers: HTTP requests in flight; the first 204 of the health check.
    requests: int = 0
    initializing_at: float | None = None


# Job events for observers (``Broker.add_job_listener``; runplane.observability).
JOB_SUBMITTED = "submitted"  # accepted by /run or /runsync (committed and queued)
JOB_REQUEUED = "requeued"  # back in the queue: lost by its worker, or retried by its user
JOB_TAKEN = "taken"  # handed to a worker (job-take response written); delay_ms is set
JOB_FINAL = "final"  # reached a final state; status says which, execution_ms once it ran


@dataclass(slots=True)
class JobEvent:
    """One step of a job's life, as the broker tells its observers (who must not change it;
    not ``frozen``, whose ``__init__`` costs twice as much on the hot path). ``at`` is the
    clock's."""

    kind: str
    job_id: str
    endpoint_id: str
    at: float
    status: str
    worker_id: str | None = None
    delay_ms: int | None = None
    execution_ms: int | None = None
