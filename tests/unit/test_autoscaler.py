"""Table tests for the autoscaler's pure decision function (clock injected as ``now``)."""

from __future__ import annotations

import pytest

from runplane.controller.autoscaler import (
    QueueStats,
    ScalerSettings,
    WorkerSnapshot,
    decide,
)
from runplane.controller.breaker import Breaker
from runplane.worker_state import WorkerState as Status

IDLE, INITIALIZING, PARKED, RUNNING, UNHEALTHY = (
    Status.IDLE, Status.INITIALIZING, Status.PARKED, Status.RUNNING, Status.UNHEALTHY)

NOW = 1_000.0
RC = dict(scaler_type="REQUEST_COUNT", scaler_value=1)
QD = dict(scaler_type="QUEUE_DELAY", scaler_value=4)


def idle(wid: str, since: float = NOW, version: int = 0, manual: bool = False) -> WorkerSnapshot:
    return WorkerSnapshot(wid, IDLE, 0, since, version, manual)


def busy(wid: str, jobs: int = 1, version: int = 0) -> WorkerSnapshot:
    return WorkerSnapshot(wid, RUNNING, jobs, None, version)


def starting(wid: str) -> WorkerSnapshot:
    return WorkerSnapshot(wid, INITIALIZING, 0, None)


CASES = [
    # (name, settings, queue, workers, start, stopped ids)
    ("rc idle endpoint stays at zero", RC, QueueStats(), [], 0, []),
    ("rc scale from zero", RC, QueueStats(in_queue_normal=1), [], 1, []),
    ("rc burst of 5 capped at max 3", RC, QueueStats(in_queue_normal=5), [], 3, []),
    ("rc scaler 2: ceil(5/2)=3", {**RC, "scaler_value": 2}, QueueStats(in_queue_normal=3, in_progress=2),
     [busy("a"), busy("b")], 1, []),
    ("rc counts starting workers", RC, QueueStats(in_queue_normal=2), [starting("a"), starting("b")], 0, []),
    ("rc workersMin kept with empty queue", {**RC, "workers_min": 2}, QueueStats(), [], 2, []),
    ("rc idle past timeout stopped", RC, QueueStats(), [idle("a", NOW - 6)], 0, ["a"]),
    ("rc idle within timeout kept", RC, QueueStats(), [idle("a", NOW - 3)], 0, []),
    ("rc busy never stopped", RC, QueueStats(in_progress=1), [busy("a"), idle("b", NOW - 60)], 0, ["b"]),
    ("rc min kept even when idle long", {**RC, "workers_min": 1}, QueueStats(),
     [idle("a", NOW - 60), idle("b", NOW - 30)], 0, ["a"]),
    ("rc each idle after its own timeout", RC, QueueStats(),
     [idle("a", NOW - 10), idle("b", NOW - 2)], 0, ["a"]),
    ("manual worker never stopped", RC, QueueStats(), [idle("m", NOW - 99, manual=True)], 0, []),
    ("manual worker counts as capacity", RC, QueueStats(in_queue_normal=1),
     [idle("m", NOW, manual=True)], 0, []),
    ("low priority jobs do not scale up", RC, QueueStats(in_queue_normal=0, in_progress=0), [], 0, []),
    ("qd scale from zero at once", QD, QueueStats(in_queue_normal=1, oldest_normal_at=NOW), [], 1, []),
    ("qd within delay: hold", QD, QueueStats(in_queue_normal=3, oldest_normal_at=NOW - 2),
     [busy("a")], 0, []),
    ("qd delay exceeded: add for uncovered jobs", QD,
     QueueStats(in_queue_normal=2, oldest_normal_at=NOW - 5), [busy("a")], 2, []),
    ("qd no stampede while one is starting", QD,
     QueueStats(in_queue_normal=1, oldest_normal_at=NOW - 30), [busy("a"), starting("b")], 0, []),
    ("qd delay exceeded respects max", {**QD, "workers_max": 2},
     QueueStats(in_queue_normal=5, oldest_normal_at=NOW - 9), [busy("a")], 1, []),
    ("qd idle out after queue drains", QD, QueueStats(), [idle("a", NOW - 5), busy("b")], 0, ["a"]),
    ("qd idle worker with queued job kept", QD, QueueStats(in_queue_normal=1, oldest_normal_at=NOW),
     [idle("a", NOW - 50)], 0, []),
    ("outdated idle worker rolled", {**RC, "version": 2, "workers_min": 1}, QueueStats(),
     [idle("old", NOW, version=1)], 1, ["old"]),
    ("outdated busy worker kept until idle", {**RC, "version": 2}, QueueStats(in_progress=1),
     [busy("old", version=1)], 0, []),
    ("unhealthy worker stopped and replaced", {**RC, "workers_min": 1}, QueueStats(),
     [WorkerSnapshot("u", UNHEALTHY, 0, None)], 1, ["u"]),
]


