"""Each scaler's decisions on tables of cases: ``autoscaler.decide`` with the policy's target
(``controller/policies``), as the controller and the simulator call it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runplane.controller import autoscaler as asc
from runplane.controller.policies import EndpointPolicies, make_policy
from runplane.controller.policies.adaptive import Adaptive
from runplane.controller.policies.kpa import KnativeKpa
from runplane.controller.policies.ray_serve import RayServe

NOW = 1000.0


def busy(n: int) -> list[asc.WorkerSnapshot]:
    return [asc.WorkerSnapshot(f"b{i}", "RUNNING", jobs=1) for i in range(n)]


def idle(n: int, since: float = NOW) -> list[asc.WorkerSnapshot]:
    return [asc.WorkerSnapshot(f"i{i}", "IDLE", idle_since=since) for i in range(n)]


def parked(n: int) -> list[asc.WorkerSnapshot]:
    return [asc.WorkerSnapshot(f"p{i}", "PARKED", parked_since=NOW - 10) for i in range(n)]


def queue(*ages: float, in_progress: int = 0, finished: int = 0) -> asc.QueueStats:
    at = tuple(sorted(NOW - a for a in ages))
    return asc.QueueStats(len(ages), in_progress, at[0] if at else None, at, finished)


@dataclass(frozen=True)
class Case:
    name: str
    settings: asc.ScalerSettings
    queue: asc.QueueStats
    workers: list[asc.WorkerSnapshot]
    start: int
    resume: int = 0
    park: int = 0
    stop: int = 0
    cold_start_s: float | None = None  # measured, told to ADAPTIVE first


ADAPTIVE = asc.ScalerSettings(scaler_type="ADAPTIVE", scaler_value=4, workers_max=10,
                              idle_timeout_s=5, flashboot=True)
ADAPTIVE_NO_FB = asc.ScalerSettings(scaler_type="ADAPTIVE", scaler_value=4, workers_max=10,
                                    idle_timeout_s=5, flashboot=False)

ADAPTIVE_CASES = [
    Case("a job and no worker: scale from zero", ADAPTIVE, queue(0), [], start=1),
    Case("a job behind a busy worker, parked ones left: the warmest revived", ADAPTIVE,
         queue(3.0, in_progress=1), busy(1) + parked(2), start=0, resume=1),
    Case("a job that waits less than a cold start, no parked left: the pool grows by one",
         ADAPTIVE, queue(0.5, in_progress=1), busy(1), start=1, cold_start_s=30),
    Case("... without FlashBoot: a worker ready in 30 s shortens no wait, none started",
         ADAPTIVE_NO_FB, queue(0.5, in_progress=1), busy(1), start=0, cold_start_s=30),
    Case("a long queue behind one busy worker, fast cold starts: several at once",
         ADAPTIVE_NO_FB, queue(*[0.1 * i for i in range(20)], in_progress=1), busy(1), start=6,
         cold_start_s=2),
    Case("the queue covered by idle workers: nothing started", ADAPTIVE, queue(0, 0), idle(2),
         start=0),
    Case("idle 2 s with FlashBoot: parked (it parks after 1 s, not idleTimeout 5 s)", ADAPTIVE,
         queue(), idle(1, since=NOW - 2), start=0, park=1),
    Case("idle 2 s without FlashBoot: kept until idleTimeout", ADAPTIVE_NO_FB, queue(),
         idle(1, since=NOW - 2), start=0),
    Case("idle 6 s without FlashBoot: stopped", ADAPTIVE_NO_FB, queue(), idle(1, since=NOW - 6),
         start=0, stop=1),
    Case("workersMax holds", asc.ScalerSettings(scaler_type="ADAPTIVE", scaler_value=4,
                                                 workers_max=2, flashboot=False),
         queue(*[0.1 * i for i in range(20)], in_progress=2), busy(2), start=0, cold_start_s=2),
]


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=[c.name for c in ADAPTIVE_CASES])
def test_adaptive(case: Case) -> None:
    policy = Adaptive()
    if case.cold_start_s is not None:
        policy.observe_ready(case.cold_start_s)
    d = asc.decide(case.settings, case.queue, case.workers, NOW, policy=policy.target)
    assert (d.start, len(d.resume), len(d.park), len(d.stop)) == (
        case.start, case.resume, case.park, case.stop), d.reason


def test_adaptive_learns_execution_time_from_the_counters() -> None:
    p = Adaptive()
    s = ADAPTIVE
    for t, in_progress, finished in [(0, 2, 0), (1, 2, 0), (2, 2, 0), (3, 2, 2), (4, 2, 2),
                                     (5, 2, 2), (6, 2, 4)]:
        p.target(s, asc.QueueStats(0, in_progress, None, (), finished), asc.Pool(2, 0, 0, 2),
                 float(t))
    assert p.execution_s == pytest.approx(3.0)


def test_adaptive_cold_start_is_a_moving_average_of_measurements() -> None:
    p = Adaptive(cold_start_prior_s=10)
    p.observe_ready(20)
    assert p.cold_start_s == 20  # the first measurement replaces the prior
    p.observe_ready(10)
    assert p.cold_start_s == pytest.approx(17.0)


KPA = asc.ScalerSettings(scaler_type="KNATIVE_KPA", scaler_value=1, workers_max=10)


def _feed(policy: object, samples: list[tuple[float, int]], pool: asc.Pool) -> asc.Target:
    target = None
    for t, c in samples:
        target = policy.target(KPA, asc.QueueStats(c, 0), pool, t)  # type: ignore[attr-defined]
    assert target is not None
    return target


@pytest.mark.parametrize("samples, capacity, wanted, panic", [
    ([(t, 1) for t in range(60)], 1, 1, False),  # steady 1 in flight: one worker
    ([(t, 0) for t in range(50)] + [(t, 4) for t in range(50, 60)], 4, 1, False),  # stable avg
    ([(t, 0) for t in range(50)] + [(t, 8) for t in range(50, 60)], 1, 8, True),  # panic
    ([(t, 0) for t in range(120)], 2, 0, False),  # a quiet window: scale to zero
])
def test_knative_kpa(samples: list[tuple[float, int]], capacity: int, wanted: int,
                     panic: bool) -> None:
    target = _feed(KnativeKpa(), samples, asc.Pool(capacity, 0, 0, capacity))
    assert target.wanted == wanted and ("panic" in target.why) == panic
    assert target.idle_timeout_s == 0.0


def test_knative_kpa_does_not_scale_down_in_panic() -> None:
    kpa = KnativeKpa()
    _feed(kpa, [(t, 0) for t in range(54)] + [(t, 10) for t in range(54, 60)], asc.Pool(1, 0, 0, 1))
    target = kpa.target(KPA, asc.QueueStats(0, 0), asc.Pool(10, 0, 10, 0), 61.0)
    assert target.wanted >= 10  # the panic peak holds for a stable window


RAY = asc.ScalerSettings(scaler_type="RAY_SERVE", scaler_value=1, workers_max=10)


@pytest.mark.parametrize("steps, want", [
    ([(0, 3, 0)], 3),  # from zero: at once
    ([(0, 3, 1)], 1),  # up: not before the upscale delay
    ([(0, 3, 1), (29, 3, 1)], 1),
    ([(0, 3, 1), (30, 3, 1)], 3),  # held for 30 s: applied
    ([(0, 3, 1), (10, 1, 1), (31, 3, 1)], 1),  # the wish changed: the delay starts again
    ([(0, 0, 2), (599, 0, 2)], 2),  # down: not before 600 s
    ([(0, 0, 2), (600, 0, 2)], 0),
])
def test_ray_serve(steps: list[tuple[float, int, int]], want: int) -> None:
    ray = RayServe()
    target = None
    for t, ongoing, capacity in steps:
        target = ray.target(RAY, asc.QueueStats(ongoing, 0), asc.Pool(capacity, 0, capacity, 0),
                            float(t))
    assert target is not None and target.wanted == want, target


def test_rules_are_no_policy_and_policies_are_kept_per_endpoint() -> None:
    assert make_policy("QUEUE_DELAY") is None and make_policy("REQUEST_COUNT") is None
    book = EndpointPolicies()
    a = book.of("ep1", "ADAPTIVE")
    assert isinstance(a, Adaptive) and book.of("ep1", "ADAPTIVE") is a  # it keeps learning
    book.observe_ready("ep1", 7.0)
    assert a.cold_start_s == 7.0
    assert isinstance(book.of("ep1", "KNATIVE_KPA"), KnativeKpa)  # changed scaler: fresh
    assert book.of("ep1", "QUEUE_DELAY") is None
    book.of("ep2", "ADAPTIVE")
    book.keep({"ep3"})
    assert book.of("ep2", "ADAPTIVE") is not None  # a fresh one after forgetting
