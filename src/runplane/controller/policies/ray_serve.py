"""A Ray-Serve-like scaler: target ongoing requests per replica, with up and down delays.

Ray Serve's autoscaler wants ``ceil(ongoing requests / target_ongoing_requests)`` replicas
and applies a change only once it has been recommended continuously for ``upscale_delay_s``
(30 s by default) or ``downscale_delay_s`` (600 s); from zero replicas it scales up at once.
Replicas go when the wish drops (the downscale delay is its idle timeout). ``scalerValue`` is
``target_ongoing_requests`` (1 for workers that run one job at a time).
"""

from __future__ import annotations

import math

from runplane.controller.autoscaler import Pool, QueueStats, ScalerSettings, Target


class RayServe:
    """See the module docstring; Ray Serve's default delays."""

    reads_queue_ages = False
    every_tick = False

    def __init__(self, upscale_delay_s: float = 30.0, downscale_delay_s: float = 600.0) -> None:
        self.upscale_delay_s = upscale_delay_s
        self.downscale_delay_s = downscale_delay_s
        self._up_since: float | None = None
        self._down_since: float | None = None

    def observe_ready(self, cold_start_s: float) -> None:
        """Ray Serve does not look at cold starts."""

    def target(self, s: ScalerSettings, q: QueueStats, pool: Pool, now: float) -> Target:
        """The wish once it has held for its delay; see the module docstring."""
        per = max(s.scaler_value, 1.0)
        ongoing = q.in_queue_normal + q.in_progress
        raw = math.ceil(ongoing / per)
        current = pool.capacity
        why = f"RAY_SERVE: {ongoing} ongoing / {per:g} = {raw}"
        if raw > current:
            self._down_since = None
            self._up_since = now if self._up_since is None else self._up_since
            if current and now - self._up_since < self.upscale_delay_s:
                raw = current
                why += f"; up after {self.upscale_delay_s:g}s"
            else:
                self._up_since = None
        elif raw < current:
            self._up_since = None
            self._down_since = now if self._down_since is None else self._down_since
            if now - self._down_since < self.downscale_delay_s:
                raw = current
                why += f"; down after {self.downscale_delay_s:g}s"
            else:
                self._down_since = None
        else:
            self._up_since = self._down_since = None
        return Target(raw, raw, why, idle_timeout_s=0.0)