@pytest.mark.parametrize(("name", "settings", "queue", "workers", "start", "stopped"), CASES,
                         ids=[c[0] for c in CASES])
def test_decide(name, settings, queue, workers, start, stopped) -> None:
    d = decide(ScalerSettings(**{"idle_timeout_s": 5, **settings}), queue, workers, NOW)
    assert d.start == start, d.reason
    assert sorted(w for w, _ in d.stop) == sorted(stopped), d.reason
    assert d.reason


def test_blocked_start_says_why() -> None:
    d = decide(ScalerSettings(**RC), QueueStats(in_queue_normal=1), [], NOW, start_blocked="crash loop")
    assert d.start == 0
    assert "crash loop" in d.reason
    assert d.blocked == 1  # the worker it wanted is throttled
    d = decide(ScalerSettings(**RC), QueueStats(in_queue_normal=1), [], NOW)
    assert d.start == 1 and d.blocked == 0


def test_breaker_opens_backs_off_and_closes() -> None:
    b = Breaker(threshold=3, base_s=10, max_s=25)
    for i in range(2):
        b.record_failure(NOW, "exited with code 1")
    assert b.blocked(NOW) is None and b.status(NOW) is None
    b.record_failure(NOW, "exited with code 1")
    assert "crash loop: 3" in (b.blocked(NOW + 1) or "")
    assert b.blocked(NOW + 10) is None  # first backoff: base
    b.record_failure(NOW + 10, "exited with code 1")
    assert b.blocked(NOW + 29) and b.blocked(NOW + 30) is None  # doubled
    for _ in range(5):
        b.record_failure(NOW + 100, "x")
    assert b.backoff_s() == 25  # capped
    assert b.status(NOW + 200)
    b.record_success()
    assert b.status(NOW + 200) is None and not b.is_open


# -- FlashBoot: park instead of stop, resume before start, evictions -------------------------

FB = {"scaler_type": "REQUEST_COUNT", "scaler_value": 1, "flashboot": True, "max_parked_s": 600}


def parked(wid: str, since: float = NOW - 10, version: int = 0) -> WorkerSnapshot:
    return WorkerSnapshot(wid, PARKED, 0, None, version, parked_since=since)


