"""Autoscaler: a pure function from an endpoint's settings, queue and workers to an action.

Rules (RunPod's, see docs/workers.md):

- REQUEST_COUNT: desired = ceil((inQueue + inProgress) / scalerValue).
- QUEUE_DELAY: add workers while the oldest queued job has waited more than scalerValue
  seconds; workers already starting (and idle ones) count against the queue, so one slow start
  does not trigger a stampede.
- Both: clamp to workersMin..workersMax; a queued job with no worker at all starts one at once
  (scale from zero); lowPriority jobs never cause scale-up.
- Scale-down stops only idle workers, each once it has been idle for its own idleTimeout; a
  worker with a job is never stopped. Outdated workers (older endpoint version) are stopped as
  soon as they are idle and replaced by the normal rules (a rolling update).
- An open crash-loop breaker blocks starts and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

INITIALIZING = "INITIALIZING"
IDLE = "IDLE"
RUNNING = "RUNNING"
THROTTLED = "THROTTLED"
UNHEALTHY = "UNHEALTHY"
OUTDATED = "OUTDATED"
PARKED = "PARKED"
EXITED = "EXITED"


@dataclass(slots=True)  # not frozen: built per endpoint per tick; never mutated
class ScalerSettings:
    """The endpoint settings the autoscaler reads."""

    workers_min: int = 0
    workers_max: int = 3
    scaler_type: str = "QUEUE_DELAY"
    scaler_value: float = 4.0
    idle_timeout_s: float = 5.0
    version: int = 0


@dataclass(slots=True)  # not frozen: built per endpoint per tick; never mutated
class QueueStats:
    """Queue metrics; ``in_queue_normal`` and ``oldest_normal_at`` leave lowPriority jobs out."""

    in_queue_normal: int = 0
    in_progress: int = 0
    oldest_normal_at: float | None = None


@dataclass(slots=True)  # not frozen: built per endpoint per tick; never mutated
class WorkerState:
    """A live worker as the autoscaler sees it."""

    id: str
    status: str = IDLE
    jobs: int = 0
    idle_since: float | None = None
    version: int = 0
    manual: bool = False


@dataclass
class Decision:
    """Start ``start`` new workers; stop ``stop`` (worker id, reason); ``reason`` explains."""

    start: int = 0
    stop: list[tuple[str, str]] = field(default_factory=list)
    desired: int = 0
    reason: str = ""
    # Workers wanted but not started because starts are blocked (shown as THROTTLED).
    blocked: int = 0


def decide(
    s: ScalerSettings,
    q: QueueStats,
    workers: list[WorkerState],
    now: float,
    start_blocked: str | None = None,
) -> Decision:
    """What to do for one endpoint now. Pure: same inputs, same decision."""
    live = [w for w in workers if w.status not in (EXITED, PARKED)]
    d = Decision()
    for w in live:
        if w.manual:
            continue
        if w.status == UNHEALTHY:
            d.stop.append((w.id, "unhealthy"))
        elif w.version != s.version and w.jobs == 0 and w.status != INITIALIZING:
            d.stop.append((w.id, f"outdated: endpoint is now at version {s.version}"))
    stopping = {wid for wid, _ in d.stop}
    serving = [w for w in live if w.id not in stopping and w.status != UNHEALTHY]
    capacity = len(serving)
    starting = sum(1 for w in serving if w.status == INITIALIZING)
    idle = sum(1 for w in serving if w.jobs == 0 and w.status != INITIALIZING)
    busy = capacity - starting - idle
    demand = q.in_queue_normal + q.in_progress

    if s.scaler_type == "REQUEST_COUNT":
        per = max(s.scaler_value, 1)
        wanted = math.ceil(demand / per)
        floor_down = wanted
        why = f"REQUEST_COUNT: {demand} job(s) / {per:g} per worker = {wanted}"
    else:
        waited = now - q.oldest_normal_at if q.oldest_normal_at is not None else 0.0
        uncovered = max(0, q.in_queue_normal - idle - starting)
        if q.in_queue_normal and capacity == 0:
            wanted = 1
            why = "QUEUE_DELAY: job queued and no worker: scale from zero"
        elif q.in_queue_normal and waited > s.scaler_value and uncovered:
            wanted = capacity + uncovered
            why = (f"QUEUE_DELAY: oldest job waited {waited:.1f}s > {s.scaler_value:g}s, "
                   f"{uncovered} job(s) not covered by idle or starting workers")
        else:
            wanted = capacity
            why = "QUEUE_DELAY: queue within delay"
        # Workers that have, or are about to get, work are needed; the rest may idle out.
        floor_down = busy + starting + min(q.in_queue_normal, idle)
    if q.in_queue_normal and capacity == 0:
        wanted = max(wanted, 1)  # scale from zero at once, whatever the scaler
    desired = min(max(wanted, s.workers_min), s.workers_max)
    d.desired = desired
    d.reason = why + (f"; clamped to {desired} ({s.workers_min}..{s.workers_max})"
                      if desired != wanted else "")

    if desired > capacity:
        if start_blocked:
            d.reason += f"; not starting: {start_blocked}"
            d.blocked = desired - capacity
        else:
            d.start = desired - capacity
        return d

    keep = min(max(floor_down, s.workers_min), s.workers_max)
    surplus = capacity - keep
    if surplus > 0:
        expired = sorted(
            (w for w in serving
             if not w.manual and w.jobs == 0 and w.status == IDLE
             and w.idle_since is not None and now - w.idle_since >= s.idle_timeout_s),
            key=lambda w: (w.idle_since, w.id),
        )
        for w in expired[:surplus]:
            d.stop.append((w.id, f"idle for {now - (w.idle_since or now):.0f}s "
                                 f"(idleTimeout {s.idle_timeout_s:g}s)"))
    return d
