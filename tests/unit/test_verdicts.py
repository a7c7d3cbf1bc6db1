"""Table tests for the controller's pure verdicts (``controller/verdicts.py``), clock as ``now``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runplane.broker.models import WorkerView
from runplane.controller import verdicts as v
from runplane.controller.autoscaler import WorkerSnapshot
from runplane.controller.scheduler import Placement
from runplane.controller.state import Tracked

NOW = 1_000.0
TIMEOUT = 120.0
GRACE = 10.0
PLACED = Placement("ep", "m1", None, (), 1, 2.0, 0.1)


def View(**kw: object) -> WorkerView:  # noqa: N802 - reads as the record it builds
    """The broker's view of worker w1: idle, took its first job 50 s ago; ``kw`` changes."""
    fields: dict[str, object] = dict(
        id="w1", endpoint_id="ep", status="IDLE", desired_status="RUNNING", manual=False,
        parked=False, jobs=(), created_at=NOW - 60, first_take_at=NOW - 50, last_seen_at=NOW,
        idle_since=NOW - 5, reason=None, polling=True, overdue=())
    fields.update(kw)
    return WorkerView(**fields)  # type: ignore[arg-type]


def mine(**kw: object) -> Tracked:
    """A worker this controller started 60 s ago that took its first job."""
    t = Tracked("w1", "ep", "alice", 3, NOW - 60, PLACED, took=True)
    for key, value in kw.items():
        setattr(t, key, value)
    return t


def cap(status: str, jobs: int = 0, idle_since: float | None = NOW - 5, version: int = 3,
        manual: bool = False, parked_since: float | None = None) -> WorkerSnapshot:
    return WorkerSnapshot("w1", status, jobs, idle_since, version, manual, parked_since)


NO_TAKE = f"no job-take within the startup timeout ({TIMEOUT:g}s)"
OVERDUE = ("job j1 ended on the server (execution timeout or cancel) but the handler was still "
           "running it 12s later")

JUDGE = [
    # (name, view, tracked, verdict)
    ("exited: nothing, not capacity", View(status="EXITED"), mine(), v.WorkerVerdict()),
    ("leaving: not capacity", View(), mine(stop_reason="idle"), v.WorkerVerdict()),
    ("another run's worker: not capacity", View(), None, v.WorkerVerdict()),
    ("manual worker counts at the endpoint's version", View(manual=True), None,
     v.WorkerVerdict(capacity=cap("IDLE", version=7, manual=True))),
    ("idle worker: capacity", View(), mine(), v.WorkerVerdict(capacity=cap("IDLE"))),
    ("handler asked to be replaced", View(desired_status="EXITED", reason="refresh_worker"),
     mine(), v.WorkerVerdict(stop="refresh_worker")),
    ("asked to stop without a reason", View(desired_status="EXITED"), mine(),
     v.WorkerVerdict(stop="asked to stop")),
    ("overdue job past the grace: stuck", View(overdue=(("j1", 12.4),)), mine(),
     v.WorkerVerdict(stop=OVERDUE)),
    ("overdue job within the grace: busy", View(overdue=(("j1", 3.0),)), mine(),
     v.WorkerVerdict(capacity=cap("RUNNING", jobs=1))),
    ("first job-take: ready, cold start measured", View(first_take_at=NOW - 20, status="IDLE"),
     mine(took=False), v.WorkerVerdict(ready_after_s=40.0, capacity=cap("IDLE"))),
    ("first take before start (clock skew): 0 s", View(first_take_at=NOW - 90),
     mine(took=False), v.WorkerVerdict(ready_after_s=0.0, capacity=cap("IDLE"))),
    ("starting within the timeout", View(status="INITIALIZING", first_take_at=None,
                                         idle_since=None), mine(took=False),
     v.WorkerVerdict(capacity=cap("INITIALIZING", idle_since=None))),
    ("no take past the start-up timeout: failed start",
     View(status="INITIALIZING", first_take_at=None), mine(took=False, started_at=NOW - 121),
     v.WorkerVerdict(stop=NO_TAKE, failed=True)),
    ("first take this tick, past the timeout: ready, not failed",
     View(first_take_at=NOW - 1), mine(took=False, started_at=NOW - 121),
     v.WorkerVerdict(ready_after_s=120.0, capacity=cap("IDLE"))),
    ("took long ago: the timeout no longer applies", View(), mine(started_at=NOW - 9999),
     v.WorkerVerdict(capacity=cap("IDLE"))),
    ("parked in the registry", View(parked=True, status="PARKED"), mine(parked_at=NOW - 30),
     v.WorkerVerdict(capacity=cap("PARKED", parked_since=NOW - 30))),
    ("being thawed: about to take jobs", View(parked=True, status="PARKED"),
     mine(parked_at=NOW - 30, resuming=True),
     v.WorkerVerdict(capacity=cap("INITIALIZING", parked_since=NOW - 30))),
    ("holding jobs while IDLE is busy", View(jobs=("j1", "j2")), mine(),
     v.WorkerVerdict(capacity=cap("RUNNING", jobs=2))),
    ("older version keeps its own", View(), mine(version=1),
     v.WorkerVerdict(capacity=cap("IDLE", version=1))),
]


@pytest.mark.parametrize(("name", "view", "tracked", "expected"), JUDGE,
                         ids=[c[0] for c in JUDGE])
def test_judge_worker(name: str, view: View, tracked: Tracked | None,
                      expected: v.WorkerVerdict) -> None:
    got = v.judge_worker(view, tracked, endpoint_version=7 if tracked is None else 3, now=NOW,
                         startup_timeout_s=TIMEOUT, overdue_grace_s=GRACE)
    assert got == expected


