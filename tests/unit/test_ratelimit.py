"""The rate limiter (services/ratelimit.py): GCRA buckets and in-flight caps, on a test clock."""

from __future__ import annotations

import pytest

from runplane.security_settings import LimitSettings, RouteLimit
from runplane.errors import RateLimited
from runplane.services.ratelimit import ConcurrencyLimiter, RateLimiter, RateLimits, RateRule


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(("limit", "window", "burst_ok", "after_s", "then_ok"), [
    (10, 10.0, 10, 1.0, 1),     # 10 at once, then one per second
    (10, 10.0, 10, 0.5, 0),     # half an interval later: still none
    (1000, 10.0, 1000, 0.1, 10),
    (2, 60.0, 2, 30.0, 1),
    (1, 1.0, 1, 1.0, 1),
])
def test_burst_then_steady_rate(limit: int, window: float, burst_ok: int, after_s: float,
                                then_ok: int) -> None:
    clock = Clock()
    lim = RateLimiter(RateRule(limit, window), clock)
    allowed = sum(lim.hit("k") == 0.0 for _ in range(limit * 2))
    assert allowed == burst_ok
    clock.t += after_s
    assert sum(lim.hit("k") == 0.0 for _ in range(limit)) == then_ok


def test_refusal_says_how_long_and_is_not_counted() -> None:
    clock = Clock()
    lim = RateLimiter(RateRule(10, 10.0), clock)
    for _ in range(10):
        assert lim.hit("k") == 0.0
    wait = lim.hit("k")
    assert wait == pytest.approx(1.0)
    for _ in range(100):  # refused hits do not push the wait further out
        assert lim.hit("k") == pytest.approx(1.0)
    clock.t += wait
    assert lim.hit("k") == 0.0


def test_keys_are_independent_and_state_counts_nothing() -> None:
    clock = Clock()
    lim = RateLimiter(RateRule(3, 3.0), clock)
    for _ in range(3):
        lim.hit(("key1", "ep"))
    assert lim.hit(("key1", "ep")) > 0
    assert lim.hit(("key2", "ep")) == 0.0
    state = lim.state(("key2", "ep"))
    assert (state.limit, state.remaining) == (3, 2)
    assert state.reset_s == pytest.approx(1.0)
    assert lim.state(("key2", "ep")) == state
    assert lim.state("never").remaining == 3


def test_memory_is_bounded() -> None:
    clock = Clock()
    lim = RateLimiter(RateRule(5, 10.0), clock, max_keys=100)
    for i in range(1000):
        lim.hit(i)
    assert len(lim) <= 100


def test_concurrency_cap() -> None:
    cap = ConcurrencyLimiter(2)
    assert cap.acquire("a") and cap.acquire("a")
    assert not cap.acquire("a")
    assert cap.acquire("b")
    cap.release("a")
    assert cap.in_flight("a") == 1
    assert cap.acquire("a")
    for _ in range(5):
        cap.release("b")
    assert cap.in_flight("b") == 0


def test_limits_from_settings() -> None:
    clock = Clock()
    limits = RateLimits(LimitSettings(failed_auth_per_minute=2,
                                      job_api={"run": RouteLimit(requests=1, concurrent=1)}),
                        clock)
    run = limits.job_route("run")
    assert run is not None and run.inflight is not None and run.inflight.limit == 1
    assert limits.job_route("status") is None
    limits.check(limits.failed_auth, "10.0.0.1")
    limits.check(limits.failed_auth, "10.0.0.1")
    with pytest.raises(RateLimited) as err:
        limits.check(limits.failed_auth, "10.0.0.1", "failed authentications")
    assert err.value.retry_after == 30
    assert "2 per 60 s" in err.value.message
    off = RateLimits(LimitSettings(enabled=False), clock)
    assert off.job_route("run") is None and off.failed_auth is None
    off.check(off.failed_auth, "x")
