"""Crash-loop breaker: consecutive failed starts or crashes back an endpoint off.

A failure is a worker that exits (or is killed for missing its startup timeout) before it
reaches its first job-take, or one that crashes without being asked to stop. After
``threshold`` consecutive failures the breaker opens: no new worker is started until an
exponentially growing backoff has passed, and the endpoint says why. A worker reaching its
first job-take closes it again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Breaker:
    threshold: int = 3
    base_s: float = 10.0
    max_s: float = 300.0
    failures: int = 0
    last_failure_at: float | None = None
    last_reason: str = ""

    def record_failure(self, now: float, reason: str) -> None:
        """Count one failed start or crash."""
        self.failures += 1
        self.last_failure_at = now
        self.last_reason = reason

    def record_success(self) -> None:
        """A worker took its first job: the template works."""
        self.failures = 0
        self.last_failure_at = None
        self.last_reason = ""

    @property
    def is_open(self) -> bool:
        return self.failures >= self.threshold

    def backoff_s(self) -> float:
        if not self.is_open:
            return 0.0
        return min(self.base_s * 2 ** (self.failures - self.threshold), self.max_s)

    def blocked(self, now: float) -> str | None:
        """Why starts are blocked now, or None when a start may go ahead."""
        if not self.is_open or self.last_failure_at is None:
            return None
        until = self.last_failure_at + self.backoff_s()
        if now >= until:
            return None
        return (f"crash loop: {self.failures} consecutive workers failed "
                f"(last: {self.last_reason}); next start in {until - now:.0f}s")

    def status(self, now: float) -> str | None:
        """A line for the endpoint while the breaker is open (also between retries)."""
        if not self.is_open:
            return None
        return self.blocked(now) or (
            f"crash loop: {self.failures} consecutive workers failed "
            f"(last: {self.last_reason}); retrying"
        )
