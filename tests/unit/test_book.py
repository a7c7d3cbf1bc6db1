"""The job book's transitions as a table: each case starts from a job in a given place, runs
one transition, and checks the book's state and the effects it asked for. No writer, registry,
event loop or store: the book is pure state (runplane.broker.book)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from runplane.broker import store as sql
from runplane.broker.book import JobBook
from runplane.broker.effects import Effects
from runplane.broker.models import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    IN_QUEUE,
    JOB_FINAL,
    JOB_REQUEUED,
    JOB_SUBMITTED,
    JOB_TAKEN,
    TIMED_OUT,
    Job,
    Worker,
)
from runplane.worker_state import WorkerState

NOW = 1_000.0
EP = "ep1"


@dataclass
class World:
    book: JobBook
    workers: dict[str, Worker]
    job: Job


def _worker(worker_id: str) -> Worker:
    return Worker(id=worker_id, endpoint_id=EP, user_id="u", token_hash=worker_id,
                  status=WorkerState.IDLE, desired_status=WorkerState.RUNNING, manual=False,
                  created_at=0.0)


def _world(where: str, retries: int = 0) -> World:
    """A book with workers w1 and w2 and one job that is ``queued``, ``reserved`` (by w1),
    ``held`` (running on w1) or ``final`` (COMPLETED)."""
    workers = {"w1": _worker("w1"), "w2": _worker("w2")}
    book = JobBook(workers.get, max_retries=3, run_retention_s=1800.0,
                   runsync_retention_s=60.0)
    job = Job(id="j1", endpoint_id=EP, user_id="u", payload={"input": {}}, created_at=NOW - 10,
              expires_at=NOW + 86_400, retries=retries)
    book.admit(job, NOW - 10)
    if where in ("reserved", "held", "final"):
        assert book.reserve(workers["w1"], 1) == [job]
    if where in ("held", "final"):
        book.confirm(workers["w1"], [job], NOW - 5)
    if where == "final":
        book.report(job, workers["w1"], COMPLETED, {"ok": True}, None, NOW - 1)
    return World(book, workers, job)


def _statements(fx: Effects) -> list[Any]:
    return [op[0] for op in fx.writes]


@dataclass
class Case:
    name: str
    where: str
    act: Callable[[World], Effects]
    status: str | None  # the job's status after (None: deleted)
    writes: list[Any] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    stops: list[tuple[str, str]] = field(default_factory=list)
    in_queue: int = 0
    in_progress: int = 0
    w1_holds: bool = False
    settles: bool = False
    retries: int = 0
    error: str | None = None
    retries_before: int = 0


CASES = [
    Case("submit queues", "none", lambda w: Effects(), IN_QUEUE, in_queue=1),
    Case("take confirmed", "reserved",
         lambda w: w.book.confirm(w.workers["w1"], [w.job], NOW),
         IN_PROGRESS, writes=[sql.TAKE_JOB], events=[JOB_TAKEN], in_progress=1, w1_holds=True),
    Case("completed by its worker", "held",
         lambda w: w.book.report(w.job, w.workers["w1"], COMPLETED, 1, None, NOW),
         COMPLETED, writes=[sql.FINISH_JOB], events=[JOB_FINAL], settles=True),
    Case("first result wins over a re-queued run", "held",
         lambda w: w.book.report(w.job, w.workers["w2"], FAILED, None, "boom", NOW),
         FAILED, writes=[sql.FINISH_JOB], events=[JOB_FINAL], stops=[("w1", "j1")],
         settles=True, error="boom"),
    Case("a result for a final job is ignored", "final",
         lambda w: w.book.report(w.job, w.workers["w1"], FAILED, None, "late", NOW),
         COMPLETED),
    Case("lost with retries left: back at the head", "held",
         lambda w: w.book.lose([w.job], "worker exited", NOW),
         IN_QUEUE, writes=[sql.REQUEUE_JOB], events=[JOB_REQUEUED], in_queue=1, retries=1),
    Case("lost out of retries: failed", "held",
         lambda w: w.book.lose([w.job], "worker exited", NOW),
         FAILED, writes=[sql.FINISH_JOB], events=[JOB_FINAL], settles=True, retries=3,
         retries_before=3, error="worker exited; out of retries (3)"),
    Case("lost while queued: nothing", "queued",
         lambda w: w.book.lose([w.job], "worker exited", NOW), IN_QUEUE, in_queue=1),
    Case("cancel a running job: its worker stops it", "held",
         lambda w: w.book.cancel(w.job, NOW),
         CANCELLED, writes=[sql.FINISH_JOB], events=[JOB_FINAL], stops=[("w1", "j1")],
         settles=True),
    Case("cancel a job on its way to a worker", "reserved",
         lambda w: w.book.cancel(w.job, NOW),
         CANCELLED, writes=[sql.FINISH_JOB], events=[JOB_FINAL], stops=[("w1", "j1")],
         settles=True),
    Case("cancel a queued job", "queued",
         lambda w: w.book.cancel(w.job, NOW),
         CANCELLED, writes=[sql.FINISH_JOB], events=[JOB_FINAL], settles=True),
    Case("execution timeout", "held",
         lambda w: w.book.time_out(w.job, 5_000, NOW),
         TIMED_OUT, writes=[sql.FINISH_JOB], events=[JOB_FINAL], stops=[("w1", "j1")],
         settles=True, error="execution timeout of 5000 ms exceeded"),
    Case("ttl expiry of a running job", "held",
         lambda w: w.book.delete(w.job, "ttl expired", NOW),
         None, writes=[sql.DELETE_JOB, sql.DELETE_CHUNKS], stops=[("w1", "j1")]),
    Case("ttl expiry of a queued job", "queued",
         lambda w: w.book.delete(w.job, "ttl expired", NOW),
         None, writes=[sql.DELETE_JOB, sql.DELETE_CHUNKS]),
    Case("purge takes queued jobs", "queued",
         lambda w: w.book.purge(EP, NOW)[1],
         CANCELLED, writes=[sql.FINISH_JOB], events=[JOB_FINAL], settles=True,
         error="removed by purge-queue"),
    Case("purge leaves running jobs", "held",
         lambda w: w.book.purge(EP, NOW)[1], IN_PROGRESS, in_progress=1, w1_holds=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_transition(case: Case) -> None:
    w = _world(case.where, retries=case.retries_before)
    fx = case.act(w)
    job, book = w.job, w.book
    if case.status is None:
        assert job.deleted and job.id not in book.jobs
    else:
        assert job.status == case.status
        assert book.jobs.get(job.id) is job
    assert _statements(fx) == case.writes
    assert [e.kind for e in fx.events] == case.events
    assert fx.stops == case.stops
    assert [j.id for j in fx.finals] == (["j1"] if case.settles else [])
    m = book.metrics(EP)
    assert (m.in_queue, m.in_progress) == (case.in_queue, case.in_progress)
    assert ("j1" in w.workers["w1"].jobs) is case.w1_holds
    assert job.retries == case.retries
    if case.error is not None:
        assert job.error == case.error
    # The invariant: in_progress counts exactly the reserved and held jobs.
    live = [j for j in book.jobs.values() if j.reserved or j.status == IN_PROGRESS]
    assert m.in_progress == len(live)


def test_admit_tells_the_listeners_and_the_autoscaler() -> None:
    workers: dict[str, Worker] = {}
    book = JobBook(workers.get, max_retries=3, run_retention_s=1.0,
                   runsync_retention_s=1.0)
    job = Job(id="j", endpoint_id=EP, user_id="u", payload={}, created_at=NOW,
              expires_at=NOW + 60)
    fx = book.admit(job, NOW)
    assert [e.kind for e in fx.events] == [JOB_SUBMITTED]
    assert fx.enqueued == [EP] and not fx.writes  # its row was committed before


def test_holds_released_make_the_worker_idle_since_the_end() -> None:
    w = _world("held")
    fx = w.book.report(w.job, w.workers["w1"], COMPLETED, None, None, NOW)
    assert fx.workers == [w.workers["w1"]]
    assert w.workers["w1"].idle_since == NOW and not w.workers["w1"].jobs


@pytest.mark.parametrize("sync, retention", [(False, 1800.0), (True, 60.0)])
def test_final_jobs_are_kept_for_their_retention(sync: bool, retention: float) -> None:
    w = _world("held")
    w.job.sync = sync
    w.book.report(w.job, w.workers["w1"], COMPLETED, None, None, NOW)
    assert w.job.retain_until == NOW + retention and not w.job.settled


def test_untake_puts_a_reserved_job_back_first_without_a_retry() -> None:
    w = _world("reserved")
    other = Job(id="j2", endpoint_id=EP, user_id="u", payload={}, created_at=NOW,
                expires_at=NOW + 60)
    w.book.admit(other, NOW)
    w.book.untake([w.job], w.workers["w1"])
    assert w.book.queued(EP) == [w.job, other]
    assert w.job.retries == 0 and w.book.metrics(EP).in_progress == 0


def test_confirm_of_a_job_cancelled_on_its_way_stops_it_on_the_worker() -> None:
    w = _world("reserved")
    w.book.cancel(w.job, NOW)
    fx = w.book.confirm(w.workers["w1"], [w.job], NOW)
    assert fx.stops == [("w1", "j1")] and not fx.writes and not w.workers["w1"].jobs


@pytest.mark.parametrize("listed, missing, overdue", [
    ({"j1"}, False, {}),  # running and listed
    (set(), True, {}),  # running, no longer listed: missing from now on
])
def test_ping_marks_missing_jobs(listed: set[str], missing: bool, overdue: dict) -> None:
    w = _world("held")
    found, fx = w.book.reconcile_ping(w.workers["w1"], listed, NOW)
    assert (w.job.missing_since == NOW) is missing
    assert found == overdue and not fx.stops


def test_ping_listing_a_job_that_ended_here_says_stop_again() -> None:
    w = _world("held")
    w.book.time_out(w.job, 5_000, NOW - 3)
    found, fx = w.book.reconcile_ping(w.workers["w1"], {"j1"}, NOW)
    assert found == {"j1": (NOW - 3, NOW)} and fx.stops == [("w1", "j1")]


def test_only_the_most_recent_final_jobs_stay_in_memory() -> None:
    workers: dict[str, Worker] = {}
    book = JobBook(workers.get, max_retries=3, run_retention_s=1.0,
                   runsync_retention_s=1.0, recent_final=2)
    jobs = [Job(id=f"j{i}", endpoint_id=EP, user_id="u", payload={}, created_at=NOW,
                expires_at=NOW + 60) for i in range(3)]
    for job in jobs:
        book.admit(job, NOW)
        book.cancel(job, NOW)
    assert set(book.jobs) == {"j0", "j1", "j2"}  # none leaves memory before it is stored
    for job in jobs:
        book.keep(job)  # (its final write committed)
    assert set(book.jobs) == {"j1", "j2"}


def test_restore_keeps_a_running_job_with_its_worker_else_requeues_it() -> None:
    workers = {"w1": _worker("w1")}
    book = JobBook(workers.get, max_retries=3, run_retention_s=1.0,
                   runsync_retention_s=1.0)
    kept = Job(id="a", endpoint_id=EP, user_id="u", payload={}, created_at=NOW,
               expires_at=NOW + 60, status=IN_PROGRESS, worker_id="w1", started_at=NOW)
    orphan = Job(id="b", endpoint_id=EP, user_id="u", payload={}, created_at=NOW,
                 expires_at=NOW + 60, status=IN_PROGRESS, worker_id="gone", started_at=NOW)
    assert book.restore(kept, workers["w1"]).workers == [workers["w1"]]
    fx = book.restore(orphan, None)
    assert _statements(fx) == [sql.REQUEUE_JOB] and orphan.retries == 0
    assert orphan.status == IN_QUEUE and book.queued(EP) == [orphan]
    assert "a" in workers["w1"].jobs and book.metrics(EP).in_progress == 1


def test_ping_listing_a_queued_job_takes_it_back_without_a_retry() -> None:
    """The server went down before the take was stored: the store (so the rebuilt book) has
    the job queued, and the worker, still running it, lists it."""
    w = _world("queued")
    found, fx = w.book.reconcile_ping(w.workers["w1"], {"j1"}, NOW)
    assert not found and w.job.status == IN_PROGRESS and w.job.worker_id == "w1"
    assert "j1" in w.workers["w1"].jobs and w.job.retries == 0
    m = w.book.metrics(EP)
    assert (m.in_queue, m.in_progress) == (0, 1)
    assert [op[0] for op in fx.writes] == [sql.TAKE_JOB]
