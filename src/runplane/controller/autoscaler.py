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

Other scalers (``controller/policies``: runplane's ADAPTIVE, and the Knative- and
Ray-Serve-like ones the simulator compares) replace only the target: how many workers are
wanted, how many must stay, and after how long idle a surplus worker goes (``policy``). The
rest of this decision (clamping, resume before start, parking, evictions) is the same for all.

FlashBoot (``flashboot``, docs/flashboot.md): an idle worker past its idleTimeout is parked
(frozen, keeping its GPUs) instead of stopped, and a wanted worker is resumed from the parked
ones (the most recently parked first) before any is started. Parked workers are not capacity;
they are evicted (stopped) when FlashBoot is off, when the endpoint changed (an older
version), after ``max_parked_s``, and when live plus parked workers would exceed workersMax,
the oldest first. A breaker blocks starts, not resumes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

# Aliased: this module's own ``WorkerSnapshot`` (a worker as the autoscaler sees it) is public API.
from runplane.worker_state import EXITED, IDLE, INITIALIZING, PARKED, UNHEALTHY


@dataclass(slots=True)  # not frozen: built per endpoint per tick; never mutated
class ScalerSettings:
    """The endpoint settings the autoscaler reads."""

    workers_min: int = 0
    workers_max: int = 3
    scaler_type: str = "QUEUE_DELAY"
    scaler_value: float = 4.0
    idle_timeout_s: float = 5.0
    version: int = 0
    flashboot: bool = False
    max_parked_s: float = 3600.0


@dataclass(slots=True)  # not frozen: built per endpoint per tick; never mutated
class QueueStats:
    """Queue metrics; ``in_queue_normal`` and ``oldest_normal_at`` leave lowPriority jobs out."""

    in_queue_normal: int = 0
    in_progress: int = 0
    oldest_normal_at: float | None = None
    # Read by the policies only (``controller/policies``): when each queued normal job was
    # submitted, oldest first (filled for the scalers that ask for it), and the jobs finished
    # so far (completed plus failed, cumulative).
    queued_at: tuple[float, ...] = ()
    finished: int = 0


@dataclass(slots=True)  # not frozen: built per endpoint per tick; never mutated
class WorkerSnapshot:
    """A live worker as the autoscaler sees it."""

    id: str
    status: str = IDLE
    jobs: int = 0
    idle_since: float | None = None
    version: int = 0
    manual: bool = False
    parked_since: float | None = None  # PARKED workers: when they were parked


@dataclass(frozen=True, slots=True)
class Pool:
    """The endpoint's workers as a scaler counts them: ``capacity`` live ones (``starting``
    of them still starting, ``idle`` without a job, ``busy`` with one) and ``parked`` ones."""

    capacity: int = 0
    starting: int = 0
    idle: int = 0
    busy: int = 0
    parked: int = 0


@dataclass(frozen=True, slots=True)
class Target:
    """A scaler's answer: ``wanted`` workers, at least ``floor_down`` of them kept while
    scaling down, surplus idle workers go after ``idle_timeout_s`` (None: the endpoint's
    idleTimeout); ``why`` explains."""

    wanted: int
    floor_down: int
    why: str
    idle_timeout_s: float | None = None


# A scaler other than RunPod's rules: ``policy(settings, queue, pool, now) -> Target``.
TargetFn = Callable[[ScalerSettings, QueueStats, Pool, float], Target]


@dataclass
class Decision:
    """Start ``start`` new workers; stop ``stop`` (worker id, reason); resume the parked
    workers ``resume``; park ``park`` (worker id, reason); ``reason`` explains.
    ``scaled_down``: those of ``stop`` that go for being idle (surplus idle workers, parked
    ones evicted for their age or workersMax), not for a fault or a change: a request may
    start them again (``strict-resume``, controller/revive.py)."""

    start: int = 0
    stop: list[tuple[str, str]] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)
    park: list[tuple[str, str]] = field(default_factory=list)
    desired: int = 0
    reason: str = ""
    # Workers wanted but not started because starts are blocked (shown as THROTTLED).
    blocked: int = 0
    scaled_down: list[str] = field(default_factory=list)