FLASH_CASES = [
    # (name, settings, queue, workers, start, resumed, parked, stopped)
    ("idle past timeout is parked, not stopped", FB, QueueStats(), [idle("a", NOW - 6)],
     0, [], ["a"], []),
    ("flashboot off: idle past timeout is stopped", {**FB, "flashboot": False}, QueueStats(),
     [idle("a", NOW - 6)], 0, [], [], ["a"]),
    ("idle within timeout neither parked nor stopped", FB, QueueStats(), [idle("a", NOW - 2)],
     0, [], [], []),
    ("parked workers are not capacity: a job resumes one", FB, QueueStats(in_queue_normal=1),
     [parked("p")], 0, ["p"], [], []),
    ("resume is preferred to start, the newest parked first", FB,
     QueueStats(in_queue_normal=1), [parked("old", NOW - 50), parked("new", NOW - 5)],
     0, ["new"], [], []),
    ("more wanted than parked: resume all, start the rest", {**FB, "workers_max": 3},
     QueueStats(in_queue_normal=3), [parked("p1", NOW - 20), parked("p2", NOW - 10)],
     1, ["p2", "p1"], [], []),
    ("qd scale from zero resumes at once", {**FB, "scaler_type": "QUEUE_DELAY", "scaler_value": 4},
     QueueStats(in_queue_normal=1, oldest_normal_at=NOW), [parked("p")], 0, ["p"], [], []),
    ("qd within delay: busy worker, parked one stays parked",
     {**FB, "scaler_type": "QUEUE_DELAY", "scaler_value": 4},
     QueueStats(in_queue_normal=1, in_progress=1, oldest_normal_at=NOW - 1),
     [busy("a"), parked("p")], 0, [], [], []),
    ("no job: parked stays parked", FB, QueueStats(), [parked("p")], 0, [], [], []),
    ("parked past max_parked_s is evicted", FB, QueueStats(),
     [parked("p", NOW - 600), parked("q", NOW - 599)], 0, [], [], ["p"]),
    ("outdated parked worker is evicted, not resumed", {**FB, "version": 2},
     QueueStats(in_queue_normal=1), [parked("p", version=1)], 1, [], [], ["p"]),
    ("flashboot turned off evicts parked workers", {**FB, "flashboot": False}, QueueStats(),
     [parked("p")], 0, [], [], ["p"]),
    ("live + parked over workersMax: oldest parked evicted", {**FB, "workers_max": 2},
     QueueStats(in_progress=1), [busy("a"), parked("p1", NOW - 30), parked("p2", NOW - 20),
                                  parked("p3", NOW - 10)], 0, [], [], ["p1", "p2"]),
    ("over workersMax: the oldest parked goes, the newly idle is parked", {**FB, "workers_max": 1},
     QueueStats(), [idle("a", NOW - 9), parked("p", NOW - 1)], 0, [], ["a"], ["p"]),
    ("over workersMax: a newly idle worker is stopped instead of parked",
     {**FB, "workers_max": 1}, QueueStats(in_progress=1), [busy("b"), idle("a", NOW - 9)],
     0, [], [], ["a"]),
    ("workersMin keeps a live worker, does not park it", {**FB, "workers_min": 1}, QueueStats(),
     [idle("a", NOW - 60)], 0, [], [], []),
    ("a breaker blocks starts, not resumes", FB, QueueStats(in_queue_normal=2),
     [parked("p")], 0, ["p"], [], []),
    ("outdated idle worker is stopped, not parked", {**FB, "version": 3}, QueueStats(),
     [idle("a", NOW - 60, version=2)], 0, [], [], ["a"]),
]


@pytest.mark.parametrize(("name", "settings", "queue", "workers", "start", "resumed", "parked_ids",
                          "stopped"), FLASH_CASES, ids=[c[0] for c in FLASH_CASES])
def test_flashboot(name, settings, queue, workers, start, resumed, parked_ids, stopped) -> None:
    blocked = "crash loop" if name.startswith("a breaker") else None
    d = decide(ScalerSettings(**{"idle_timeout_s": 5, **settings}), queue, workers, NOW, blocked)
    assert d.start == start, d.reason
    assert d.resume == resumed, d.reason
    assert sorted(w for w, _ in d.park) == sorted(parked_ids), d.reason
    assert sorted(w for w, _ in d.stop) == sorted(stopped), d.reason
    assert not set(d.resume) & {w for w, _ in d.stop}
    if blocked:
        assert d.blocked == 1 and "crash loop" in d.reason


def test_parked_and_eviction_reasons_say_why() -> None:
    s = ScalerSettings(**{"idle_timeout_s": 5, **FB, "version": 4})
    d = decide(s, QueueStats(), [idle("a", NOW - 7, version=4), parked("old", version=3),
                                 parked("stale", NOW - 700, version=4)], NOW)
    assert d.park == [("a", "idle for 7s (idleTimeout 5s): parked (FlashBoot)")]
    assert dict(d.stop) == {"old": "evicted: the endpoint changed (now version 4)",
                            "stale": "evicted: parked for 700s (max_parked_s 600s)"}