def test_judge_worker_does_not_change_what_it_reads() -> None:
    t = mine(took=False)
    before = replace(t)
    v.judge_worker(View(first_take_at=NOW), t, endpoint_version=3, now=NOW,
                   startup_timeout_s=TIMEOUT, overdue_grace_s=GRACE)
    assert t == before  # acting (took = True) is the controller's


@pytest.mark.parametrize(("desired", "reason", "overdue", "expected"), [
    ("RUNNING", None, (), None),
    ("EXITED", "stopPod", (), "stopPod"),
    ("EXITED", None, (("j1", 99.0),), "asked to stop"),  # desired EXITED wins
    ("RUNNING", None, (("j1", 9.9),), None),
    ("RUNNING", None, (("j1", 10.0),), OVERDUE.replace("12s", "10s")),
    ("RUNNING", None, (("j0", 1.0), ("j1", 12.0), ("j2", 30.0)), OVERDUE),  # first late one
])
def test_stuck(desired: str, reason: str | None, overdue: tuple[tuple[str, float], ...],
               expected: str | None) -> None:
    assert v.stuck(desired, reason, overdue, GRACE) == expected


@pytest.mark.parametrize(("started_at", "took", "expected"), [
    (NOW - 120, False, None),  # exactly the timeout: not yet
    (NOW - 120.5, False, NO_TAKE),
    (NOW - 500, True, None),
    (NOW, False, None),
])
def test_startup_timeout(started_at: float, took: bool, expected: str | None) -> None:
    assert v.startup_timeout(started_at, took, NOW, TIMEOUT) == expected


BREAKER = "crash loop: 3 consecutive workers failed (last: exited with code 1); retrying"
PULLING = "worker w1 is starting: pulling image, 2 of 5 layers"


@pytest.mark.parametrize(("start_failure", "breaker", "progress", "low", "expected"), [
    (None, None, None, False, None),
    (None, None, None, True, v.LOW_PRIORITY_ONLY),
    (None, None, PULLING, True, PULLING),
    (None, BREAKER, PULLING, True, BREAKER),
    ("all NVIDIA A40 GPUs are in use", BREAKER, PULLING, True, "all NVIDIA A40 GPUs are in use"),
    ("", BREAKER, PULLING, True, ""),  # an empty failure still wins (and is not shown)
])
def test_endpoint_reason_precedence(start_failure: str | None, breaker: str | None,
                                    progress: str | None, low: bool,
                                    expected: str | None) -> None:
    assert v.endpoint_reason(start_failure, breaker, progress, low) == expected


@pytest.mark.parametrize(("ids", "progress", "expected"), [
    (["w1", "w2"], {}, None),
    (["w1", "w2"], {"w9": "pulling"}, None),
    (["w1", "w2"], {"w2": "pulling", "w1": "extracting"}, "worker w1 is starting: extracting"),
    ([], {"w1": "pulling"}, None),
])
def test_starting_progress(ids: list[str], progress: dict[str, str],
                           expected: str | None) -> None:
    assert v.starting_progress(ids, progress) == expected


@pytest.mark.parametrize(("in_queue", "normal", "capacity", "starting", "expected"), [
    (2, 0, 0, 0, True),
    (0, 0, 0, 0, False),  # nothing queued
    (2, 1, 0, 0, False),  # a normal job scales up
    (2, 0, 1, 0, False),  # a worker will take them
    (2, 0, 0, 1, False),  # one is starting
])
def test_only_low_priority(in_queue: int, normal: int, capacity: int, starting: int,
                           expected: bool) -> None:
    assert v.only_low_priority(in_queue, normal, capacity, starting) is expected


@pytest.mark.parametrize(("args", "expected"), [
    ((0, 0, 0, 0, 0), True),
    ((1, 0, 0, 0, 0), False),  # a worker
    ((0, 1, 0, 0, 0), False),  # workersMin
    ((0, 0, 1, 0, 0), False),  # a queued job (lowPriority too)
    ((0, 0, 0, 1, 0), False),  # a job in progress
    ((0, 0, 0, 0, 2), False),  # failures to back off from
])
def test_is_quiet(args: tuple[int, int, int, int, int], expected: bool) -> None:
    assert v.is_quiet(*args) is expected


CRASH_LOGS = [
    # (log tail, exit code, took a job, reason)
    ("--- runplane: starting w\nTraceback (most recent call last):\n  File \"h.py\"\n"
     "ModuleNotFoundError: No module named 'torch'\n", 1, False,
     "exited with code 1 before its first job: ModuleNotFoundError: No module named 'torch'"),
    ("loading\nRuntimeError: CUDA error: out of memory\n", -9, True,
     "crashed with exit code -9 after taking a job: RuntimeError: CUDA error: out of memory"),
    ('{"message": "handler error: bad input", "level": "ERROR"}\n', 2, True,
     'crashed with exit code 2 after taking a job: {"message": "handler error: bad input", '
     '"level": "ERROR"}'),
    ("all fine\n", 3, False, "exited with code 3 before its first job"),
    ("", 0, True, "crashed with exit code 0 after taking a job"),
]


@pytest.mark.parametrize(("tail", "code", "took", "reason"), CRASH_LOGS)
def test_crash_reason_quotes_the_last_error_line(tail: str, code: int, took: bool,
                                                 reason: str) -> None:
    assert v.crash_reason(code, took, tail) == reason
