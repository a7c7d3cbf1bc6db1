"""Rate limits: requests per window and requests in flight, per key, at a fixed small cost.

How to use it (the /v2 job API, the /v1 control plane and REST v2 share one instance, built
by the composition root and reached as ``services.limits``)::

    rule = RateRule(limit=1000, window_s=10.0)        # RunPod's /run: 1,000 per 10 s
    limiter = RateLimiter(rule, clock=time.monotonic)

    wait = limiter.hit(key)          # 0.0: allowed (and counted); > 0: refused, retry after
    limiter.wait(key)                # the same answer, counting nothing
    if wait:
        raise RateLimited(wait)      # the API answers 429 with Retry-After: ceil(wait)

    state = limiter.state(key)       # for RateLimit / RateLimit-Policy headers, no counting
    state.limit, state.remaining, state.reset_s

    inflight = ConcurrencyLimiter(200)
    if not inflight.acquire(key):    # False: already 200 in flight for this key
        raise RateLimited(1.0)
    try: ... finally: inflight.release(key)

``RateLimiter`` is GCRA (the generic cell rate algorithm, a token bucket kept as one float
per key): ``limit`` requests may come at once, then one every ``window_s / limit`` seconds;
``hit`` is a dict lookup and a few float operations (well under a microsecond). Keys are any
hashable value (a key id, ``(key_id, endpoint_id)``, a client address). Memory is bounded by
``max_keys``: past it, keys whose bucket is full again are dropped first, then the oldest.

``RateLimits`` is the server's set of limiters, one per rule of ``LimitSettings``
(``config.py``; docs/security.md lists them). Every decision takes the time from the injected
``clock`` (monotonic seconds), so tests drive it without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from runplane.errors import RateLimited
from runplane.security_settings import LimitSettings, RouteLimit

Now = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RateRule:
    """``limit`` requests per ``window_s`` seconds (all of them may come at once)."""

    limit: int
    window_s: float


@dataclass(frozen=True, slots=True)
class LimitState:
    """Where a key stands, for RateLimit headers: requests left now, seconds until full."""

    limit: int
    remaining: int
    reset_s: float


class RateLimiter:
    """GCRA over one rule (see the module docstring). ``hit`` counts and decides."""

    __slots__ = ("_clock", "_interval", "_max_keys", "_tat", "_window", "rule")

    def __init__(self, rule: RateRule, clock: Now = time.monotonic, max_keys: int = 100_000) -> None:
        if rule.limit < 1 or rule.window_s <= 0:
            raise ValueError(f"a rate rule needs limit >= 1 and window_s > 0, not {rule}")
        self.rule = rule
        self._clock = clock
        self._interval = rule.window_s / rule.limit
        self._window = rule.window_s
        self._max_keys = max_keys
        # key -> the theoretical arrival time: when the bucket would be full again.
        self._tat: dict[Hashable, float] = {}

    def hit(self, key: Hashable) -> float:
        """Count one request of ``key``: 0.0 when allowed, else the seconds until one would
        be (the refused request is not counted)."""
        now = self._clock()
        tat = self._tat.get(key)
        if tat is None:  # a new key: the only time the table can grow
            if len(self._tat) >= self._max_keys:
                self._prune(now)
            tat = now
        elif tat < now:
            tat = now
        new_tat = tat + self._interval
        wait = new_tat - now - self._window
        if wait > 0:
            return wait
        self._tat[key] = new_tat
        return 0.0

    def wait(self, key: Hashable) -> float:
        """What ``hit`` would answer, counting nothing: 0.0 when a request would pass."""
        now = self._clock()
        wait = max(self._tat.get(key, now), now) + self._interval - now - self._window
        return wait if wait > 0 else 0.0

    def state(self, key: Hashable) -> LimitState:
        """The key's standing without counting anything."""
        now = self._clock()
        backlog = max(0.0, self._tat.get(key, now) - now)
        remaining = int((self._window - backlog) / self._interval + 1e-9)
        return LimitState(self.rule.limit, max(0, min(self.rule.limit, remaining)), backlog)

    def __len__(self) -> int:
        return len(self._tat)

    def _prune(self, now: float) -> None:
        full = [k for k, tat in self._tat.items() if tat <= now]
        for k in full:
            del self._tat[k]
        if len(self._tat) >= self._max_keys:  # still full: drop the oldest half
            for k in list(self._tat)[: len(self._tat) // 2]:
                del self._tat[k]


class ConcurrencyLimiter:
    """At most ``limit`` requests of one key in flight: ``acquire`` then ``release``."""

    __slots__ = ("_counts", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[Hashable, int] = {}

    def acquire(self, key: Hashable) -> bool:
        """Take a slot; False (nothing taken) when ``key`` already has ``limit`` in flight."""
        n = self._counts.get(key, 0)
        if n >= self.limit:
            return False
        self._counts[key] = n + 1
        return True

    def release(self, key: Hashable) -> None:
        n = self._counts.get(key, 0) - 1
        if n > 0:
            self._counts[key] = n
        else:
            self._counts.pop(key, None)

    def in_flight(self, key: Hashable) -> int:
        return self._counts.get(key, 0)


@dataclass(frozen=True, slots=True)
class RouteLimiters:
    """One job API route's limits: requests per window and (optionally) in flight."""

    rate: RateLimiter
    inflight: ConcurrencyLimiter | None


class RateLimits:
    """The server's limiters, built from ``LimitSettings`` (one shared instance).

    - ``job_route(op)``: the /v2 job API route ``op`` ("run", "runsync", "status", ...), keyed
      by ``(api key id, endpoint id)``; None for a route without a limit or when disabled.
    - ``creates``, ``registrations``, ``failed_auth``: per client address.
    - ``graphql``, ``whatif``: per API key; ``whatif_inflight`` one what-if at a time per key
      and ``whatif_concurrent`` in all (``whatif_total``, keyed by ``ALL``), even when the
      rate limits are off: a what-if replay is CPU-bound.
    - ``check(limiter, key)`` raises ``RateLimited`` (the API's 429); a None limiter allows.
    """

    def __init__(self, settings: LimitSettings, clock: Now = time.monotonic) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self._routes: dict[str, RouteLimiters] = {}
        if settings.enabled:
            for op, rule in settings.job_api.items():
                self._routes[op] = _route(rule, clock)
        self.creates = _limiter(settings.creates_per_minute, 60.0, clock, settings.enabled)
        self.registrations = _limiter(settings.worker_registrations_per_minute, 60.0, clock,
                                      settings.enabled)
        self.failed_auth = _limiter(settings.failed_auth_per_minute, 60.0, clock,
                                    settings.enabled)
        self.graphql = _limiter(settings.graphql_per_minute, 60.0, clock, settings.enabled)
        self.whatif = _limiter(settings.whatif_per_minute, 60.0, clock, settings.enabled)
        self.whatif_inflight = ConcurrencyLimiter(1)
        self.whatif_total = ConcurrencyLimiter(settings.whatif_concurrent)
        # REST v2, per user: (window name, limiter) for each window that is on.
        self.rest_v2: list[tuple[str, RateLimiter]] = [
            (name, limiter) for name, quota, window_s in (
                ("minute", settings.rest_v2_per_minute, 60.0),
                ("hour", settings.rest_v2_per_hour, 3600.0),
                ("day", settings.rest_v2_per_day, 86400.0))
            if (limiter := _limiter(quota, window_s, clock, settings.enabled)) is not None]

    ALL = "all"  # the key of a limiter counted across every caller

    def job_route(self, op: str) -> RouteLimiters | None:
        return self._routes.get(op)

    @staticmethod
    def check(limiter: RateLimiter | None, key: Hashable, what: str = "requests") -> None:
        """Count one request; raise ``RateLimited`` when over the limit."""
        if limiter is None:
            return
        wait = limiter.hit(key)
        if wait:
            rule = limiter.rule
            raise RateLimited(wait, f"too many {what}: the limit is {rule.limit} per "
                                    f"{rule.window_s:g} s")


def _route(rule: RouteLimit, clock: Now) -> RouteLimiters:
    inflight = ConcurrencyLimiter(rule.concurrent) if rule.concurrent else None
    return RouteLimiters(RateLimiter(RateRule(rule.requests, rule.window_s), clock), inflight)


def _limiter(per_minute: int, window_s: float, clock: Now, enabled: bool) -> RateLimiter | None:
    if not enabled or per_minute <= 0:
        return None
    return RateLimiter(RateRule(per_minute, window_s), clock)