def decide(
    s: ScalerSettings,
    q: QueueStats,
    workers: list[WorkerSnapshot],
    now: float,
    start_blocked: str | None = None,
    policy: TargetFn | None = None,
) -> Decision:
    """What to do for one endpoint now. Pure: same inputs, same decision. ``policy`` replaces
    RunPod's rules (``rule_target``) for the target (see the module docstring)."""
    live = [w for w in workers if w.status not in (EXITED, PARKED)]
    d = Decision()
    parked = _keep_parked(s, [w for w in workers if w.status == PARKED], now, d)
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
    pool = Pool(capacity, starting, idle, busy, len(parked))
    target = (policy or rule_target)(s, q, pool, now)
    wanted, floor_down, why = target.wanted, target.floor_down, target.why
    idle_timeout_s = s.idle_timeout_s if target.idle_timeout_s is None else target.idle_timeout_s
    if q.in_queue_normal and capacity == 0:
        wanted = max(wanted, 1)  # scale from zero at once, whatever the scaler
    desired = min(max(wanted, s.workers_min), s.workers_max)
    d.desired = desired
    d.reason = why + (f"; clamped to {desired} ({s.workers_min}..{s.workers_max})"
                      if desired != wanted else "")

    if desired > capacity:
        need = desired - capacity
        # Resuming costs milliseconds and no new placement: always before starting.
        for w in reversed(parked[-need:]):  # the most recently parked: the warmest
            d.resume.append(w.id)
        parked = parked[:max(0, len(parked) - need)]
        need -= len(d.resume)
        if d.resume:
            d.reason += f"; resuming {len(d.resume)} parked"
        if need and start_blocked:
            d.reason += f"; not starting: {start_blocked}"
            d.blocked = need
        else:
            d.start = need
        _evict_over_max(s, parked, capacity + len(d.resume) + d.start, d)
        return d

    keep = min(max(floor_down, s.workers_min), s.workers_max)
    surplus = capacity - keep
    newly: list[WorkerSnapshot] = []
    if surplus > 0:
        expired = sorted(
            (w for w in serving
             if not w.manual and w.jobs == 0 and w.status == IDLE
             and w.idle_since is not None and now - w.idle_since >= idle_timeout_s),
            key=lambda w: (w.idle_since, w.id),
        )
        for w in expired[:surplus]:
            why = (f"idle for {now - (w.idle_since or now):.0f}s "
                   f"(idleTimeout {idle_timeout_s:g}s)")
            if s.flashboot:
                d.park.append((w.id, why + ": parked (FlashBoot)"))
                newly.append(w)
            else:
                d.stop.append((w.id, why))
                d.scaled_down.append(w.id)
    _evict_over_max(s, parked + newly, capacity - len(newly), d)
    return d


def rule_target(s: ScalerSettings, q: QueueStats, pool: Pool, now: float) -> Target:
    """RunPod's QUEUE_DELAY and REQUEST_COUNT rules (the module docstring)."""
    capacity, starting, idle, busy = pool.capacity, pool.starting, pool.idle, pool.busy
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
    return Target(wanted, floor_down, why)


def _keep_parked(s: ScalerSettings, parked: list[WorkerSnapshot], now: float,
                 d: Decision) -> list[WorkerSnapshot]:
    """The parked workers that stay parked, oldest first; the others go to ``d.stop``."""
    keep = []
    for w in sorted(parked, key=lambda w: (w.parked_since or 0.0, w.id)):
        if not s.flashboot:
            d.stop.append((w.id, "evicted: FlashBoot is off for the endpoint"))
        elif w.version != s.version:
            d.stop.append((w.id, f"evicted: the endpoint changed (now version {s.version})"))
        elif w.parked_since is not None and now - w.parked_since >= s.max_parked_s:
            why = f"evicted: parked for {now - w.parked_since:.0f}s (max_parked_s {s.max_parked_s:g}s)"
            d.stop.append((w.id, why))
            d.scaled_down.append(w.id)
        else:
            keep.append(w)
    return keep


def _evict_over_max(s: ScalerSettings, parked: list[WorkerSnapshot], live: int,
                    d: Decision) -> None:
    """Live plus parked workers stay within workersMax: the oldest parked go first (a worker
    about to be parked is stopped instead)."""
    excess = live + len(parked) - s.workers_max
    if excess <= 0:
        return
    parking = {wid: why for wid, why in d.park}
    for w in parked[:excess]:
        why = f"evicted: {live} live + {len(parked)} parked > workersMax {s.workers_max}"
        if w.id in parking:
            d.park.remove((w.id, parking[w.id]))
        d.stop.append((w.id, why))
        d.scaled_down.append(w.id)
