"""Verdicts beside the autoscaler: pure functions of a tick's inputs and ``now``.

Per worker (``judge_worker``): is it stuck (the handler asked to be replaced, or it still
runs a job the server ended), did it just take its first job, has it missed its start-up
timeout, and how does the autoscaler count it. Per endpoint (``endpoint_reason``): which
reason its jobs wait for, when several apply. The controller gathers the inputs, calls these
and ``autoscaler.decide``, then acts on the answers (``controller/reconcile.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from runplane.broker.models import WorkerView
from runplane.controller import autoscaler as asc
from runplane.controller.state import Tracked
from runplane.worker_state import EXITED, IDLE, INITIALIZING, PARKED, RUNNING

LOW_PRIORITY_ONLY = ("only lowPriority jobs are queued and workersMin is 0: they wait for a "
                     "worker started by other jobs")


@dataclass(slots=True)  # not frozen: built per worker per tick; never mutated
class WorkerVerdict:
    """What to do about one worker this tick, in this order: mark it ready (``ready_after_s``
    set: it took its first job that long after its start), then stop it (``stop`` set),
    counting that against the breaker when ``failed``. ``capacity`` is how the autoscaler
    sees it; None when it is not capacity (exited, leaving, another run's worker)."""

    ready_after_s: float | None = None
    stop: str | None = None
    failed: bool = False
    capacity: asc.WorkerSnapshot | None = None


# The verdict on a worker that is not capacity and needs nothing done (shared: never mutated).
_NOT_CAPACITY = WorkerVerdict()


def stuck(desired_status: str, reason: str | None, overdue: Sequence[tuple[str, float]],
          grace_s: float) -> str | None:
    """Why a worker must be stopped now, or None: the handler asked to be replaced
    (desired EXITED), or it still runs a job that ended on the server (timed out, cancelled)
    ``grace_s`` ago or more: a sync handler cannot be interrupted, so only stopping its
    process frees the slot."""
    if desired_status == EXITED:
        return reason or "asked to stop"
    if not overdue:
        return None
    late = [(job_id, s) for job_id, s in overdue if s >= grace_s]
    if late:
        job_id, s = late[0]
        return (f"job {job_id} ended on the server (execution timeout or cancel) "
                f"but the handler was still running it {s:.0f}s later")
    return None


# The last line of a Python traceback ("ModuleNotFoundError: No module named 'torch'").
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(:.*)?$")
_QUOTE_MAX = 300


def last_error_line(log_tail: str) -> str | None:
    """The line of a worker's output that says what went wrong: the last exception line of
    a traceback, else the last line that mentions an error; None when there is none."""
    lines = [line.strip() for line in log_tail.splitlines()]
    lines = [line for line in lines if line and not line.startswith("--- runplane")]
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line[:_QUOTE_MAX]
    for line in reversed(lines):
        if "error" in line.lower():
            return line[:_QUOTE_MAX]
    return None


def crash_reason(exit_code: int | None, took: bool, log_tail: str) -> str:
    """Why a worker nobody asked to stop exited: before its first job (a failed start) or
    after taking one (the handler crashed), quoting its last error line."""
    what = (f"exited with code {exit_code} before its first job" if not took
            else f"crashed with exit code {exit_code} after taking a job")
    line = last_error_line(log_tail)
    return f"{what}: {line}" if line else what


def startup_timeout(started_at: float, took: bool, now: float, timeout_s: float) -> str | None:
    """The failure of a worker that has not taken its first job within ``timeout_s`` of its
    start, or None."""
    if not took and now - started_at > timeout_s:
        return f"no job-take within the startup timeout ({timeout_s:g}s)"
    return None


def judge_worker(v: WorkerView, mine: Tracked | None, *, endpoint_version: int, now: float,
                 startup_timeout_s: float, overdue_grace_s: float) -> WorkerVerdict:
    """The verdict on one of an endpoint's workers; ``mine`` is what this controller knows of
    it (None for a manual worker, or one a previous server run started)."""
    if v.status == EXITED:
        return _NOT_CAPACITY
    ready_after_s = None
    if mine is not None:
        if mine.stop_reason is not None:
            return _NOT_CAPACITY  # leaving
        # (The checks before each call keep the common case, a healthy worker that took its
        # first job long ago, to a few comparisons: this runs per worker per tick.)
        if v.desired_status == EXITED or v.overdue:
            why = stuck(v.desired_status, v.reason, v.overdue, overdue_grace_s)
            if why is not None:
                return WorkerVerdict(stop=why)
        if not mine.took:
            if v.first_take_at is not None:
                # A load-balancing worker's cold start is RunPod's: first 204 to first 200.
                since = mine.started_at if v.initializing_at is None else v.initializing_at
                ready_after_s = max(0.0, v.first_take_at - since)
            failure = startup_timeout(mine.started_at, ready_after_s is not None, now,
                                      startup_timeout_s)
            if failure is not None:
                return WorkerVerdict(stop=failure, failed=True)
    elif not v.manual:
        return _NOT_CAPACITY  # a controller worker of a previous server run; being cleaned up
    status = PARKED if v.parked else v.status
    if mine is not None and mine.resuming:
        status = INITIALIZING  # being thawed: capacity about to take jobs
    # A handler still running a job the server ended is busy, not idle capacity.
    held = len(v.jobs) + len(v.overdue) + v.requests  # jobs, or HTTP requests in flight
    if held and status == IDLE:
        status = RUNNING
    return WorkerVerdict(ready_after_s, capacity=asc.WorkerSnapshot(
        v.id, status, held, v.idle_since, mine.version if mine else endpoint_version, v.manual,
        mine.parked_at if mine else None))


def is_quiet(workers: int, workers_min: int, in_queue: int, in_progress: int,
             failures: int) -> bool:
    """No worker, none wanted, no job, no failure to back off from: the autoscaler would want
    nothing (most endpoints, most of the time), so it is not asked."""
    return not workers and not workers_min and not in_queue and not in_progress and not failures


def starting_progress(worker_ids: Iterable[str], progress: Mapping[str, str]) -> str | None:
    """What the first of these workers that is still starting does (pulling its image)."""
    if not progress:
        return None
    return next((f"worker {wid} is starting: {progress[wid]}" for wid in worker_ids
                 if wid in progress), None)


def only_low_priority(in_queue: int, in_queue_normal: int, capacity: int, starting: int) -> bool:
    """Jobs wait that never scale an endpoint up (lowPriority), and no worker runs or starts."""
    return bool(in_queue) and not capacity and starting == 0 and in_queue_normal == 0


def endpoint_reason(start_failure: str | None, breaker_status: str | None,
                    progress: str | None, low_priority_only: bool) -> str | None:
    """Why the endpoint's jobs wait, or None. First wins: why a start failed this tick (it
    says what to fix now), the open breaker (measured before this tick's starts), a starting
    worker's progress, then the lowPriority-only message."""
    for reason in (start_failure, breaker_status, progress):
        if reason is not None:
            return reason
    return LOW_PRIORITY_ONLY if low_priority_only else None
